package shim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/plexus-cni/plexus/internal/testutil"
	"github.com/plexus-cni/plexus/pkg/api"
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

// A socket served by a non-root process (planted by another user) gets no
// request from the shim: ADD fails naming the uid and prints nothing.
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
	args := &skel.CmdArgs{ContainerID: "c1", Netns: "/proc/self/ns/net", IfName: "eth0", StdinData: []byte(conf)}
	var out bytes.Buffer
	err = Run(context.Background(), api.CmdAdd, args, &out)
	if err == nil || !strings.Contains(err.Error(), "uid 65534") {
		t.Errorf("ADD against a non-root daemon: %v; want a refusal naming uid 65534", err)
	}
	if out.Len() > 0 {
		t.Errorf("the shim printed the forged result %q", out.String())
	}
}

// A failure before the daemon is asked (here: the request cannot be
// encoded) is the shim's own error: no replay of a DEL behind the daemon's
// back, whatever the record says.
func TestLocalErrorIsNotUnreachable(t *testing.T) {
	orig := encodeRequest
	encodeRequest = func(*api.Request) ([]byte, error) { return nil, errors.New("encode: boom") }
	t.Cleanup(func() { encodeRequest = orig })
	dir := t.TempDir()
	conf := `{"cniVersion":"1.0.0","name":"x","type":"plexus","socketPath":"` + filepath.Join(dir, "none.sock") + `","cniDir":"` + dir + `"}`
	for _, cmd := range []api.Command{api.CmdAdd, api.CmdDel} {
		err := Run(context.Background(), cmd, &skel.CmdArgs{ContainerID: "c1", Netns: "/x", IfName: "eth0", StdinData: []byte(conf)}, io.Discard)
		var te *types.Error
		if !errors.As(err, &te) || te.Code != types.ErrInternal || strings.Contains(te.Msg, "unreachable") {
			t.Errorf("%s: %v; want code 999 and not \"unreachable\"", cmd, err)
		}
	}
}

// Without the daemon, ADD is "try again later" naming the socket, and DEL
// of a sandbox with no record succeeds (nothing to delete).
func TestDaemonAbsent(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "none.sock")
	conf := `{"cniVersion":"1.0.0","name":"x","type":"plexus","socketPath":"` + sock + `","connectRetry":"0s","cniDir":"` + dir + `"}`
	args := &skel.CmdArgs{ContainerID: "c1", Netns: "/x", IfName: "eth0", StdinData: []byte(conf)}
	err := Run(context.Background(), api.CmdAdd, args, io.Discard)
	var te *types.Error
	if !errors.As(err, &te) || te.Code != types.ErrTryAgainLater || !strings.Contains(te.Msg, sock) {
		t.Errorf("ADD: %v; want code 11 naming %s", err, sock)
	}
	if err := Run(context.Background(), api.CmdDel, args, io.Discard); err != nil {
		t.Errorf("DEL without a record: %v", err)
	}
	if err := Run(context.Background(), api.CmdStatus, args, io.Discard); !errors.As(err, &te) || te.Code != api.CodeNotAvailable {
		t.Errorf("STATUS: %v; want code 50", err)
	}
}

// Bad shim config names the key.
func TestBadSettings(t *testing.T) {
	for key, val := range map[string]string{"requestTimeout": "soon", "connectTimeout": "0s", "connectRetry": "-1s"} {
		_, err := loadSettings([]byte(`{"cniVersion":"1.0.0","name":"x","type":"plexus","` + key + `":"` + val + `"}`))
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s=%q: %v", key, val, err)
		}
	}
	s, err := loadSettings([]byte(`{"cniVersion":"1.0.0","name":"x","type":"plexus","connectRetry":"0s"}`))
	if err != nil || s.connectRetry != 0 || s.binDir != "" {
		t.Errorf("connectRetry 0s: %+v, %v; want allowed, and no binDir by default", s, err)
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
		s, err := loadSettings([]byte(c.conf))
		if err != nil {
			t.Fatal(err)
		}
		if s.socket != c.socket || s.cniDir != "/var/lib/cni/multus" {
			t.Errorf("%s: socket %s cniDir %s, want %s and /var/lib/cni/multus", c.conf, s.socket, s.cniDir, c.socket)
		}
	}
}

// Multus's passthru: an empty result in the config's version, for every
// version the shim supports; the other commands do nothing.
func TestPassthru(t *testing.T) {
	for _, v := range []string{"0.3.1", "0.4.0", "1.0.0", "1.1.0"} {
		var out bytes.Buffer
		f := PassthruFuncs(&out)
		if err := f.Add(&skel.CmdArgs{StdinData: []byte(`{"cniVersion":"` + v + `","name":"aux","type":"passthru"}`)}); err != nil {
			t.Fatalf("%s: ADD: %v", v, err)
		}
		var res struct {
			CNIVersion string
			Interfaces []any
			IPs        []any
		}
		if err := json.Unmarshal(out.Bytes(), &res); err != nil || res.CNIVersion != v || len(res.Interfaces)+len(res.IPs) != 0 {
			t.Errorf("%s: ADD printed %s (%v)", v, out.String(), err)
		}
		for _, c := range []func(*skel.CmdArgs) error{f.Del, f.Check, f.Status, f.GC} {
			if err := c(&skel.CmdArgs{}); err != nil {
				t.Errorf("%s: %v", v, err)
			}
		}
	}
	if err := PassthruFuncs(io.Discard).Add(&skel.CmdArgs{StdinData: []byte(`{`)}); err == nil || !strings.Contains(err.Error(), "passthru") {
		t.Errorf("bad config: %v", err)
	}
}
