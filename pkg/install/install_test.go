package install

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/plexus-cni/plexus/pkg/api/wire"
)

// srcDir holds "plexus" and "plexus-replay", both the sleep binary.
func srcDir(t *testing.T) string {
	t.Helper()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary")
	}
	data, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, n := range []string{ShimName, wire.ReplayName} {
		if err := os.WriteFile(filepath.Join(dir, n), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// Replacing a binary that is running succeeds (no "text file busy"), and
// leaves no temp file; plexus-replay is installed beside the shim.
func TestShimReplacesRunningBinary(t *testing.T) {
	src, dir := srcDir(t), t.TempDir()
	if err := Shim(src, dir); err != nil {
		t.Fatal(err)
	}
	running := exec.Command(filepath.Join(dir, "plexus"), "5")
	if err := running.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = running.Process.Kill(); _ = running.Wait() }()
	time.Sleep(50 * time.Millisecond)
	if err := Shim(src, dir); err != nil {
		t.Fatalf("install over a running shim: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("dir holds %d entries, want only plexus and plexus-replay", len(entries))
	}
	for _, n := range []string{"plexus", "plexus-replay"} {
		fi, err := os.Stat(filepath.Join(dir, n))
		if err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("installed %s: %v %v", n, fi, err)
		}
	}
}

// Multus's names: the shim as plexus, multus-shim and passthru, and the
// replay beside them.
func TestMultusShim(t *testing.T) {
	src, dir := srcDir(t), t.TempDir()
	if err := MultusShim(src, dir); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"plexus", "multus-shim", "passthru", "plexus-replay"} {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			t.Error(err)
		}
	}
}

// Without plexus-replay in the source, nothing is installed: a shim that
// could not replay a DEL is not put in place.
func TestShimMissingSource(t *testing.T) {
	src, dir := srcDir(t), t.TempDir()
	if err := os.Remove(filepath.Join(src, wire.ReplayName)); err != nil {
		t.Fatal(err)
	}
	if err := Shim(src, dir); err == nil {
		t.Fatal("no error for a missing plexus-replay")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("left %d files", len(entries))
	}
}
