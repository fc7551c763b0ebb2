package shim

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/skel"

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
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "forger")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "plexus.sock")
	cmd := exec.Command(bin)
	cmd.Env = []string{forgeEnv + "=" + sock}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}, Pdeathsig: syscall.SIGKILL}
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
