package delegate

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// With Root set, plugins are looked up below it, and the path handed to
// the (chrooted) exec is the one inside the root.
func TestFindInPathBelowRoot(t *testing.T) {
	root := t.TempDir()
	bin := filepath.Join(root, "opt", "cni", "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "macvlan"), []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	e := &BoundedExec{Root: root}
	got, err := e.FindInPath("macvlan", []string{"/usr/libexec/cni", "/opt/cni/bin"})
	if err != nil || got != "/opt/cni/bin/macvlan" {
		t.Errorf("FindInPath = %q, %v; want /opt/cni/bin/macvlan", got, err)
	}
	_, err = e.FindInPath("flannel", []string{"/opt/cni/bin"})
	if err == nil || !strings.Contains(err.Error(), "chrootDir "+root) {
		t.Errorf("missing plugin: err %v, want one naming the chrootDir", err)
	}
	if got, err := (&BoundedExec{}).FindInPath("macvlan", []string{bin}); err != nil || got != filepath.Join(bin, "macvlan") {
		t.Errorf("without Root: %q, %v", got, err)
	}
}

// A background plugin runs at nice 19 from its start; others at the
// daemon's nice, which the background start leaves as it was.
func TestBackgroundPluginsAreNiced(t *testing.T) {
	script := filepath.Join(t.TempDir(), "nice-plugin")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nnice\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	e := &BoundedExec{}
	own, _ := exec.Command("nice").Output()
	for range 20 {
		out, err := e.ExecPlugin(WithBackground(context.Background()), script, nil, nil)
		if err != nil || strings.TrimSpace(string(out)) != "19" {
			t.Fatalf("background plugin nice %q, %v; want 19", out, err)
		}
		out, err = e.ExecPlugin(context.Background(), script, nil, nil)
		if err != nil || string(out) != string(own) {
			t.Fatalf("plugin nice %q, %v; want %q", out, err, own)
		}
	}
}
