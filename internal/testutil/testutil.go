// Package testutil holds the helpers the tests of several packages share,
// each once: the root gate, polling, free loopback ports, and a fake
// kubelet PodResources server. Only tests import it.
package testutil

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// RequireRoot skips t without root, or under -short.
func RequireRoot(tb testing.TB) {
	tb.Helper()
	if testing.Short() {
		tb.Skip("privileged test: skipped with -short")
	}
	if os.Geteuid() != 0 {
		tb.Skip("needs root: real network namespaces")
	}
}

// pollInterval paces WaitFor.
const pollInterval = 50 * time.Millisecond

// WaitFor polls f until it reports true, timeout passes (the error
// carries f's last message) or ctx ends.
func WaitFor(ctx context.Context, timeout time.Duration, f func() (bool, string)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, msg := f()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s: %s", timeout, msg)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %s", ctx.Err(), msg)
		case <-time.After(pollInterval):
		}
	}
}

// Within reports whether f becomes true within timeout.
func Within(timeout time.Duration, f func() bool) bool {
	return WaitFor(context.Background(), timeout, func() (bool, string) { return f(), "" }) == nil
}

// Eventually fails t unless f becomes true within timeout.
func Eventually(tb testing.TB, timeout time.Duration, what string, f func() bool) {
	tb.Helper()
	if !Within(timeout, f) {
		tb.Fatalf("timed out after %s waiting for %s", timeout, what)
	}
}

// FreePorts returns n TCP ports on 127.0.0.1 that were free a moment ago
// (the kernel picks them; they are released before returning).
func FreePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// SelfAs returns a command that runs this test binary as uid (and gid)
// with env, from a copy other users may exec (the go test binary lives in
// a 0700 directory). The copy is removed at t's cleanup. The test's
// TestMain recognizes env and plays its part.
func SelfAs(tb testing.TB, uid uint32, env ...string) *exec.Cmd {
	tb.Helper()
	self, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "plexus-self-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		tb.Fatal(err)
	}
	bin := filepath.Join(dir, "self")
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}, Pdeathsig: syscall.SIGKILL}
	return cmd
}

// TempFiles lists the ".*.tmp-*" files an atomic write leaves in dir.
func TempFiles(tb testing.TB, dir string) []string {
	tb.Helper()
	m, err := filepath.Glob(filepath.Join(dir, ".*.tmp-*"))
	if err != nil {
		tb.Fatal(err)
	}
	return m
}
