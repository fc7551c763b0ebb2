package node

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-cni/plexus/internal/testutil"
)

// The primaries matrix: Plexus (deployed from deployments/, delegates
// chrooted into the host root) over each primary CNI that can run here,
// switched live the way docs/primaries.md says: bridge → ptp (the file
// replaced), ptp → Flannel (Flannel's DaemonSet installs its conf, the old
// one is removed), Flannel → bridge. Pods created on a primary are torn
// down by their own recorded primary config after the switch.

const (
	flannelVersion = "v0.28.10"
	flannelImage   = "plexus.local/flannel:" + flannelVersion
	flannelFile    = "10-flannel.conflist"
	flannelLink    = "plxn-fl0" // flanneld's --iface (veth, 10.249.0.1/24)
	flannelPeer    = "plxn-fl1"
	flannelBridge  = "cni0" // the flannel CNI plugin's bridge delegate
	flannelVXLAN   = "flannel.1"
)

// ptpConflist is a kubenet-style point-to-point primary.
func (n *Node) ptpConflist() string {
	return fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "plexus-e2e-ptp",
  "plugins": [
    {
      "type": "ptp",
      "ipMasq": false,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "10.246.0.0/24"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": %q
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`, n.ipamDir())
}

func (n *Node) flannelDir() string {
	return filepath.Join(n.Repo, ".cache", "primaries", "flannel-"+flannelVersion)
}
func (n *Node) runFlannel() string     { return n.p("run/flannel") }
func (n *Node) flannelDataDir() string { return n.p("var/lib/cni/flannel") }

// writePrimary replaces a file in the runtime's CNI config dir atomically.
func (n *Node) writePrimary(t *testing.T, name, content string) {
	t.Helper()
	tmp := filepath.Join(n.confDir(), "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(n.confDir(), name)); err != nil {
		t.Fatal(err)
	}
}

// waitRegenerated waits for plexusd's Node Event saying the generated
// config now follows primary (a file name), newer than since.
func (n *Node) waitRegenerated(t *testing.T, primary string, since time.Time) {
	t.Helper()
	ctx := context.Background()
	if err := testutil.WaitFor(ctx, 60*time.Second, func() (bool, string) {
		evs, err := n.Kube.CoreV1().Events("").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=Node,reason=CNIConfigRegenerated"})
		if err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, e := range evs.Items {
			if e.InvolvedObject.Name == nodeName && strings.HasSuffix(e.Message, "/"+primary) && !e.LastTimestamp.Time.Before(since.Truncate(time.Second)) {
				return true, ""
			}
			seen = append(seen, e.Message)
		}
		return false, fmt.Sprintf("CNIConfigRegenerated Events: %q", seen)
	}); err != nil {
		t.Fatalf("plexusd did not regenerate its config for %s: %v", primary, err)
	}
}

// primaryPair starts two pods with eth0 from the primary and net1 (mv-a),
// checks their addresses and network-status, and pings each way over eth0
// and net1.
func (n *Node) primaryPair(t *testing.T, ns, prefix, eth0Prefix string) (map[string]Sandbox, []*corev1.Pod) {
	t.Helper()
	var pods []*corev1.Pod
	for _, name := range []string{prefix + "-a", prefix + "-b"} {
		n.Pod(t, ns, name, "mv-a")
	}
	sbs := map[string]Sandbox{}
	ips := map[string]map[string]string{} // pod → ifname → IP
	for _, name := range []string{prefix + "-a", prefix + "-b"} {
		p := n.WaitRunning(t, ns, name, 90*time.Second)
		pods = append(pods, p)
		st, links := n.CheckStatusMatchesNetns(t, p)
		if got := strings.Join(keys(links), ","); got != "eth0,net1" {
			t.Fatalf("%s links %s, want eth0,net1", name, got)
		}
		ips[name] = map[string]string{}
		for ifc, l := range links {
			if len(l.IPs) != 1 {
				t.Fatalf("%s %s has IPs %v", name, ifc, l.IPs)
			}
			ips[name][ifc] = strings.Split(l.IPs[0], "/")[0]
		}
		if !strings.HasPrefix(ips[name]["eth0"], eth0Prefix) {
			t.Errorf("%s eth0 %s, want an address from the primary (%s*)", name, ips[name]["eth0"], eth0Prefix)
		}
		for _, s := range st {
			if s.Interface == "eth0" && (!s.Default || !hasIP(s.IPs, ips[name]["eth0"])) {
				t.Errorf("%s network-status eth0 %+v: want the default network with the primary's IP %s", name, s, ips[name]["eth0"])
			}
		}
		sbs[name] = n.SandboxOf(t, p)
	}
	a, b := prefix+"-a", prefix+"-b"
	for _, ifc := range []string{"eth0", "net1"} {
		ping(t, sbs[a].NetNS, ips[b][ifc], a+" → "+b+" over "+ifc)
		ping(t, sbs[b].NetNS, ips[a][ifc], b+" → "+a+" over "+ifc)
	}
	return sbs, pods
}

func ping(t *testing.T, netns, ip, what string) {
	t.Helper()
	out, err := exec.Command("nsenter", "--net="+netns, "ping", "-c", "1", "-W", "2", ip).CombinedOutput()
	if err != nil {
		t.Errorf("ping %s (%s): %v: %s", what, ip, err, out)
	}
}

// hostVeths counts the host's veth links (pods' host ends; the test's own
// pairs excluded).
func hostVeths(t *testing.T) int {
	t.Helper()
	out, err := exec.Command("ip", "-j", "link", "show", "type", "veth").Output()
	if err != nil {
		t.Fatalf("ip link show type veth: %v", err)
	}
	var ls []struct {
		IfName string `json:"ifname"`
	}
	if err := json.Unmarshal(out, &ls); err != nil {
		t.Fatalf("ip -j link: %v: %s", err, out)
	}
	c := 0
	for _, l := range ls {
		if !strings.HasPrefix(l.IfName, "plxn-") {
			c++
		}
	}
	return c
}

// onOldPrimary makes a namespace with the NADs and a pod (eth0 and net1)
// on the primary in place now, to be deleted after the switch.
func (n *Node) onOldPrimary(t *testing.T, nsName, pod string) (string, Sandbox) {
	t.Helper()
	ns := n.Namespace(t, nsName)
	n.attachNADs(t, ns)
	n.Pod(t, ns, pod, "mv-a")
	return ns, n.SandboxOf(t, n.WaitRunning(t, ns, pod, 90*time.Second))
}

func (n *Node) deleteAll(t *testing.T, ns string, pods []*corev1.Pod, sbs map[string]Sandbox) {
	t.Helper()
	for _, p := range pods {
		n.DeletePod(t, ns, p.Name)
	}
	n.checkGone(t, sbs, len(BridgePorts()))
}

// testPrimaryPtp: the bridge primary's file is replaced by a ptp one.
// Pods made before keep their bridge eth0 and are torn down by it; new
// pods get ptp's eth0; DEL leaves nothing.
func testPrimaryPtp(t *testing.T, n *Node) {
	ns, oldSB := n.onOldPrimary(t, "node-ptp", "on-bridge")
	ports, veths := len(BridgePorts()), hostVeths(t)

	since := time.Now()
	n.writePrimary(t, primaryFile, n.ptpConflist())
	n.waitRegenerated(t, primaryFile, since)
	start := time.Now()
	sbs, pods := n.primaryPair(t, ns, "ptp", "10.246.0.")
	t.Logf("ptp primary: 2 pods Running, pinged over eth0 and net1, in %s", time.Since(start).Round(time.Millisecond))
	if got := hostVeths(t); got < veths+2 {
		t.Errorf("host veths %d, want at least %d (one per ptp pod)", got, veths+2)
	}
	// The pod made on the bridge is torn down by its recorded config.
	n.DeletePod(t, ns, "on-bridge")
	n.checkGone(t, map[string]Sandbox{"on-bridge": oldSB}, ports-1)
	n.deleteAll(t, ns, pods, sbs)
	// At most: the count taken before may include a veth whose DEL (an
	// earlier step's pod) was still running.
	if got := hostVeths(t); got > veths-1 {
		t.Errorf("host veths %d after the DELs, want at most %d", got, veths-1)
	}
}

// deployFlannel applies testdata/kube-flannel.yaml for this node.
func (n *Node) deployFlannel(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	dir := n.flannelDir()
	plugin := filepath.Join(n.Repo, "bin", "cni", "flannel")
	for _, f := range []string{filepath.Join(dir, "flanneld"), filepath.Join(dir, "install-conf"), plugin} {
		if !fileExists(f) {
			t.Fatalf("%s missing: run `make e2e-node` (hack/flannel-build.sh, make plugins)", f)
		}
	}
	n.BuildAndImport(t, "flannel.tar", flannelImage, "/opt/bin/flanneld",
		filepath.Join(dir, "flanneld")+":/opt/bin/flanneld", filepath.Join(dir, "install-conf")+":/opt/bin/install-conf", plugin+":/flannel")
	manifest := n.Testdata(t, "kube-flannel.yaml",
		"@@IMAGE@@", flannelImage, "@@IFACE@@", flannelLink, "@@API_PORT@@", n.APIPort,
		"@@RUN_FLANNEL@@", n.runFlannel(), "@@FLANNEL_DATA@@", n.flannelDataDir(), "@@IPAM_DIR@@", n.ipamDir(),
		"@@CNI_BIN@@", n.binDir(), "@@CNI_CONF@@", n.confDir())
	if _, err := n.Kubectl(ctx, manifest, "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
}

// testPrimaryFlannel: Flannel's DaemonSet (flanneld, kube subnet manager,
// vxlan) installs its plugin and 10-flannel.conflist; the old primary's
// file is removed (docs/primaries.md). Pods made on ptp are torn down by
// ptp; new pods get eth0 from the node's podCIDR through the flannel
// plugin, which plexusd runs chrooted (it reads subnet.env, a host file).
func testPrimaryFlannel(t *testing.T, n *Node) {
	ctx := context.Background()
	ns, oldSB := n.onOldPrimary(t, "node-flannel", "on-ptp")
	veths := hostVeths(t)

	start := time.Now()
	// 10-flannel.conflist sorts before 10-primary.conflist: it becomes the
	// primary as soon as it is installed, before the old file is removed.
	since := start
	n.deployFlannel(t)
	subnetEnv := filepath.Join(n.runFlannel(), "subnet.env")
	if err := testutil.WaitFor(ctx, 2*time.Minute, func() (bool, string) {
		return fileExists(subnetEnv) && fileExists(filepath.Join(n.confDir(), flannelFile)), "flanneld has not written " + subnetEnv + " or " + flannelFile + " yet; " + n.podEvents("kube-flannel", "")
	}); err != nil {
		t.Fatal(err)
	}
	env, _ := os.ReadFile(subnetEnv)
	node, err := n.Kube.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if node.Spec.PodCIDR == "" || !strings.Contains(string(env), "FLANNEL_NETWORK=10.244.0.0/16") {
		t.Fatalf("node podCIDR %q, subnet.env:\n%s", node.Spec.PodCIDR, env)
	}
	t.Logf("flanneld up (podCIDR %s) %s after apply", node.Spec.PodCIDR, time.Since(start).Round(time.Millisecond))
	if err := os.Remove(filepath.Join(n.confDir(), primaryFile)); err != nil {
		t.Fatal(err)
	}
	n.waitRegenerated(t, flannelFile, since)

	eth0Prefix := strings.TrimSuffix(strings.TrimSuffix(node.Spec.PodCIDR, "/24"), "0")
	sbs, pods := n.primaryPair(t, ns, "fl", eth0Prefix)
	for _, sb := range sbs {
		if !fileExists(filepath.Join(n.flannelDataDir(), sb.ID)) {
			t.Errorf("the flannel plugin kept no state for %s in %s", sb.ID[:12], n.flannelDataDir())
		}
	}
	n.DeletePod(t, ns, "on-ptp")
	n.checkGone(t, map[string]Sandbox{"on-ptp": oldSB}, len(BridgePorts()))
	n.deleteAll(t, ns, pods, sbs)
	// At most: the count taken before may include a veth whose DEL (an
	// earlier step's pod) was still running.
	if got := hostVeths(t); got > veths-1 {
		t.Errorf("host veths %d after the DELs, want at most %d", got, veths-1)
	}
	left, _ := os.ReadDir(n.flannelDataDir())
	if len(left) > 0 {
		t.Errorf("flannel plugin state left: %d files in %s", len(left), n.flannelDataDir())
	}
}

// testPrimaryBack: the primary before (Calico, or Flannel when Calico's
// step did not get that far) removed, the bridge primary back; pods get
// the bridge's eth0 again.
func testPrimaryBack(t *testing.T, n *Node) {
	ctx := context.Background()
	if _, err := n.Kubectl(ctx, nil, "delete", "namespace", "kube-flannel", "--ignore-not-found", "--wait=true", "--timeout=2m"); err != nil {
		t.Fatal(err)
	}
	since := time.Now()
	n.writePrimary(t, primaryFile, n.primaryConflist())
	for _, f := range []string{flannelFile, calicoFile} {
		if err := os.Remove(filepath.Join(n.confDir(), f)); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	n.waitRegenerated(t, primaryFile, since)
	ns := n.Namespace(t, "node-back")
	n.attachNADs(t, ns)
	sbs, pods := n.primaryPair(t, ns, "back", "10.247.0.")
	n.deleteAll(t, ns, pods, sbs)
}

const (
	calicoFile = "10-calico.conflist"
	calicoPool = "10.245."
)

func (n *Node) calicoDir() string {
	return filepath.Join(n.Repo, ".cache", "primaries", "calico-v3.28.5")
}

// calicoConflist is manifests/calico.yaml's cni_network_config with what
// its install-cni fills in, and, as no calico-node runs, nodename given
// (nodename_file_optional); the log and the IPAM lock in the test's dir.
func (n *Node) calicoConflist() string {
	return fmt.Sprintf(`{
  "name": "k8s-pod-network",
  "cniVersion": "0.3.1",
  "plugins": [
    {
      "type": "calico",
      "log_level": "info",
      "log_file_path": %q,
      "datastore_type": "kubernetes",
      "nodename": %q,
      "nodename_file_optional": true,
      "ipam_lock_file": %q,
      "mtu": 1500,
      "ipam": {"type": "calico-ipam"},
      "policy": {"type": "k8s"},
      "kubernetes": {"kubeconfig": %q}
    },
    {"type": "portmap", "snat": true, "capabilities": {"portMappings": true}},
    {"type": "bandwidth", "capabilities": {"bandwidth": true}}
  ]
}
`, n.p("var/log/calico/cni.log"), nodeName, n.p("run/calico/ipam.lock"), filepath.Join(n.confDir(), "calico-kubeconfig"))
}

// calicoHandles counts Calico's IPAM handles (one per attached sandbox).
func (n *Node) calicoHandles(t *testing.T) int {
	t.Helper()
	out, err := n.Kubectl(context.Background(), nil, "get", "ipamhandles.crd.projectcalico.org", "-o", "name")
	if err != nil {
		t.Fatal(err)
	}
	return len(strings.Fields(out))
}

// testPrimaryCalico: Flannel → Calico. Calico's CRDs, RBAC,
// ClusterInformation and IPPool applied, its plugins and kubeconfig
// installed, 10-calico.conflist written, Flannel uninstalled (DaemonSet,
// then its file). The pod made on Flannel is torn down by its recorded
// Flannel config with flanneld gone; new pods get eth0 from Calico's pool;
// DEL releases Calico's IPAM handle.
func testPrimaryCalico(t *testing.T, n *Node) {
	ctx := context.Background()
	dir := n.calicoDir()
	for _, f := range []string{"calico", "calico-ipam", "crds.yaml"} {
		if !fileExists(filepath.Join(dir, f)) {
			t.Fatalf("%s missing: run `make e2e-node` (hack/calico-build.sh)", filepath.Join(dir, f))
		}
	}
	ns, oldSB := n.onOldPrimary(t, "node-calico", "on-flannel")
	veths := hostVeths(t)

	start := time.Now()
	if _, err := n.Kubectl(ctx, nil, "apply", "--server-side", "-f", filepath.Join(dir, "crds.yaml")); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Kubectl(ctx, nil, "wait", "--for", "condition=established", "--timeout=60s", "crd/ippools.crd.projectcalico.org", "crd/clusterinformations.crd.projectcalico.org"); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Kubectl(ctx, nil, "apply", "-f", filepath.Join(n.Repo, "e2e", "node", "testdata", "calico.yaml")); err != nil {
		t.Fatal(err)
	}
	token, err := n.Kubectl(ctx, nil, "-n", "kube-system", "create", "token", "calico-cni-plugin", "--duration=2h")
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Cluster.WriteKubeconfig(filepath.Join(n.confDir(), "calico-kubeconfig"), strings.TrimSpace(token)); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"calico", "calico-ipam"} {
		if err := copyFile(filepath.Join(dir, b), filepath.Join(n.binDir(), b), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	since := time.Now()
	n.writePrimary(t, calicoFile, n.calicoConflist())
	// Flannel uninstalled: its DaemonSet, then its file.
	if _, err := n.Kubectl(ctx, nil, "delete", "namespace", "kube-flannel", "--wait=true", "--timeout=2m"); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(n.confDir(), flannelFile)); err != nil {
		t.Fatal(err)
	}
	n.waitRegenerated(t, calicoFile, since)
	t.Logf("Calico installed and primary %s after the CRDs were applied", time.Since(start).Round(time.Millisecond))

	// The Flannel pod: DEL by its recorded config, flanneld gone.
	n.DeletePod(t, ns, "on-flannel")
	n.checkGone(t, map[string]Sandbox{"on-flannel": oldSB}, len(BridgePorts()))
	if left, _ := os.ReadDir(n.flannelDataDir()); len(left) > 0 {
		t.Errorf("flannel plugin state left after the Flannel pod's DEL: %d files", len(left))
	}

	sbs, pods := n.primaryPair(t, ns, "ca", calicoPool)
	if got := n.calicoHandles(t); got != 2 {
		t.Errorf("Calico IPAM handles %d, want 2", got)
	}
	n.deleteAll(t, ns, pods, sbs)
	// At most: the count taken before may include a veth whose DEL (an
	// earlier step's pod) was still running.
	if got := hostVeths(t); got > veths-1 {
		t.Errorf("host veths %d after the DELs, want at most %d", got, veths-1)
	}
	if got := n.calicoHandles(t); got != 0 {
		t.Errorf("Calico IPAM handles %d after the DELs, want 0", got)
	}
}
