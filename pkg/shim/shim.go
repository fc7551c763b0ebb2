package shim

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/plexus-cni/plexus/pkg/api/wire"
	"github.com/plexus-cni/plexus/pkg/buildinfo"
)

// Defaults for the shim's CNI config keys.
const (
	DefaultConnectTimeout = 2 * time.Second
	DefaultRequestTimeout = 115 * time.Second
	DefaultCNIDir         = "/var/lib/cni/plexus"
	// DefaultConnectRetry is how long ADD and CHECK keep retrying while
	// the daemon's socket refuses connections or the daemon is not ready
	// yet (a DaemonSet roll), well below the runtime's 2 minutes.
	DefaultConnectRetry = 30 * time.Second
	// ReplayTimeout is the DEL replay's own budget when the daemon does
	// not answer; the wait for the daemon is shortened by it, so the
	// whole DEL still ends within requestTimeout.
	ReplayTimeout = 20 * time.Second
)

// retryInterval paces connection retries.
const retryInterval = 200 * time.Millisecond

// CNI error codes the shim returns itself (CNI spec, "Error").
const (
	errIncompatibleCNIVersion = 1
	errUnknownContainer       = 3
	errInvalidEnvironment     = 4
	errIOFailure              = 5
	errDecodingFailure        = 6
	errInvalidNetworkConfig   = 7
	errTryAgainLater          = 11
)

// multusSocketDir and multusCNIDir are Multus thick's defaults, which
// plexusd run as multus-daemon keeps.
const (
	multusSocketDir = "/run/multus"
	multusCNIDir    = "/var/lib/cni/multus"
)

// printable is a CNI error as Main prints it (exit code 1).
type printable interface {
	error
	json() []byte
}

// cniError is a CNI error result of the shim's own.
type cniError struct {
	code         uint
	msg, details string
}

func (e *cniError) Error() string { return e.msg + ": " + e.details }

func (e *cniError) json() []byte {
	b := append([]byte(`{"code":`), strconv.FormatUint(uint64(e.code), 10)...)
	b = appendQuoted(append(b, `,"msg":`...), e.msg)
	if e.details != "" {
		b = appendQuoted(append(b, `,"details":`...), e.details)
	}
	return append(b, "}\n"...)
}

// invocation is one CNI call as the runtime made it.
type invocation struct {
	command, containerID, netns, ifName, args, path string
	config                                          []byte
}

// settings is the shim's part of its CNI config: where the daemon is and
// how long to wait for it.
type settings struct {
	socket         string
	connectTimeout time.Duration
	requestTimeout time.Duration
	connectRetry   time.Duration
	cniDir         string
	binDir         string
}

// Main runs the CNI invocation in the environment and returns the exit
// code. argv0 selects passthru (PassthruName); stdout gets the result or
// the CNI error.
func Main(argv0 string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	passthru := filepath.Base(argv0) == PassthruName
	cmd := getenv("CNI_COMMAND")
	switch cmd {
	case "":
		about := buildinfo.About("shim")
		if passthru {
			about = "Passthrough CNI plugin (plexus " + buildinfo.Version + ")"
		}
		_, _ = io.WriteString(stderr, about+"\nCNI protocol versions supported: "+strings.Join(wire.CNIVersions, ", ")+"\n")
		return 0
	case "VERSION":
		_, _ = stdout.Write(versionJSON())
		return 0
	}
	out, err := run(cmd, passthru, getenv, stdin)
	if err != nil {
		var p printable
		if !errors.As(err, &p) {
			p = &cniError{code: 999, msg: "plexus", details: err.Error()}
		}
		_, _ = stdout.Write(p.json())
		return 1
	}
	if len(out) > 0 {
		if _, err := stdout.Write(out); err != nil {
			_, _ = stdout.Write((&cniError{code: errIOFailure, msg: "plexus: write result", details: err.Error()}).json())
			return 1
		}
	}
	return 0
}

// versionJSON is the answer to VERSION.
func versionJSON() []byte {
	b := []byte(`{"cniVersion":`)
	b = appendQuoted(b, wire.CNIVersions[len(wire.CNIVersions)-1])
	b = append(b, `,"supportedVersions":[`...)
	for i, v := range wire.CNIVersions {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendQuoted(b, v)
	}
	return append(b, "]}\n"...)
}

// run checks the invocation as the CNI library's skel does, then hands it
// to the daemon (or, as passthru, answers it).
func run(cmd string, passthru bool, getenv func(string) string, stdin io.Reader) ([]byte, error) {
	inv, err := readInvocation(cmd, getenv, stdin)
	if err != nil {
		return nil, err
	}
	conf, err := object(inv.config)
	if err != nil {
		return nil, &cniError{code: errDecodingFailure, msg: "plexus: cannot decode config", details: err.Error()}
	}
	name, ok := stringValue(lookup(conf, "name"))
	switch {
	case !ok:
		return nil, &cniError{code: errDecodingFailure, msg: "plexus: cannot decode config", details: "name is not a string"}
	case name == "":
		return nil, &cniError{code: errInvalidNetworkConfig, msg: "missing network name"}
	case !validName(name):
		return nil, &cniError{code: errInvalidNetworkConfig, msg: "invalid characters found in network name", details: name}
	}
	version, ok := stringValue(lookup(conf, "cniVersion"))
	if !ok {
		return nil, &cniError{code: errDecodingFailure, msg: "plexus: cannot decode config", details: "cniVersion is not a string"}
	}
	if version == "" {
		version = "0.1.0" // the CNI library's reading of a config without one
	}
	if !slices.Contains(wire.CNIVersions, version) {
		quoted := make([]string, len(wire.CNIVersions))
		for i, v := range wire.CNIVersions {
			quoted[i] = strconv.Quote(v)
		}
		return nil, &cniError{code: errIncompatibleCNIVersion, msg: "incompatible CNI versions", details: "config is " + strconv.Quote(version) + ", plugin supports [" + strings.Join(quoted, " ") + "]"}
	}
	if passthru {
		return passthruResult(cmd, version), nil
	}
	s, err := loadSettings(conf)
	if err != nil {
		return nil, err
	}
	return ask(s, inv)
}

// readInvocation reads the CNI environment and the config on stdin and
// checks what the verb requires (CNI spec section 3).
func readInvocation(cmd string, getenv func(string) string, stdin io.Reader) (*invocation, error) {
	inv := &invocation{command: cmd, containerID: getenv("CNI_CONTAINERID"), netns: getenv("CNI_NETNS"),
		ifName: getenv("CNI_IFNAME"), args: getenv("CNI_ARGS"), path: getenv("CNI_PATH")}
	var required []string
	switch cmd {
	case "ADD", "CHECK", "DEL":
		for _, e := range []struct{ name, val string }{{"CNI_CONTAINERID", inv.containerID}, {"CNI_NETNS", inv.netns}, {"CNI_IFNAME", inv.ifName}, {"CNI_PATH", inv.path}} {
			if e.val == "" && (cmd != "DEL" || e.name != "CNI_NETNS") {
				required = append(required, e.name)
			}
		}
	case "STATUS", "GC":
	default:
		return nil, &cniError{code: errInvalidEnvironment, msg: "unknown CNI_COMMAND: " + cmd}
	}
	if len(required) > 0 {
		return nil, &cniError{code: errInvalidEnvironment, msg: "required env variables [" + strings.Join(required, ",") + "] missing"}
	}
	if cmd == "ADD" || cmd == "CHECK" || cmd == "DEL" {
		if !validName(inv.containerID) {
			return nil, &cniError{code: errInvalidEnvironment, msg: "invalid characters in containerID", details: inv.containerID}
		}
		if msg := badIfName(inv.ifName); msg != "" {
			return nil, &cniError{code: errInvalidEnvironment, msg: msg, details: inv.ifName}
		}
	}
	var err error
	if inv.config, err = io.ReadAll(stdin); err != nil {
		return nil, &cniError{code: errIOFailure, msg: "plexus: read config", details: err.Error()}
	}
	return inv, nil
}

// validName is the CNI library's rule for container IDs and network
// names: ^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$.
func validName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '.' && c != '-') {
			return false
		}
	}
	return s != ""
}

// badIfName is the CNI library's interface name check: what is wrong, or "".
func badIfName(s string) string {
	switch {
	case s == "":
		return "interface name is empty"
	case len(s) > 15:
		return "interface name is too long"
	case s == "." || s == "..":
		return "interface name is . or .."
	}
	for _, r := range s {
		if r == '/' || r == ':' || r == ' ' || r == '\t' || r == '\n' || r == '\v' || r == '\f' || r == '\r' || r == 0x85 || r == 0xA0 {
			return "interface name contains / or : or whitespace characters"
		}
	}
	return ""
}

// loadSettings reads the shim's keys from its config.
func loadSettings(conf []member) (*settings, error) {
	str := map[string]string{}
	for _, key := range []string{"type", "socketPath", "connectTimeout", "requestTimeout", "connectRetry", "cniDir", "binDir", "daemonSocketDir"} {
		v, ok := stringValue(lookup(conf, key))
		if !ok {
			return nil, &cniError{code: errDecodingFailure, msg: "plexus: cannot decode config", details: key + " is not a string"}
		}
		str[key] = v
	}
	s := &settings{socket: wire.DefaultSocketPath, connectTimeout: DefaultConnectTimeout, requestTimeout: DefaultRequestTimeout, connectRetry: DefaultConnectRetry, cniDir: DefaultCNIDir}
	if str["type"] == "multus-shim" {
		// Multus's config, served by plexusd in Multus's place.
		dir := multusSocketDir
		if d := str["daemonSocketDir"]; d != "" {
			dir = d
		}
		s.socket, s.cniDir = filepath.Join(dir, wire.SocketName), multusCNIDir
	}
	if v := str["socketPath"]; v != "" {
		s.socket = v
	}
	if v := str["cniDir"]; v != "" {
		s.cniDir = v
	}
	s.binDir = str["binDir"]
	for _, d := range []struct {
		key string
		dst *time.Duration
	}{{"connectTimeout", &s.connectTimeout}, {"requestTimeout", &s.requestTimeout}, {"connectRetry", &s.connectRetry}} {
		val := str[d.key]
		if val == "" {
			continue
		}
		v, err := time.ParseDuration(val)
		if err != nil || v < 0 || v == 0 && d.key != "connectRetry" {
			return nil, &cniError{code: errInvalidNetworkConfig, msg: "plexus: invalid " + d.key + " " + strconv.Quote(val)}
		}
		*d.dst = v
	}
	return s, nil
}

// encodeRequest is the api.Request the daemon decodes.
func encodeRequest(inv *invocation) []byte {
	b := append([]byte(`{"protocol":`), strconv.Itoa(wire.Protocol)...)
	for _, f := range []struct{ key, val string }{{"command", inv.command}, {"containerID", inv.containerID}, {"netns", inv.netns}, {"ifName", inv.ifName}, {"args", inv.args}, {"path", inv.path}} {
		if f.val != "" || f.key == "command" {
			b = appendQuoted(append(append(append(b, ",\""...), f.key...), "\":"...), f.val)
		}
	}
	b = append(append(b, `,"config":`...), inv.config...)
	return append(b, '}')
}

// ask sends the invocation to the daemon and maps its answer, or its
// absence, to the CNI result.
func ask(s *settings, inv *invocation) ([]byte, error) {
	budget := s.requestTimeout
	if inv.command == "DEL" && budget > 2*ReplayTimeout {
		budget -= ReplayTimeout
	}
	deadline := time.Now().Add(budget)
	body := encodeRequest(inv)
	retry := inv.command == "ADD" || inv.command == "CHECK"
	until := time.Now().Add(s.connectRetry)
	for {
		res, err := send(s, deadline, body)
		// The daemon is being replaced (nothing listens) or is not ready yet.
		restarting := err == nil && res.notReady || err != nil && refused(err)
		if next := time.Now().Add(retryInterval); retry && restarting && !next.After(until) && next.Before(deadline) {
			time.Sleep(retryInterval)
			continue
		}
		switch {
		case err != nil:
			return nil, unreachable(s, inv, err)
		case res.errRaw != nil:
			return nil, &rawError{res.errRaw}
		}
		return res.result, nil
	}
}

// refused: nothing listens on the socket (the daemon is being replaced).
func refused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT)
}

// rawError is the daemon's CNI error, printed as the daemon wrote it.
type rawError struct{ raw []byte }

func (e *rawError) Error() string { return string(e.raw) }
func (e *rawError) json() []byte  { return append(e.raw[:len(e.raw):len(e.raw)], '\n') }

// unreachable maps a failure to talk to the daemon to the CNI answer for
// the verb. DEL is replayed from the attachment record by ReplayName,
// which takes this process's place (exec) and so its exit code and output.
func unreachable(s *settings, inv *invocation, err error) error {
	msg := "plexus: daemon unreachable at " + s.socket
	switch inv.command {
	case "STATUS":
		return &cniError{code: uint(wire.CodeNotAvailable), msg: msg, details: err.Error()}
	case "DEL":
		rerr := execReplay(s, inv.path, err)
		return &cniError{code: errTryAgainLater, msg: msg + "; cannot replay the DEL from the attachment record", details: rerr.Error()}
	}
	return &cniError{code: errTryAgainLater, msg: msg, details: err.Error()}
}

// execReplay replaces this process with ReplayName, found beside this
// binary or else in cniPath (CNI_PATH). It returns only on failure.
var execReplay = func(s *settings, cniPath string, reason error) error {
	path, err := replayBinary(cniPath)
	if err != nil {
		return err
	}
	if err := syscall.Exec(path, []string{wire.ReplayName}, replayEnv(os.Environ(), s, reason)); err != nil {
		return errors.New("exec " + path + ": " + err.Error())
	}
	return nil
}

// replayEnv is environ with the settings for ReplayName in place of any
// it held already (the first of two equal keys is the one a Go program
// reads).
func replayEnv(environ []string, s *settings, reason error) []string {
	env := make([]string, 0, len(environ)+4)
	for _, kv := range environ {
		if !strings.HasPrefix(kv, wire.EnvReplayPrefix) {
			env = append(env, kv)
		}
	}
	return append(env, wire.EnvReplaySocket+"="+s.socket, wire.EnvReplayCNIDir+"="+s.cniDir,
		wire.EnvReplayBinDir+"="+s.binDir, wire.EnvReplayReason+"="+reason.Error())
}

func replayBinary(cniPath string) (string, error) {
	var tried []string
	if self, err := os.Executable(); err == nil {
		tried = append(tried, filepath.Dir(self))
	}
	tried = append(tried, filepath.SplitList(cniPath)...)
	for _, dir := range tried {
		p := filepath.Join(dir, wire.ReplayName)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New(wire.ReplayName + " is not installed beside the shim nor in CNI_PATH (" + strings.Join(tried, ":") + ")")
}
