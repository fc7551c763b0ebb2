package shim

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/plexus-cni/plexus/internal/testutil"
	"github.com/plexus-cni/plexus/pkg/api"
	"github.com/plexus-cni/plexus/pkg/api/wire"
)

// forgeEnv makes the test binary a forged daemon listening on the socket it
// names, answering every request with a made-up success.
const forgeEnv = "PLEXUS_TEST_FORGED_DAEMON"

func TestMain(m *testing.M) {
	if path := os.Getenv(forgeEnv); path != "" {
		l, err := net.Listen("unix", path)
		if err != nil {
			os.Exit(3)
		}
		_ = http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, `{"result":{"cniVersion":"1.0.0","ips":[{"address":"6.6.6.6/32"}]}}`)
		}))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// call runs Main with env (CNI_* keys) and stdin; it returns the exit code
// and stdout, and the CNI error decoded from stdout when the code is 1.
func call(t *testing.T, argv0 string, env map[string]string, stdin string) (int, string, *types.Error) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Main(argv0, func(k string) string { return env[k] }, strings.NewReader(stdin), &out, &errOut)
	var te *types.Error
	if code == 1 {
		te = &types.Error{}
		if err := json.Unmarshal(out.Bytes(), te); err != nil {
			t.Fatalf("exit 1 with stdout %q: not a CNI error: %v", out.String(), err)
		}
	}
	return code, out.String(), te
}

func env(cmd string) map[string]string {
	return map[string]string{"CNI_COMMAND": cmd, "CNI_CONTAINERID": "c1", "CNI_NETNS": "/x", "CNI_IFNAME": "eth0", "CNI_PATH": "/opt/cni/bin"}
}

// noReplay fails the test if the shim tries to replay a DEL.
func noReplay(t *testing.T) {
	t.Helper()
	orig := execReplay
	execReplay = func(*settings, string, error) error { t.Error("DEL replayed"); return errors.New("no") }
	t.Cleanup(func() { execReplay = orig })
}

// A socket served by a non-root process (planted by another user) gets no
// request from the shim: ADD fails naming the uid and prints nothing else.
func TestShimRefusesNonRootDaemon(t *testing.T) {
	if os.Geteuid() != 0 || testing.Short() {
		t.Skip("needs root: runs a forged daemon as uid 65534")
	}
	dir, err := os.MkdirTemp("", "plexus-forge-") // t.TempDir's parent is 0700
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "plexus.sock")
	cmd := testutil.SelfAs(t, 65534, forgeEnv+"="+sock)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for _, err := os.Stat(sock); err != nil; _, err = os.Stat(sock) {
		if time.Now().After(deadline) {
			t.Fatal("forged daemon did not listen")
		}
		time.Sleep(20 * time.Millisecond)
	}
	conf := `{"cniVersion":"1.0.0","name":"x","type":"plexus","socketPath":"` + sock + `","connectRetry":"0s","cniDir":"` + filepath.Join(dir, "cni") + `"}`
	code, out, te := call(t, "plexus", env("ADD"), conf)
	if code != 1 || !strings.Contains(te.Details, "uid 65534") || strings.Contains(out, "6.6.6.6") {
		t.Errorf("ADD against a non-root daemon: exit %d, %s; want a refusal naming uid 65534", code, out)
	}
}

// A failure before the daemon is asked (here: the config is not JSON) is
// the shim's own error: no replay of a DEL behind the daemon's back,
// whatever the record says.
func TestLocalErrorIsNotUnreachable(t *testing.T) {
	noReplay(t)
	for _, cmd := range []string{"ADD", "DEL"} {
		_, _, te := call(t, "plexus", env(cmd), `{"cniVersion":"1.0.0","name":"x",`)
		if te == nil || te.Code != types.ErrDecodingFailure || strings.Contains(te.Msg, "unreachable") {
			t.Errorf("%s: %+v; want code 6 and not \"unreachable\"", cmd, te)
		}
	}
}

// Without the daemon, ADD is "try again later" naming the socket, STATUS
// is 50, and DEL hands over to plexus-replay with the settings the shim
// resolved (the replay itself is tested in e2e, with the real binaries).
func TestDaemonAbsent(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "none.sock")
	conf := `{"cniVersion":"1.0.0","name":"x","type":"plexus","socketPath":"` + sock + `","connectRetry":"0s","cniDir":"` + dir + `","binDir":"/b"}`
	if _, _, te := call(t, "plexus", env("ADD"), conf); te == nil || te.Code != types.ErrTryAgainLater || !strings.Contains(te.Msg, sock) {
		t.Errorf("ADD: %+v; want code 11 naming %s", te, sock)
	}
	if _, _, te := call(t, "plexus", env("STATUS"), conf); te == nil || te.Code != api.CodeNotAvailable {
		t.Errorf("STATUS: %+v; want code 50", te)
	}
	var got *settings
	orig := execReplay
	execReplay = func(s *settings, cniPath string, reason error) error {
		got = s
		if cniPath != "/opt/cni/bin" {
			t.Errorf("replay searched CNI_PATH %q, want the runtime's", cniPath)
		}
		if !errors.Is(reason, os.ErrNotExist) {
			t.Errorf("replay reason %v, want the socket's absence", reason)
		}
		return errors.New("exec: not here")
	}
	t.Cleanup(func() { execReplay = orig })
	_, _, te := call(t, "plexus", env("DEL"), conf)
	if got == nil || got.socket != sock || got.cniDir != dir || got.binDir != "/b" {
		t.Fatalf("DEL: replay got %+v", got)
	}
	if te == nil || te.Code != types.ErrTryAgainLater || !strings.Contains(te.Details, "exec: not here") {
		t.Errorf("DEL whose replay cannot start: %+v; want code 11 naming why", te)
	}
}

// The replay gets the shim's settings, not ones already in the environment.
func TestReplayEnv(t *testing.T) {
	env := replayEnv([]string{"CNI_COMMAND=DEL", wire.EnvReplayCNIDir + "=/forged"}, &settings{socket: "/s", cniDir: "/c"}, errors.New("gone"))
	want := []string{"CNI_COMMAND=DEL", wire.EnvReplaySocket + "=/s", wire.EnvReplayCNIDir + "=/c", wire.EnvReplayBinDir + "=", wire.EnvReplayReason + "=gone"}
	if strings.Join(env, " ") != strings.Join(want, " ") {
		t.Errorf("replay env %q, want %q", env, want)
	}
}

// The answers a runtime sees without the daemon, as the CNI library's skel
// gives them (codes and messages as a plugin built on it prints).
func TestInvocationChecks(t *testing.T) {
	noReplay(t)
	conf := `{"cniVersion":"1.0.0","name":"x","type":"plexus","socketPath":"/nonexistent/plexus.sock","connectRetry":"0s"}`
	without := func(cmd string, keys ...string) map[string]string {
		e := env(cmd)
		for _, k := range keys {
			delete(e, k)
		}
		return e
	}
	with := func(cmd, k, v string) map[string]string {
		e := env(cmd)
		e[k] = v
		return e
	}
	for _, c := range []struct {
		name  string
		env   map[string]string
		stdin string
		code  uint
		msg   string
	}{
		{"missing env", without("ADD", "CNI_CONTAINERID", "CNI_PATH"), conf, 4, "required env variables [CNI_CONTAINERID,CNI_PATH] missing"},
		{"DEL needs no netns", without("DEL", "CNI_NETNS", "CNI_PATH"), conf, 4, "required env variables [CNI_PATH] missing"},
		{"unknown command", env("FOO"), conf, 4, "unknown CNI_COMMAND: FOO"},
		{"bad container ID", with("ADD", "CNI_CONTAINERID", "-x"), conf, 4, "invalid characters in containerID"},
		{"ifname too long", with("ADD", "CNI_IFNAME", "abcdefghijklmnop"), conf, 4, "interface name is too long"},
		{"ifname with slash", with("ADD", "CNI_IFNAME", "a/b"), conf, 4, "interface name contains / or : or whitespace characters"},
		{"no name", env("ADD"), `{"cniVersion":"1.0.0","type":"plexus"}`, 7, "missing network name"},
		{"bad name", env("ADD"), `{"cniVersion":"1.0.0","name":"a b","type":"plexus"}`, 7, "invalid characters found in network name"},
		{"no version", env("ADD"), `{"name":"x","type":"plexus"}`, 1, "incompatible CNI versions"},
		{"old version", env("ADD"), `{"cniVersion":"0.2.0","name":"x","type":"plexus"}`, 1, "incompatible CNI versions"},
		{"not JSON", env("ADD"), `{"name":"x"`, 6, "plexus: cannot decode config"},
		{"key of another type", env("ADD"), `{"cniVersion":"1.0.0","name":"x","socketPath":1}`, 6, "plexus: cannot decode config"},
	} {
		code, out, te := call(t, "plexus", c.env, c.stdin)
		if code != 1 || te.Code != c.code || te.Msg != c.msg {
			t.Errorf("%s: exit %d %s; want code %d %q", c.name, code, out, c.code, c.msg)
		}
	}
	code, out, _ := call(t, "plexus", map[string]string{"CNI_COMMAND": "VERSION"}, "")
	var v struct {
		CNIVersion        string
		SupportedVersions []string
	}
	if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil || v.CNIVersion != "1.1.0" || strings.Join(v.SupportedVersions, " ") != strings.Join(wire.CNIVersions, " ") {
		t.Errorf("VERSION: exit %d %q", code, out)
	}
}

// Bad shim config names the key.
func TestBadSettings(t *testing.T) {
	load := func(conf string) (*settings, error) {
		ms, err := object([]byte(conf))
		if err != nil {
			t.Fatal(err)
		}
		return loadSettings(ms)
	}
	for key, val := range map[string]string{"requestTimeout": "soon", "connectTimeout": "0s", "connectRetry": "-1s"} {
		_, err := load(`{"cniVersion":"1.0.0","name":"x","type":"plexus","` + key + `":"` + val + `"}`)
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s=%q: %v", key, val, err)
		}
	}
	s, err := load(`{"cniVersion":"1.0.0","name":"x","type":"plexus","connectRetry":"0s"}`)
	if err != nil || s.connectRetry != 0 || s.binDir != "" {
		t.Errorf("connectRetry 0s: %+v, %v; want allowed, and no binDir by default", s, err)
	}
	// encoding/json's reading: keys match up to case, the last one wins.
	s, err = load(`{"cniVersion":"1.0.0","name":"x","socketPath":"/a","SOCKETPATH":"/b"}`)
	if err != nil || s.socket != "/b" {
		t.Errorf("socket %+v %v; want /b", s, err)
	}
}

// A 00-multus.conf left by Multus ("type": "multus-shim", no Plexus keys)
// reaches plexusd serving in Multus's place: its socket in Multus's
// socket dir, its records in Multus's cniDir.
func TestMultusShimConfig(t *testing.T) {
	for _, c := range []struct{ conf, socket string }{
		{`{"cniVersion":"0.3.1","name":"multus-cni-network","type":"multus-shim","logLevel":"verbose"}`, "/run/multus/plexus.sock"},
		{`{"cniVersion":"0.3.1","name":"multus-cni-network","type":"multus-shim","daemonSocketDir":"/var/run/multus-alt"}`, "/var/run/multus-alt/plexus.sock"},
	} {
		ms, err := object([]byte(c.conf))
		if err != nil {
			t.Fatal(err)
		}
		s, err := loadSettings(ms)
		if err != nil {
			t.Fatal(err)
		}
		if s.socket != c.socket || s.cniDir != "/var/lib/cni/multus" {
			t.Errorf("%s: socket %s cniDir %s, want %s and /var/lib/cni/multus", c.conf, s.socket, s.cniDir, c.socket)
		}
	}
}

// Multus's passthru: for every supported version, ADD prints what the CNI
// library prints for an empty result of that version; the other commands
// print nothing.
func TestPassthru(t *testing.T) {
	noReplay(t)
	for _, v := range wire.CNIVersions {
		conf := `{"cniVersion":"` + v + `","name":"aux","type":"passthru"}`
		code, out, _ := call(t, "/opt/cni/bin/passthru", env("ADD"), conf)
		empty := &current.Result{CNIVersion: current.ImplementedSpecVersion}
		conv, err := empty.GetAsVersion(v)
		if err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		if err := conv.PrintTo(&want); err != nil {
			t.Fatal(err)
		}
		if code != 0 || !jsonEqual(t, out, want.String()) {
			t.Errorf("%s: ADD: exit %d %s; want %s", v, code, out, want.String())
		}
		for _, cmd := range []string{"DEL", "CHECK", "STATUS", "GC"} {
			if code, out, _ := call(t, "passthru", env(cmd), conf); code != 0 || out != "" {
				t.Errorf("%s %s: exit %d %q", v, cmd, code, out)
			}
		}
	}
	if code, _, te := call(t, "passthru", env("ADD"), `{`); code != 1 || te.Code != types.ErrDecodingFailure {
		t.Errorf("bad config: exit %d %+v", code, te)
	}
}

func jsonEqual(t *testing.T, a, b string) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal([]byte(a), &x); err != nil {
		t.Fatalf("%q: %v", a, err)
	}
	if err := json.Unmarshal([]byte(b), &y); err != nil {
		t.Fatalf("%q: %v", b, err)
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return bytes.Equal(xb, yb)
}

// serve runs handler as a daemon on a unix socket (this test runs as the
// socket's peer: root in CI, so the peer check passes only as root).
func serve(t *testing.T, handler http.HandlerFunc) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the shim accepts only a daemon running as root")
	}
	sock := filepath.Join(t.TempDir(), "plexus.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return sock
}

// The request the daemon decodes is the invocation, field for field, and
// the daemon's result and errors reach stdout as it wrote them; a daemon
// that is not ready yet is asked again.
func TestExchangeWithDaemon(t *testing.T) {
	noReplay(t)
	var calls atomic.Int32
	var got api.Request
	sock := serve(t, func(w http.ResponseWriter, r *http.Request) {
		req, err := api.DecodeRequest(r.Body, 1<<20)
		if err != nil {
			t.Errorf("daemon cannot decode the request: %v", err)
			return
		}
		got = *req
		switch n := calls.Add(1); {
		case req.Command == api.CmdCheck:
			_, _ = io.WriteString(w, `{"error":{"code":7,"msg":"bad \"thing\"","details":"d"}}`)
		case n == 1:
			_, _ = io.WriteString(w, `{"error":{"code":11,"msg":"`+wire.MsgNotReady+`"}}`)
		default:
			_, _ = io.WriteString(w, `{"protocol":1,"result":{"cniVersion":"1.0.0","ips":[{"address":"10.1.2.3/24"}]}}`)
		}
	})
	conf := `{"cniVersion":"1.0.0","name":"x","type":"plexus","socketPath":"` + sock + `","nested":{"a":[1,2.5e3,"\u00e9"]}}`
	e := env("ADD")
	e["CNI_ARGS"] = "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p\x01\"é"
	code, out, _ := call(t, "plexus", e, conf)
	if code != 0 || !jsonEqual(t, out, `{"cniVersion":"1.0.0","ips":[{"address":"10.1.2.3/24"}]}`) || calls.Load() != 2 {
		t.Errorf("ADD: exit %d %q after %d calls; want the result after a retry", code, out, calls.Load())
	}
	if got.Protocol != wire.Protocol || got.Command != api.CmdAdd || got.ContainerID != "c1" || got.Netns != "/x" || got.IfName != "eth0" || got.Path != "/opt/cni/bin" || got.Args != e["CNI_ARGS"] || !jsonEqual(t, string(got.Config), conf) {
		t.Errorf("daemon got %+v", got)
	}
	code, _, te := call(t, "plexus", env("CHECK"), conf)
	if code != 1 || te.Code != 7 || te.Msg != `bad "thing"` || te.Details != "d" {
		t.Errorf("CHECK: exit %d %+v; want the daemon's error", code, te)
	}
}

// An HTTP error from the socket is a failure to reach plexusd: ADD is code
// 11 naming it, and DEL replays.
func TestDaemonHTTPError(t *testing.T) {
	sock := serve(t, func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) })
	conf := `{"cniVersion":"1.0.0","name":"x","type":"plexus","socketPath":"` + sock + `","connectRetry":"0s"}`
	noReplay(t)
	if _, _, te := call(t, "plexus", env("ADD"), conf); te == nil || te.Code != 11 || !strings.Contains(te.Details, "HTTP 500: boom") {
		t.Errorf("ADD: %+v", te)
	}
	if err := Probe(sock, time.Second); err == nil || !strings.Contains(err.Error(), "not ready: boom") {
		t.Errorf("Probe: %v", err)
	}
}

// An answer is complete only when its headers and Content-Length bytes are
// in, whatever pieces the socket delivers it in; without a length, the end
// of the stream delimits it.
func TestParseResponse(t *testing.T) {
	full := "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\ncontent-length: 12\r\n\r\n{\"result\":1}"
	for i := 0; i < len(full); i++ {
		if _, _, complete, err := parseResponse([]byte(full[:i]), false); err != nil && i > strings.Index(full, "\r\n\r\n") || complete {
			t.Fatalf("complete (%v) after %d of %d bytes", err, i, len(full))
		}
	}
	code, body, complete, err := parseResponse([]byte(full), false)
	if err != nil || !complete || code != 200 || string(body) != `{"result":1}` {
		t.Errorf("full answer: %d %q %v %v", code, body, complete, err)
	}
	if _, body, complete, err := parseResponse([]byte("HTTP/1.1 500 Internal\r\n\r\nboom"), true); err != nil || !complete || string(body) != "boom" {
		t.Errorf("no length, closed: %q %v %v", body, complete, err)
	}
	for _, bad := range []string{"SPDY/3 200 OK\r\n\r\n", "HTTP/1.1 2xx OK\r\n\r\n", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n"} {
		if _, _, _, err := parseResponse([]byte(bad), true); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// A result larger than one read reaches stdout whole.
func TestLargeResult(t *testing.T) {
	noReplay(t)
	big := `{"cniVersion":"1.0.0","dns":{"search":["` + strings.Repeat("a", 1<<20) + `"]}}`
	sock := serve(t, func(w http.ResponseWriter, _ *http.Request) {
		body := `{"result":` + big + `}`
		w.Header().Set("Content-Length", strconv.Itoa(len(body))) // as plexusd's server does
		_, _ = io.WriteString(w, body)
	})
	conf := `{"cniVersion":"1.0.0","name":"x","type":"plexus","socketPath":"` + sock + `"}`
	if code, out, _ := call(t, "plexus", env("ADD"), conf); code != 0 || out != big {
		t.Errorf("exit %d, %d bytes out (%.200s), want %d", code, len(out), out, len(big))
	}
}
