package shim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/plexus-cni/plexus/pkg/api"
	"github.com/plexus-cni/plexus/pkg/delegate"
	"github.com/plexus-cni/plexus/pkg/detach"
	"github.com/plexus-cni/plexus/pkg/store"
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

// NetConf is the shim's own CNI config: the standard keys plus where to
// find the daemon.
type NetConf struct {
	types.PluginConf
	SocketPath     string `json:"socketPath,omitempty"`
	ConnectTimeout string `json:"connectTimeout,omitempty"`
	RequestTimeout string `json:"requestTimeout,omitempty"`
	ConnectRetry   string `json:"connectRetry,omitempty"`
	CNIDir         string `json:"cniDir,omitempty"`
	BinDir         string `json:"binDir,omitempty"`
	// DaemonSocketDir is Multus's shim key: a 00-multus.conf that Multus
	// left behind reaches plexusd (run as multus-daemon) in that
	// directory, /run/multus by default.
	DaemonSocketDir string `json:"daemonSocketDir,omitempty"`
}

// multusSocketDir and multusCNIDir are Multus thick's defaults, which
// plexusd run as multus-daemon keeps.
const (
	multusSocketDir = "/run/multus"
	multusCNIDir    = "/var/lib/cni/multus"
)

type settings struct {
	socket         string
	connectTimeout time.Duration
	requestTimeout time.Duration
	connectRetry   time.Duration
	cniDir         string
	binDir         string
}

func loadSettings(stdin []byte) (*settings, error) {
	var c NetConf
	if err := json.Unmarshal(stdin, &c); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "plexus: cannot decode config", err.Error())
	}
	s := &settings{socket: api.DefaultSocketPath, connectTimeout: DefaultConnectTimeout, requestTimeout: DefaultRequestTimeout, connectRetry: DefaultConnectRetry, cniDir: DefaultCNIDir}
	if c.Type == "multus-shim" {
		// Multus's config, served by plexusd in Multus's place.
		dir := multusSocketDir
		if c.DaemonSocketDir != "" {
			dir = c.DaemonSocketDir
		}
		s.socket, s.cniDir = filepath.Join(dir, filepath.Base(api.DefaultSocketPath)), multusCNIDir
	}
	if c.SocketPath != "" {
		s.socket = c.SocketPath
	}
	if c.CNIDir != "" {
		s.cniDir = c.CNIDir
	}
	if c.BinDir != "" {
		s.binDir = c.BinDir
	}
	for _, d := range []struct {
		key string
		val string
		dst *time.Duration
	}{{"connectTimeout", c.ConnectTimeout, &s.connectTimeout}, {"requestTimeout", c.RequestTimeout, &s.requestTimeout}, {"connectRetry", c.ConnectRetry, &s.connectRetry}} {
		if d.val == "" {
			continue
		}
		v, err := time.ParseDuration(d.val)
		if err != nil || v < 0 || v == 0 && d.key != "connectRetry" {
			return nil, types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("plexus: invalid %s %q", d.key, d.val), "")
		}
		*d.dst = v
	}
	return s, nil
}

// Funcs returns the skel callbacks. out receives results (os.Stdout).
func Funcs(out io.Writer) skel.CNIFuncs {
	call := func(cmd api.Command) func(*skel.CmdArgs) error {
		return func(a *skel.CmdArgs) error { return Run(context.Background(), cmd, a, out) }
	}
	return skel.CNIFuncs{Add: call(api.CmdAdd), Del: call(api.CmdDel), Check: call(api.CmdCheck), Status: call(api.CmdStatus), GC: call(api.CmdGC)}
}

// Run performs one CNI command against the daemon.
func Run(ctx context.Context, cmd api.Command, a *skel.CmdArgs, out io.Writer) error {
	s, err := loadSettings(a.StdinData)
	if err != nil {
		return err
	}
	budget := s.requestTimeout
	if cmd == api.CmdDel && budget > 2*ReplayTimeout {
		budget -= ReplayTimeout
	}
	sctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	req := &api.Request{Protocol: api.Protocol, Command: cmd, ContainerID: a.ContainerID, Netns: a.Netns, IfName: a.IfName, Args: a.Args, Path: a.Path, Config: a.StdinData}
	// Encoded here, before the daemon is asked: a failure is this shim's
	// own and must not make a DEL run behind the daemon's back.
	body, err := encodeRequest(req)
	if err != nil {
		return types.NewError(types.ErrInternal, "plexus: cannot build the request for plexusd", err.Error())
	}
	resp, err := sendRetrying(sctx, s, cmd, body)
	if err != nil {
		return unreachable(ctx, s, cmd, a, err)
	}
	if resp.Error != nil {
		return resp.Error
	}
	if len(resp.Result) > 0 {
		if _, err := out.Write(resp.Result); err != nil {
			return types.NewError(types.ErrIOFailure, "plexus: write result", err.Error())
		}
	}
	return nil
}

// sendRetrying sends req; ADD and CHECK are retried for up to connectRetry
// while the socket refuses connections (no daemon listening: it is being
// replaced) or the daemon answers that it is not ready yet. DEL replays
// from the record instead, and STATUS must answer at once.
func sendRetrying(ctx context.Context, s *settings, cmd api.Command, body []byte) (*api.Response, error) {
	retry := cmd == api.CmdAdd || cmd == api.CmdCheck
	until := time.Now().Add(s.connectRetry)
	for {
		resp, err := send(ctx, s, body)
		if !retry || !restarting(resp, err) || time.Now().Add(retryInterval).After(until) {
			return resp, err
		}
		select {
		case <-ctx.Done():
			return resp, err
		case <-time.After(retryInterval):
		}
	}
}

// restarting: nothing listens on the socket, or the daemon is up but not
// ready (its informers are syncing).
func restarting(resp *api.Response, err error) bool {
	if err != nil {
		return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT)
	}
	return resp.Error != nil && resp.Error.Code == types.ErrTryAgainLater && resp.Error.Msg == api.MsgNotReady
}

// encodeRequest is json.Marshal (a variable so a test can make it fail).
var encodeRequest = func(req *api.Request) ([]byte, error) { return json.Marshal(req) }

// send is one exchange with the daemon; every error it returns is a
// failure to talk to the daemon at all.
func send(ctx context.Context, s *settings, body []byte) (*api.Response, error) {
	c, err := dialDaemon(ctx, s)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	code, data, err := exchange(ctx, c, "POST", api.PathCNI, body)
	if err != nil {
		return nil, err
	}
	if code != 200 {
		return nil, fmt.Errorf("HTTP %d: %s", code, bytes.TrimSpace(data))
	}
	var resp api.Response
	if err := json.Unmarshal(data, &resp); err != nil {
		return nil, fmt.Errorf("decode daemon response: %w", err)
	}
	return &resp, nil
}

// dialDaemon connects to the daemon's socket and checks that the peer
// listening there runs as root: whoever could plant a socket there must not
// be able to forge results.
func dialDaemon(ctx context.Context, s *settings) (net.Conn, error) {
	c, err := (&net.Dialer{Timeout: s.connectTimeout}).DialContext(ctx, "unix", s.socket)
	if err != nil {
		return nil, err
	}
	uid, err := api.PeerUID(c.(*net.UnixConn))
	if err == nil && uid != 0 {
		err = fmt.Errorf("the process listening on %s runs as uid %d, not root: refusing it", s.socket, uid)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// unreachable maps a transport failure to the CNI answer for cmd.
func unreachable(ctx context.Context, s *settings, cmd api.Command, a *skel.CmdArgs, err error) error {
	msg := fmt.Sprintf("plexus: daemon unreachable at %s", s.socket)
	switch cmd {
	case api.CmdStatus:
		return types.NewError(api.CodeNotAvailable, msg, err.Error())
	case api.CmdDel:
		// A fresh deadline: the wait for a hung daemon may have used
		// up the request's.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ReplayTimeout)
		defer cancel()
		if derr := replayDel(rctx, s, a); derr != nil {
			return types.NewError(types.ErrTryAgainLater, msg+"; DEL from the attachment record failed", derr.Error())
		}
		return nil
	}
	return types.NewError(types.ErrTryAgainLater, msg, err.Error())
}

// replayDel runs the DEL from the attachment record in this process.
func replayDel(ctx context.Context, s *settings, a *skel.CmdArgs) error {
	if err := store.ValidContainerID(a.ContainerID); err != nil {
		return err
	}
	// The runtime's CNI_PATH found this shim; it finds the delegates too,
	// unless binDir says otherwise.
	var binDirs []string
	if s.binDir != "" {
		binDirs = []string{s.binDir}
	}
	inv := delegate.NewInvoker(binDirs, s.cniDir, nil)
	st := store.NewFileStore(store.RecordsDir(s.cniDir))
	rec, err := detach.Detach(ctx, inv, st, a.ContainerID, a.Netns, a.Path)
	switch {
	case err != nil:
		return err
	case rec == nil:
		fmt.Fprintf(os.Stderr, "plexus: daemon unreachable at %s; %s has no attachment record: nothing to delete\n", s.socket, a.ContainerID)
	default:
		fmt.Fprintf(os.Stderr, "plexus: daemon unreachable at %s; DEL of %s done from the attachment record\n", s.socket, a.ContainerID)
		if err := store.MarkReplayed(s.cniDir, a.ContainerID); err != nil {
			fmt.Fprintf(os.Stderr, "plexus: leave the replay trail: %v\n", err) // the DEL itself succeeded
		}
	}
	return nil
}

// Probe asks the daemon's /readyz; nil means ready. Used by the DaemonSet's
// readiness probe (plexusd --probe SOCKET).
func Probe(ctx context.Context, socket string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := (&net.Dialer{}).DialContext(ctx, "unix", socket)
	if err != nil {
		return err
	}
	defer c.Close()
	code, body, err := exchange(ctx, c, "GET", api.PathReadyz, nil)
	if err != nil {
		return err
	}
	if code != 200 {
		return fmt.Errorf("not ready: %s", bytes.TrimSpace(body))
	}
	return nil
}
