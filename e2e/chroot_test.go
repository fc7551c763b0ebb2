package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// hostRootView makes a view of the host's root the way the DaemonSet's
// /hostroot mount is one (a recursive bind of /, slave, so network
// namespaces created later show up in it), plus a tmpfs at proof that
// exists only inside the view: a file found or written there was found or
// written by a process chrooted into the view. proof is a host path (an
// empty directory outside the view).
func hostRootView(t *testing.T) (view, proof string) {
	t.Helper()
	base, err := os.MkdirTemp("", "plexus-chroot-")
	if err != nil {
		t.Fatal(err)
	}
	view, proof = filepath.Join(base, "root"), filepath.Join(base, "proof")
	for _, d := range []string{view, proof} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mounted := false
	t.Cleanup(func() {
		if mounted {
			if err := unix.Unmount(view, unix.MNT_DETACH); err != nil {
				t.Errorf("unmount %s: %v (left in place)", view, err)
				return
			}
		}
		// Never RemoveAll: view was a bind of the whole host.
		for _, d := range []string{view, proof, base} {
			if err := os.Remove(d); err != nil {
				t.Errorf("remove %s: %v", d, err)
			}
		}
	})
	if err := unix.Mount("/", view, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		t.Fatalf("rbind / %s: %v", view, err)
	}
	mounted = true
	if err := unix.Mount("", view, "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		t.Fatalf("make-rslave %s: %v", view, err)
	}
	if err := unix.Mount("tmpfs", filepath.Join(view, proof), "tmpfs", 0, "size=64m,mode=0755"); err != nil {
		t.Fatalf("tmpfs at %s in the view: %v", proof, err)
	}
	return view, proof
}

// Multus's chrootDir: the delegates run chrooted into the host's root, so
// binDir, the plugins' own files and the runtime's netns path are host
// paths; the default-route step opens the netns below chrootDir too.
func TestChrootDirDelegatesSeeTheHost(t *testing.T) {
	requireRoot(t)
	view, proof := hostRootView(t)
	bin := filepath.Join(proof, "bin") // exists only in the view
	for _, p := range []string{"macvlan", "host-local", "bridge", "loopback", "flannel"} {
		if err := copyExecutable(filepath.Join(cniBin, p), filepath.Join(view, bin, p)); err != nil {
			t.Fatal(err)
		}
	}
	// A plugin name that exists nowhere but in the view's binDir.
	if err := copyExecutable(filepath.Join(cniBin, "macvlan"), filepath.Join(view, bin, "macvlan-in-view")); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, withConfig("chrootDir", view), withConfig("binDir", []string{bin}))
	ipam := filepath.Join(proof, "ipam")
	mv := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"mvc","type":"macvlan-in-view","master":"plexus-demo0","mode":"bridge","ipam":{"type":"host-local","dataDir":%q,"ranges":[[{"subnet":"192.168.77.0/24","gateway":"192.168.77.1"}]]}}`, ipam)
	// flannel reads /run/flannel/subnet.env, a host file that is missing.
	fl := `{"cniVersion":"0.3.1","name":"fl","type":"flannel","delegate":{"isDefaultGateway":true}}`
	e.writeManifest("nads.yaml", nadManifest("default", "mvc", mv)+"---\n"+nadManifest("default", "fl", fl))
	e.writeManifest("pods.yaml", podManifest("default", "a", `[{"name":"mvc","default-route":["192.168.77.1"]}]`)+"---\n"+podManifest("default", "f", "fl"))

	a := e.newPod("default", "a")
	e.mustAdd(a)
	if l, ok := e.links(a)["net1"]; !ok || len(l.ipv4()) != 1 || !strings.HasPrefix(l.ipv4()[0], "192.168.77.") {
		t.Fatalf("net1 from the chrooted macvlan: %+v", e.links(a))
	}
	inView := files(filepath.Join(view, ipam))
	if len(inView) != 1 {
		t.Errorf("host-local allocations in the view: %v, want one", inView)
	}
	if _, err := os.Stat(ipam); err == nil {
		t.Errorf("host-local wrote %s outside the chroot", ipam)
	}
	// The routes step entered the netns below chrootDir.
	e.wantDefaults(a, "-4", "via 192.168.77.1 dev net1")
	e.mustDel(a)
	if left := files(filepath.Join(view, ipam)); len(left) > 0 {
		t.Errorf("allocations left in the view after DEL: %v", left)
	}
	e.assertClean()

	// A delegate that needs a missing host file: its own error, naming the
	// pod and the network; nothing left.
	f := e.newPod("default", "f")
	r := e.add(f)
	if r.err == nil {
		t.Fatal("ADD with flannel and no subnet.env succeeded")
	}
	msg := r.err.Msg + " " + r.err.Details
	for _, want := range []string{"default/f", "fl", "subnet.env"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not name %q", msg, want)
		}
	}
	if l := e.links(f); len(l) > 1 {
		t.Errorf("links left in the pod after a failed ADD: %v", keys(l))
	}
	e.mustDel(f)
	e.assertClean()
}

// chrootDir must be a directory: plexusd refuses to start otherwise, with
// the key named.
func TestChrootDirMissingRefused(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "plexusd.json")
	missing := filepath.Join(dir, "no-such-hostroot")
	doc := fmt.Sprintf(`{"clusterNetwork":"x","chrootDir":%q,"cniDir":%q,"socketDir":%q}`, missing, filepath.Join(dir, "cni"), filepath.Join(dir, "run"))
	if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	refusesToStart(t, exec.Command(daemonBin, "--config", cfg), "chrootDir", missing, "no such file or directory")
}

func copyExecutable(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o755)
}
