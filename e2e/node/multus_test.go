package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/plexus-cni/plexus/internal/testutil"
)

// The switch from Multus: Multus thick v4.3.0 deployed from its own
// manifest (built here from the module proxy), pods attached by it, then
// the DaemonSet's image changed to Plexus's and nothing else. The pods
// attached by Multus keep their interfaces and are torn down without a
// leak (from Multus's own cache); new pods get all their networks from
// Plexus. And back: Multus tears down the pods Plexus attached and works.

const (
	multusVersion = "v4.3.0"
	multusImage   = "plexus.local/multus:" + multusVersion + "-thick"
	plexusImage   = "plexus:dev"
)

func (n *Node) multusDir() string      { return filepath.Join(n.Repo, ".cache", "multus-"+multusVersion) }
func (n *Node) multusCNIDir() string   { return n.p("var/lib/cni/multus") }
func (n *Node) multusConfPath() string { return filepath.Join(n.confDir(), "00-multus.conf") }

// multusManifest is Multus's own deployments/multus-daemonset-thick.yml
// with the image given and, as for Plexus's DaemonSet, the host paths
// pointed at this node's private directories (the binDir mount at the
// same path as on the host, as that manifest's comment asks), the config's
// paths likewise, and the API server's address (no kube-proxy here).
func (n *Node) multusManifest(t *testing.T, image string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(n.multusDir(), "multus-daemonset-thick.yml"))
	if err != nil {
		t.Fatalf("%v: run `make e2e-node` (hack/multus-build.sh)", err)
	}
	var out []string
	for _, doc := range strings.Split(string(raw), "\n---") {
		var meta struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatal(err)
		}
		switch meta.Kind {
		case "ConfigMap":
			var cm corev1.ConfigMap
			if err := yaml.Unmarshal([]byte(doc), &cm); err != nil {
				t.Fatal(err)
			}
			cfg := map[string]any{}
			if err := json.Unmarshal([]byte(cm.Data["daemon-config.json"]), &cfg); err != nil {
				t.Fatal(err)
			}
			if cfg["chrootDir"] != "/hostroot" || cfg["socketDir"] != "/host/run/multus/" {
				t.Fatalf("Multus's daemon-config.json changed: %v", cfg)
			}
			cfg["binDir"], cfg["cniDir"], cfg["multusCacheDir"] = n.binDir(), n.multusCNIDir(), n.multusCNIDir()
			b, _ := json.MarshalIndent(cfg, "", "  ")
			cm.Data["daemon-config.json"] = string(b)
			y, _ := yaml.Marshal(cm)
			doc = string(y)
		case "DaemonSet":
			var ds appsv1.DaemonSet
			if err := yaml.Unmarshal([]byte(doc), &ds); err != nil {
				t.Fatal(err)
			}
			n.patchMultusDaemonSet(t, &ds, image)
			y, _ := yaml.Marshal(ds)
			doc = string(y)
		}
		out = append(out, doc)
	}
	return []byte(strings.Join(out, "\n---\n"))
}

func (n *Node) patchMultusDaemonSet(t *testing.T, ds *appsv1.DaemonSet, image string) {
	t.Helper()
	spec := &ds.Spec.Template.Spec
	hostPaths := map[string]string{
		"cni": n.confDir(), "cnibin": n.binDir(), "hostroot": n.hostRoot(), "host-var-lib-cni-multus": n.multusCNIDir(),
		"host-var-lib-kubelet": n.p("kubelet"), "host-run-k8s-cni-cncf-io": n.p("run/k8s.cni.cncf.io"),
		"host-run-netns": n.netnsDir(), "multus-conf-dir": n.p("etc/cni/multus/net.d"),
	}
	for i, v := range spec.Volumes {
		if to, ok := hostPaths[v.Name]; ok && v.HostPath != nil {
			spec.Volumes[i].HostPath.Path = to
			delete(hostPaths, v.Name)
		}
	}
	if len(hostPaths) > 0 {
		t.Fatalf("Multus's manifest has no hostPath volumes %v", keys(hostPaths))
	}
	for _, d := range []string{n.multusCNIDir(), n.p("run/k8s.cni.cncf.io"), n.p("etc/cni/multus/net.d")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	samePath := map[string]string{"cnibin": n.binDir(), "host-var-lib-cni-multus": n.multusCNIDir(), "host-run-netns": n.netnsDir()}
	for ci := range spec.Containers {
		c := &spec.Containers[ci]
		c.Image = image
		for mi, m := range c.VolumeMounts {
			if to, ok := samePath[m.Name]; ok {
				c.VolumeMounts[mi].MountPath = to
			}
		}
		c.Env = append(c.Env, corev1.EnvVar{Name: "KUBERNETES_SERVICE_HOST", Value: "127.0.0.1"}, corev1.EnvVar{Name: "KUBERNETES_SERVICE_PORT", Value: n.APIPort})
	}
	for ci := range spec.InitContainers {
		spec.InitContainers[ci].Image = image
	}
}

// buildMultusImage puts Multus's binaries where its image has them, and
// an /etc/passwd (multus-daemon looks its user up: user.Current).
func (n *Node) buildMultusImage(t *testing.T) {
	t.Helper()
	passwd := n.p("images", "passwd")
	if err := os.WriteFile(passwd, []byte("root:x:0:0:root:/root:/sbin/nologin\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	adds := []string{passwd + ":/etc/passwd:0644"}
	for _, b := range []string{"multus-daemon", "multus-shim", "install_multus", "passthru"} {
		adds = append(adds, filepath.Join(n.multusDir(), b)+":/usr/src/multus-cni/bin/"+b)
	}
	n.BuildAndImport(t, "multus.tar", multusImage, "/usr/src/multus-cni/bin/multus-daemon", adds...)
}

// waitDaemonSetRolled waits until every pod of the DaemonSet runs image.
func (n *Node) waitDaemonSetRolled(t *testing.T, name, image string) {
	t.Helper()
	ctx := context.Background()
	if err := testutil.WaitFor(ctx, 3*time.Minute, func() (bool, string) {
		pods, err := n.Kube.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "name=multus"})
		if err != nil {
			return false, err.Error()
		}
		var st []string
		ok := len(pods.Items) == 1
		for _, p := range pods.Items {
			running := p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil && len(p.Spec.Containers) > 0 && p.Spec.Containers[0].Image == image
			ok = ok && running
			st = append(st, fmt.Sprintf("%s %s %s", p.Name, p.Spec.Containers[0].Image, p.Status.Phase))
		}
		return ok, strings.Join(st, "; ")
	}); err != nil {
		t.Fatalf("%s not rolled to %s: %v", name, image, err)
	}
}

func (n *Node) multusCaches() []string {
	ents, _ := os.ReadDir(n.multusCNIDir())
	var out []string
	for _, e := range ents {
		if !e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}

func testSwitchFromMultus(t *testing.T, n *Node) {
	ctx := context.Background()
	// A Multus node: nothing of the Plexus deployed earlier (Multus would
	// take a leftover 00-plexus.conflist for its primary).
	if fileExists(n.generatedPath()) {
		t.Logf("removing %s left by an earlier step", n.generatedPath())
		os.Remove(n.generatedPath())
	}
	n.buildMultusImage(t)
	if _, err := n.Kubectl(ctx, n.multusManifest(t, multusImage), "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = n.Kubectl(context.Background(), nil, "-n", "kube-system", "delete", "daemonset", "kube-multus-ds", "--wait=true", "--timeout=60s")
		os.Remove(n.multusConfPath())
	})
	n.waitDaemonSetRolled(t, "kube-multus-ds", multusImage)
	if err := testutil.WaitFor(ctx, 60*time.Second, func() (bool, string) {
		return fileExists(n.multusConfPath()), "no " + n.multusConfPath()
	}); err != nil {
		t.Fatal(err)
	}
	n.waitRuntimeUses(t, "multus-cni-network")

	ns := n.Namespace(t, "node-multus")
	n.attachNADs(t, ns)
	before := map[string]Sandbox{}
	links := map[string]map[string]Link{}
	for _, name := range []string{"m1", "m2"} {
		n.Pod(t, ns, name, "mv-a,mv-b")
		p := n.WaitRunning(t, ns, name, 90*time.Second)
		sb := n.SandboxOf(t, p)
		links[name] = Links(t, sb.NetNS)
		if got := strings.Join(keys(links[name]), ","); got != "eth0,net1,net2" {
			t.Fatalf("pod %s attached by Multus has %s, want eth0,net1,net2", name, got)
		}
		before[name] = sb
	}
	if c := n.multusCaches(); len(c) != 2 {
		t.Fatalf("Multus's delegate caches %v, want one per pod", c)
	}
	ports := len(BridgePorts())

	// The switch: the image, nothing else.
	start := time.Now()
	if _, err := n.Kubectl(ctx, nil, "-n", "kube-system", "set", "image", "daemonset/kube-multus-ds", "kube-multus="+plexusImage, "install-multus-binary="+plexusImage); err != nil {
		t.Fatal(err)
	}
	n.waitDaemonSetRolled(t, "kube-multus-ds", plexusImage)
	n.waitRuntimeUses(t, "plexus-cni-network")
	// install_multus installed Plexus's shim under Multus's names, passthru
	// included (a NAD of type passthru keeps working), and plexus-replay
	// beside it.
	shimBin, _ := os.ReadFile(filepath.Join(n.Repo, "bin", "linux_amd64", "plexus"))
	replayBin, _ := os.ReadFile(filepath.Join(n.Repo, "bin", "linux_amd64", "plexus-replay"))
	for name, want := range map[string][]byte{"multus-shim": shimBin, "passthru": shimBin, "plexus-replay": replayBin} {
		if b, err := os.ReadFile(filepath.Join(n.binDir(), name)); err != nil || !bytes.Equal(b, want) {
			t.Errorf("%s in the node's CNI bin dir is not Plexus's after the switch (%v)", name, err)
		}
	}
	// Plexus's config in Multus's file name: replaced, not added.
	if b, err := os.ReadFile(n.multusConfPath()); err != nil || !strings.Contains(string(b), `"type": "plexus"`) {
		t.Errorf("%s after the switch: %v\n%s", n.multusConfPath(), err, b)
	}
	t.Logf("switched to Plexus (image changed → plexus-cni-network in use) in %s", time.Since(start).Round(time.Millisecond))
	for name, sb := range before {
		if got := Links(t, sb.NetNS); fmt.Sprint(got) != fmt.Sprint(links[name]) {
			t.Errorf("pod %s's interfaces changed across the switch:\nbefore %v\nafter  %v", name, links[name], got)
		}
	}
	// New pods: every network from Plexus.
	p := n.Pod(t, ns, "after", "mv-a,mv-b")
	p = n.WaitRunning(t, ns, p.Name, 90*time.Second)
	if _, l := n.CheckStatusMatchesNetns(t, p); strings.Join(keys(l), ",") != "eth0,net1,net2" {
		t.Errorf("pod after the switch has %v", keys(l))
	}
	after := n.SandboxOf(t, p)
	// The pods Multus attached, deleted now: nothing of theirs is left.
	for name := range before {
		n.DeletePod(t, ns, name)
	}
	// The runtime keeps its own result of the network it called at ADD
	// (/var/lib/cni/results/multus-cni-network-<id>-eth0) and, the
	// network being another now, never deletes it: a record, no resource.
	n.ignoreRuntimeCache = "multus-cni-network-"
	defer func() { n.ignoreRuntimeCache = "" }()
	n.checkGone(t, before, ports-1) // the new pod holds one port
	for _, sb := range before {
		for _, c := range n.multusCaches() {
			if c == sb.ID {
				t.Errorf("Multus's delegate cache of %s left", c[:12])
			}
		}
	}
	for name, sb := range before {
		if m, _ := filepath.Glob(filepath.Join(n.multusCNIDir(), "results", "*"+sb.ID+"*")); len(m) > 0 {
			t.Errorf("libcni cache entries of %s left in Multus's dir: %v", name, m)
		}
	}
	n.ignoreRuntimeCache = ""

	// The way back: Multus's image again. The pod Plexus attached is torn
	// down by Multus, from the plan Plexus wrote in Multus's format.
	if _, err := n.Kubectl(ctx, nil, "-n", "kube-system", "set", "image", "daemonset/kube-multus-ds", "kube-multus="+multusImage, "install-multus-binary="+multusImage); err != nil {
		t.Fatal(err)
	}
	n.waitDaemonSetRolled(t, "kube-multus-ds", multusImage)
	n.waitRuntimeUses(t, "multus-cni-network")
	n.DeletePod(t, ns, p.Name)
	n.ignoreRuntimeCache = "plexus-cni-network-"
	n.checkGone(t, map[string]Sandbox{"after": after}, ports-2)
	n.ignoreRuntimeCache = ""
	if c := n.multusCaches(); len(c) != 0 {
		t.Errorf("delegate caches left after Multus's DEL of the pod Plexus attached: %v", c)
	}
	// And Multus works on the node.
	back := n.Pod(t, ns, "back", "mv-a,mv-b")
	back = n.WaitRunning(t, ns, back.Name, 90*time.Second)
	backSB := n.SandboxOf(t, back)
	if l := Links(t, backSB.NetNS); strings.Join(keys(l), ",") != "eth0,net1,net2" {
		t.Errorf("pod after the way back has %v", keys(l))
	}
	n.DeletePod(t, ns, back.Name)
	// Multus v4.3.0's own DEL of a pod it attached leaks the primary's IP
	// when the primary is a conflist (it deletes from a copy of the config
	// without the plugins' ipam: Multus #1521); the rest must be gone.
	if err := testutil.WaitFor(ctx, 60*time.Second, func() (bool, string) {
		var left []string
		for _, l := range n.leftovers(map[string]Sandbox{"back": backSB}, ports-2) {
			if !strings.Contains(l, "IP allocation "+primaryNet+"/") {
				left = append(left, l)
			}
		}
		return len(left) == 0, strings.Join(left, "; ")
	}); err != nil {
		t.Errorf("left behind by Multus's DEL: %v", err)
	}
	for f, id := range n.Allocations() {
		if id == backSB.ID {
			t.Logf("Multus #1521 reproduced: its DEL left %s allocated", f)
			os.Remove(filepath.Join(n.ipamDir(), f))
		}
	}
}
