package hostroot

import (
	"os"
	"path/filepath"
	"testing"
)

func TestPath(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"run/netns", "elsewhere"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "var"), 0o755); err != nil {
		t.Fatal(err)
	}
	// As on Debian: /var/run -> /run, absolute. Joined naively it would
	// lead to the daemon's own /run.
	if err := os.Symlink("/run", filepath.Join(root, "var", "run")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../..", filepath.Join(root, "elsewhere", "up")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ root, in, want string }{
		{"", "/var/run/netns/cni-1", "/var/run/netns/cni-1"},
		{root, "", ""},
		{root, "/var/run/netns/cni-1", filepath.Join(root, "run/netns/cni-1")},
		{root, "/run/netns/cni-1", filepath.Join(root, "run/netns/cni-1")},
		{root, "/elsewhere/up/run/netns/x", filepath.Join(root, "run/netns/x")}, // ".." stays inside
		{root, "/missing/dir/x", filepath.Join(root, "missing/dir/x")},
		{root, "relative/x", filepath.Join(root, "relative/x")},
	} {
		if got := Path(c.root, c.in); got != c.want {
			t.Errorf("Path(%q, %q) = %q, want %q", c.root, c.in, got, c.want)
		}
	}
}
