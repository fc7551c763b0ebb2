package delegate

import (
	"os"
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
