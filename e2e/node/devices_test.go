package node

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-cni/plexus/internal/testutil"
)

// The device path through the real kubelet, as sriov-network-device-plugin
// and sriov-cni use it: a device plugin (DaemonSet) registers
// plexus.test/vf with the kubelet and advertises four "VFs" by PCI
// address; pods request them in their resources; the kubelet allocates;
// plexusd asks the kubelet's PodResources API which devices the pod got,
// hands each attachment its deviceID, and the CNI stand-in (vfplugin)
// moves the link behind it into the pod.

const (
	vfResource    = "plexus.test/vf"
	ghostResource = "plexus.test/ghost"
	ghostID       = "0000:00:1f.7" // advertised, no link behind it
	dpImage       = "plexus.local/deviceplugin:e2e"
)

var vfIDs = []string{"0000:00:0a.0", "0000:00:0a.1", "0000:00:0a.2", "0000:00:0a.3"}

// vfLink is the link behind a PCI address (vfplugin's convention).
func vfLink(id string) string {
	return "vf" + regexp.MustCompile(`[^0-9a-zA-Z]`).ReplaceAllString(id, "")
}

func hostHasLink(name string) bool { return fileExists("/sys/class/net/" + name) }

// vfsOnHost lists those of ids whose VF link is in the host netns.
func vfsOnHost(ids []string) []string {
	var out []string
	for _, id := range ids {
		if hostHasLink(vfLink(id)) {
			out = append(out, id)
		}
	}
	return out
}

func (n *Node) deployDevicePlugin(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	bin := filepath.Join(n.Repo, "bin", "test", "deviceplugin")
	if !fileExists(bin) {
		t.Fatalf("%s missing: run `make e2e-node` (testbins)", bin)
	}
	n.BuildAndImport(t, "deviceplugin.tar", dpImage, "/deviceplugin", bin+":/deviceplugin")
	manifest := n.Testdata(t, "deviceplugin.yaml", "@@IMAGE@@", dpImage, "@@VF_IDS@@", strings.Join(vfIDs, ","), "@@GHOST_ID@@", ghostID,
		"@@DEVICE_PLUGINS@@", "/var/lib/kubelet/device-plugins", "@@DEVINFO@@", n.devInfoDir())
	if _, err := n.Kubectl(ctx, manifest, "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	if err := testutil.WaitFor(ctx, 90*time.Second, func() (bool, string) {
		node, err := n.Kube.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		vf, gh := node.Status.Allocatable[vfResource], node.Status.Allocatable[ghostResource]
		return vf.Value() == int64(len(vfIDs)) && gh.Value() == 1, fmt.Sprintf("allocatable %s=%s %s=%s", vfResource, vf.String(), ghostResource, gh.String())
	}); err != nil {
		t.Fatalf("the kubelet does not offer the devices: %v", err)
	}
}

// devicePod is a pause pod whose container requests count devices of res.
func (n *Node) devicePod(t *testing.T, ns, name, networks, res string, count int64) {
	t.Helper()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: map[string]string{networksKey: networks}}, Spec: podSpec()}
	if count > 0 {
		q := *resource.NewQuantity(count, resource.DecimalSI)
		p.Spec.Containers[0].Resources = corev1.ResourceRequirements{
			Limits: corev1.ResourceList{corev1.ResourceName(res): q}, Requests: corev1.ResourceList{corev1.ResourceName(res): q},
		}
	}
	if _, err := n.Kube.CoreV1().Pods(ns).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
		t.Fatalf("pod %s/%s: %v", ns, name, err)
	}
}

// deviceIDs are the PCI addresses network-status reports for net1…
func deviceIDs(t *testing.T, st []NetStatus, raw string) []string {
	t.Helper()
	var full []struct {
		Interface  string `json:"interface"`
		DeviceInfo struct {
			Type string `json:"type"`
			PCI  struct {
				Address string `json:"pci-address"`
			} `json:"pci"`
		} `json:"device-info"`
	}
	if err := json.Unmarshal([]byte(raw), &full); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range full {
		if s.Interface != "eth0" {
			if s.DeviceInfo.Type != "pci" || s.DeviceInfo.PCI.Address == "" {
				t.Errorf("network-status %s has no pci device-info: %s", s.Interface, raw)
			}
			ids = append(ids, s.DeviceInfo.PCI.Address)
		}
	}
	return ids
}

// waitWarning waits for a Warning Event on the pod whose message has all of want.
func (n *Node) waitWarning(t *testing.T, ns, pod string, want ...string) string {
	t.Helper()
	ctx := context.Background()
	var msg string
	if err := testutil.WaitFor(ctx, 90*time.Second, func() (bool, string) {
		evs, err := n.Kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + pod + ",type=Warning"})
		if err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, e := range evs.Items {
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(e.Message, w)
			}
			if ok {
				msg = e.Reason + ": " + e.Message
				return true, ""
			}
			seen = append(seen, e.Reason+": "+e.Message)
		}
		return false, fmt.Sprintf("Warning Events: %q", seen)
	}); err != nil {
		t.Fatalf("no Warning Event on %s/%s with %q: %v", ns, pod, want, err)
	}
	return msg
}

func testDevices(t *testing.T, n *Node) {
	ctx := context.Background()
	for _, id := range vfIDs {
		l := vfLink(id)
		if out, err := exec.Command("ip", "link", "add", l, "link", parentA, "type", "macvlan", "mode", "bridge").CombinedOutput(); err != nil {
			t.Fatalf("VF link %s: %v: %s", l, err, out)
		}
		t.Cleanup(func() { _ = exec.Command("ip", "link", "del", l).Run() })
	}
	if err := copyFile(filepath.Join(n.Repo, "bin", "test", "vfplugin"), filepath.Join(n.binDir(), "vfplugin"), 0o755); err != nil {
		t.Fatal(err)
	}
	n.deployDevicePlugin(t)
	t.Cleanup(func() {
		_, _ = n.Kubectl(context.Background(), nil, "-n", "kube-system", "delete", "daemonset", "plexus-test-device-plugin", "--wait=true", "--timeout=60s")
	})
	ns := n.Namespace(t, "node-devices")
	nad := func(name, res string) {
		conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"type":"vfplugin","capabilities":{"deviceID":true}}`, name)
		n.NAD(t, ns, name, conf)
		patch := fmt.Sprintf(`{"metadata":{"annotations":{"k8s.v1.cni.cncf.io/resourceName":%q}}}`, res)
		if _, err := n.Kubectl(ctx, nil, "-n", ns, "patch", "network-attachment-definitions.k8s.cni.cncf.io", name, "--type", "merge", "-p", patch); err != nil {
			t.Fatal(err)
		}
	}
	nad("vf-net", vfResource)
	nad("vf-ghost", ghostResource)

	// Two pods, two VFs each, the NAD referenced twice.
	start := time.Now()
	n.devicePod(t, ns, "a", "vf-net,vf-net", vfResource, 2)
	n.devicePod(t, ns, "b", "vf-net,vf-net", vfResource, 2)
	seen := map[string]string{}
	sbs := map[string]Sandbox{}
	for _, name := range []string{"a", "b"} {
		p := n.WaitRunning(t, ns, name, 90*time.Second)
		st, links := n.CheckStatusMatchesNetns(t, p)
		if got := strings.Join(keys(links), ","); got != "eth0,net1,net2" {
			t.Fatalf("pod %s links %s, want eth0,net1,net2", name, got)
		}
		p, _ = n.Kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		ids := deviceIDs(t, st, p.Annotations[statusKey])
		if len(ids) != 2 {
			t.Fatalf("pod %s device IDs %v, want 2", name, ids)
		}
		for _, id := range ids {
			if !slices.Contains(vfIDs, id) {
				t.Errorf("pod %s got device %s, not one the plugin advertised", name, id)
			}
			if other, dup := seen[id]; dup {
				t.Errorf("device %s given to pods %s and %s", id, other, name)
			}
			seen[id] = name
			if hostHasLink(vfLink(id)) {
				t.Errorf("device %s (link %s) of pod %s is still on the host", id, vfLink(id), name)
			}
		}
		sbs[name] = n.SandboxOf(t, p)
	}
	t.Logf("2 pods with 2 VFs each Running %s after creation; devices %v", time.Since(start).Round(time.Millisecond), seen)

	// plexusd restarts between ADD and DEL: the devices still come back
	// (the record names them).
	old, err := n.plexusPod(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Kube.CoreV1().Pods("kube-system").Delete(ctx, old.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	n.waitPlexusReady(t, string(old.UID), 2*time.Minute)
	n.deleteAll(t, ns, []*corev1.Pod{{ObjectMeta: metav1.ObjectMeta{Name: "a"}}, {ObjectMeta: metav1.ObjectMeta{Name: "b"}}}, sbs)
	if err := testutil.WaitFor(ctx, 30*time.Second, func() (bool, string) {
		return len(vfsOnHost(vfIDs)) == len(vfIDs), fmt.Sprintf("VFs on the host: %v", vfsOnHost(vfIDs))
	}); err != nil {
		t.Errorf("devices not returned after DEL across a plexusd restart: %v", err)
	}

	// Failures: a Warning Event naming the pod, the NAD and the resource;
	// nothing left behind.
	cases := []struct {
		pod, networks, res string
		count              int64
		want               []string
	}{
		{"over", "vf-net,vf-net", vfResource, 1, []string{ns + "/over", ns + "/vf-net", vfResource, "more attachments than devices"}},
		{"unrequested", "vf-net", vfResource, 0, []string{ns + "/unrequested", ns + "/vf-net", vfResource, "request it in a container's resources"}},
		{"ghost", "vf-ghost", ghostResource, 1, []string{ns + "/ghost", ns + "/vf-ghost", ghostID, "not found"}},
	}
	records, ports := n.RecordIDs(), len(BridgePorts())
	for _, c := range cases {
		n.devicePod(t, ns, c.pod, c.networks, c.res, c.count)
		msg := n.waitWarning(t, ns, c.pod, c.want...)
		t.Logf("%s: %s", c.pod, msg)
	}
	for _, c := range cases {
		n.DeletePod(t, ns, c.pod)
	}
	n.waitNothingLeft(ctx, t, records, ports, vfIDs, func() []string {
		if m, _ := filepath.Glob(filepath.Join(n.devInfoDir(), "cni", "*")); len(m) > 0 {
			return []string{fmt.Sprintf("CNI device-info files %v", m)}
		}
		return nil
	})
	n.measureDevicePods(t, ns)
	// The kubelet's view and the node agree: every device free again.
	node, err := n.Kube.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if a := node.Status.Allocatable[vfResource]; a.Value() != int64(len(vfIDs)) {
		t.Errorf("allocatable %s = %s at the end", vfResource, a.String())
	}
}

// waitNothingLeft waits until failed ADDs have left nothing behind: no
// attachment record or bridge port that was not there before (records,
// ports), every VF of ids back on the host, and nothing more reports.
func (n *Node) waitNothingLeft(ctx context.Context, t *testing.T, records map[string]bool, ports int, ids []string, more func() []string) {
	t.Helper()
	if err := testutil.WaitFor(ctx, 60*time.Second, func() (bool, string) {
		var left []string
		for id := range n.RecordIDs() {
			if !records[id] {
				left = append(left, "record "+id[:12])
			}
		}
		if got := len(BridgePorts()); got > ports {
			left = append(left, fmt.Sprintf("%d bridge ports, %d before", got, ports))
		}
		if got := vfsOnHost(ids); len(got) != len(ids) {
			left = append(left, fmt.Sprintf("VFs on the host %v", got))
		}
		if more != nil {
			left = append(left, more()...)
		}
		return len(left) == 0, strings.Join(left, "; ")
	}); err != nil {
		t.Errorf("left behind by the failed ADDs: %v", err)
	}
}

// measureDevicePods times the sandbox creation (containerd's
// RunPodSandbox, the CNI ADD included) of pods with two VFs and of pods
// with two macvlan networks, one pod at a time, interleaved: the figure
// is what the device step (the PodResources call, device-info) adds.
func (n *Node) measureDevicePods(t *testing.T, ns string) {
	t.Helper()
	n.attachNADs(t, ns)
	ports := len(BridgePorts())
	defer func() {
		// The last pods' DELs done before the next step counts links.
		if err := testutil.WaitFor(context.Background(), 30*time.Second, func() (bool, string) {
			return len(BridgePorts()) <= ports, fmt.Sprintf("%d bridge ports, %d before", len(BridgePorts()), ports)
		}); err != nil {
			t.Error(err)
		}
	}()
	const rounds = 8
	for i := 0; i < rounds; i++ {
		for _, c := range []struct{ prefix, networks, res string }{{"dev-", "vf-net,vf-net", vfResource}, {"mv-", "mv-a,mv-b", ""}} {
			name := fmt.Sprintf("%s%d", c.prefix, i)
			var count int64
			if c.res != "" {
				count = 2
			}
			n.devicePod(t, ns, name, c.networks, c.res, count)
			n.WaitRunning(t, ns, name, 90*time.Second)
			n.DeletePod(t, ns, name)
			// The next pod's devices must be back on the host first.
			if err := testutil.WaitFor(context.Background(), 30*time.Second, func() (bool, string) {
				return len(vfsOnHost(vfIDs)) == len(vfIDs), fmt.Sprintf("VFs on the host: %v", vfsOnHost(vfIDs))
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range []struct{ prefix, what string }{{"dev-", "RunPodSandbox eth0 + 2 VFs (PodResources)"}, {"mv-", "RunPodSandbox eth0 + 2 macvlan (same run)"}} {
		ds := n.SandboxTimes(ns, c.prefix)
		if len(ds) != rounds {
			t.Logf("%d sandbox times for %s pods, want %d", len(ds), c.prefix, rounds)
		}
		n.addLatency(c.what, ds)
	}
}
