package install

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Replacing a binary that is running succeeds (no "text file busy"), and
// leaves no temp file.
func TestShimReplacesRunningBinary(t *testing.T) {
	dir := t.TempDir()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary")
	}
	if err := Shim(sleep, dir); err != nil {
		t.Fatal(err)
	}
	running := exec.Command(filepath.Join(dir, "plexus"), "5")
	if err := running.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = running.Process.Kill(); _ = running.Wait() }()
	time.Sleep(50 * time.Millisecond)
	if err := Shim(sleep, dir); err != nil {
		t.Fatalf("install over a running shim: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("dir holds %d entries, want only plexus", len(entries))
	}
	fi, err := os.Stat(filepath.Join(dir, "plexus"))
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("installed shim: %v %v", fi, err)
	}
}

func TestShimMissingSource(t *testing.T) {
	dir := t.TempDir()
	if err := Shim(filepath.Join(dir, "nope"), dir); err == nil {
		t.Fatal("no error for a missing source")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("left %d files", len(entries))
	}
}
