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

// The host path of a daemon-side directory: the same directory below the
// host root, at the same path or without Multus's /host prefix.
func TestOf(t *testing.T) {
	root := t.TempDir()
	daemonSide := t.TempDir() // stands for the pod's /host/run/multus
	hostSide := filepath.Join(root, "run", "multus")
	if err := os.MkdirAll(filepath.Dir(hostSide), 0o755); err != nil {
		t.Fatal(err)
	}
	// The same directory seen twice: a symlink stands in for the bind mount.
	if err := os.Symlink(daemonSide, hostSide); err != nil {
		t.Fatal(err)
	}
	if got := Of(root, daemonSide); got != daemonSide {
		t.Errorf("Of(%q) = %q, want itself (not under /host)", daemonSide, got)
	}
	if got := Of("", "/host/run/multus"); got != "/host/run/multus" {
		t.Errorf("without a root: %q", got)
	}
	if got := Of(root, "/nonexistent/host/x"); got != "/nonexistent/host/x" {
		t.Errorf("missing dir: %q", got)
	}
}
