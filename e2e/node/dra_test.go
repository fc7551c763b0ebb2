package node

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-cni/plexus/internal/testutil"
)

// Devices through Dynamic Resource Allocation on the real node: a DRA
// driver (e2e/testplugins/dradriver, built on
// k8s.io/dynamic-resource-allocation/kubeletplugin) registers with the
// kubelet and publishes the node's "VFs" in a ResourceSlice with Multus's
// DRA attributes; pods claim two each through a ResourceClaimTemplate;
// the real scheduler allocates, the resourceclaim controller makes the
// claims, the kubelet has the driver prepare them; plexusd asks the
// kubelet's PodResources API which devices the pod's claims got, reads
// their attributes from the node's ResourceSlices, hands each attachment
// its deviceID, and writes each device's network data into its claim.

const (
	draDriver   = "vf.plexus.test"
	draResource = "plexus.test/vf-dra"
	draGhostID  = "0000:00:1f.6" // published, no link behind it
)

var draIDs = []string{"0000:00:0b.0", "0000:00:0b.1", "0000:00:0b.2", "0000:00:0b.3"}

// draPod is a pod (scheduled: DRA needs the scheduler) with one resource
// claim "vfs" from template, used by its container unless unused.
func (n *Node) draPod(t *testing.T, ns, name, networks, template string, unused bool) {
	t.Helper()
	spec := podSpec()
	spec.NodeName = ""
	spec.ResourceClaims = []corev1.PodResourceClaim{{Name: "vfs", ResourceClaimTemplateName: &template}}
	if !unused {
		spec.Containers[0].Resources.Claims = []corev1.ResourceClaim{{Name: "vfs"}}
	}
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: map[string]string{networksKey: networks}}, Spec: spec}
	if _, err := n.Kube.CoreV1().Pods(ns).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
		t.Fatalf("pod %s/%s: %v", ns, name, err)
	}
}

// claimTemplate asks for count devices of the driver, the ghost device
// excluded or (ghost) alone.
func (n *Node) claimTemplate(t *testing.T, ns, name string, count int64, ghost bool) {
	t.Helper()
	op := "!="
	if ghost {
		op = "=="
	}
	sel := fmt.Sprintf(`device.attributes["k8s.cni.cncf.io"].deviceID %s %q`, op, draGhostID)
	tpl := &resourcev1.ResourceClaimTemplate{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: resourcev1.ResourceClaimTemplateSpec{Spec: resourcev1.ResourceClaimSpec{Devices: resourcev1.DeviceClaim{
			Requests: []resourcev1.DeviceRequest{{Name: "vf", Exactly: &resourcev1.ExactDeviceRequest{
				DeviceClassName: draDriver, AllocationMode: resourcev1.DeviceAllocationModeExactCount, Count: count,
				Selectors: []resourcev1.DeviceSelector{{CEL: &resourcev1.CELDeviceSelector{Expression: sel}}},
			}}},
		}}}}
	if _, err := n.Kube.ResourceV1().ResourceClaimTemplates(ns).Create(context.Background(), tpl, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func testDRA(t *testing.T, n *Node) {
	ctx := context.Background()
	for _, id := range draIDs {
		l := vfLink(id)
		if out, err := exec.Command("ip", "link", "add", l, "link", parentA, "type", "macvlan", "mode", "bridge").CombinedOutput(); err != nil {
			t.Fatalf("VF link %s: %v: %s", l, err, out)
		}
		t.Cleanup(func() { _ = exec.Command("ip", "link", "del", l).Run() })
	}
	if err := copyFile(filepath.Join(n.Repo, "bin", "test", "vfplugin"), filepath.Join(n.binDir(), "vfplugin"), 0o755); err != nil {
		t.Fatal(err)
	}
	class := &resourcev1.DeviceClass{ObjectMeta: metav1.ObjectMeta{Name: draDriver}, Spec: resourcev1.DeviceClassSpec{
		Selectors: []resourcev1.DeviceSelector{{CEL: &resourcev1.CELDeviceSelector{Expression: fmt.Sprintf("device.driver == %q", draDriver)}}}}}
	if _, err := n.Kube.ResourceV1().DeviceClasses().Create(ctx, class, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = n.Kube.ResourceV1().DeviceClasses().Delete(context.Background(), draDriver, metav1.DeleteOptions{})
	})
	bin := filepath.Join(n.Repo, "bin", "test", "dradriver")
	if err := n.spawn("dradriver", bin, "-driver", draDriver, "-node", nodeName, "-kubeconfig", n.Cluster.Kubeconfig,
		"-kubelet-dir", n.p("kubelet"), "-resource", draResource, "-devices", strings.Join(append(slices.Clone(draIDs), draGhostID), ",")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.stopProc("dradriver") })
	if err := testutil.WaitFor(ctx, 60*time.Second, func() (bool, string) {
		sl, err := n.Kube.ResourceV1().ResourceSlices().List(ctx, metav1.ListOptions{FieldSelector: "spec.driver=" + draDriver})
		if err != nil {
			return false, err.Error()
		}
		devs := 0
		for _, s := range sl.Items {
			devs += len(s.Spec.Devices)
		}
		return devs == len(draIDs)+1, fmt.Sprintf("%d devices published", devs)
	}); err != nil {
		t.Fatalf("the DRA driver publishes no ResourceSlice: %v", err)
	}

	ns := n.Namespace(t, "node-dra")
	vfConf := func(name string) string {
		return fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"type":"vfplugin","capabilities":{"deviceID":true}}`, name)
	}
	nad := func(name string, ann map[string]string) {
		n.NAD(t, ns, name, vfConf(name))
		for k, v := range ann {
			patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, k, v)
			if _, err := n.Kubectl(ctx, nil, "-n", ns, "patch", "network-attachment-definitions.k8s.cni.cncf.io", name, "--type", "merge", "-p", patch); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Multus's convention: the NAD's resourceName matches the devices'
	// k8s.cni.cncf.io/resourceName attribute; and Plexus's: the NAD names
	// the pod's resource claim.
	nad("dra-net", map[string]string{"k8s.v1.cni.cncf.io/resourceName": draResource})
	nad("dra-claim", map[string]string{"plexus-cni.io/resource-claim": "vfs"})
	nad("dra-nosuch", map[string]string{"plexus-cni.io/resource-claim": "nosuch"})
	n.claimTemplate(t, ns, "two-vfs", 2, false)
	n.claimTemplate(t, ns, "one-vf", 1, false)
	n.claimTemplate(t, ns, "ghost", 1, true)

	start := time.Now()
	n.draPod(t, ns, "a", "dra-net,dra-net", "two-vfs", false)
	n.draPod(t, ns, "b", "dra-claim,dra-claim", "two-vfs", false)
	seen := map[string]string{}
	for _, name := range []string{"a", "b"} {
		p := n.WaitRunning(t, ns, name, 120*time.Second)
		_, links := n.CheckStatusMatchesNetns(t, p)
		if got := strings.Join(keys(links), ","); got != "eth0,net1,net2" {
			t.Fatalf("pod %s links %s, want eth0,net1,net2", name, got)
		}
		p, _ = n.Kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if len(p.Status.ResourceClaimStatuses) != 1 || p.Status.ResourceClaimStatuses[0].ResourceClaimName == nil {
			t.Fatalf("pod %s claim statuses %+v", name, p.Status.ResourceClaimStatuses)
		}
		claimName := *p.Status.ResourceClaimStatuses[0].ResourceClaimName
		// The claim's status: each device Plexus configured, with the
		// interface, MAC and IPs the pod has.
		var claim *resourcev1.ResourceClaim
		if err := testutil.WaitFor(ctx, 30*time.Second, func() (bool, string) {
			c, err := n.Kube.ResourceV1().ResourceClaims(ns).Get(ctx, claimName, metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			claim = c
			withData := 0
			for _, d := range c.Status.Devices {
				if d.NetworkData != nil {
					withData++
				}
			}
			return withData == 2, fmt.Sprintf("status.devices %+v", c.Status.Devices)
		}); err != nil {
			t.Fatalf("pod %s: claim %s has no network data: %v", name, claimName, err)
		}
		allocated := map[string]bool{}
		for _, r := range claim.Status.Allocation.Devices.Results {
			allocated[r.Device] = true
		}
		for _, d := range claim.Status.Devices {
			nd := d.NetworkData
			l, ok := links[nd.InterfaceName]
			if !ok || nd.HardwareAddress != l.MAC || d.Driver != draDriver || !allocated[d.Device] || !slices.Equal(nd.IPs, l.IPs) {
				t.Errorf("pod %s claim %s: device %s/%s networkData %+v; the pod's %s has %s %v", name, claimName, d.Driver, d.Device, nd, nd.InterfaceName, l.MAC, l.IPs)
			}
			id := strings.NewReplacer("pci-", "", "-", ":").Replace(d.Device) // pci-0000-00-0b-1 → 0000:00:0b:1
			id = id[:len(id)-2] + "." + id[len(id)-1:]
			if other, dup := seen[id]; dup {
				t.Errorf("device %s given to pods %s and %s", id, other, name)
			}
			seen[id] = name
			if hostHasLink(vfLink(id)) {
				t.Errorf("device %s of pod %s is still on the host", id, name)
			}
		}
	}
	t.Logf("2 pods with 2 DRA VFs each Running %s after creation; devices %v", time.Since(start).Round(time.Millisecond), seen)

	// Hot-unplug one of pod a's DRA networks: its device goes back to the
	// host and its network data leaves the claim, which stays.
	if _, err := n.Kubectl(ctx, nil, "-n", ns, "annotate", "--overwrite", "pod", "a", networksKey+"=dra-net"); err != nil {
		t.Fatal(err)
	}
	pa, _ := n.Kube.CoreV1().Pods(ns).Get(ctx, "a", metav1.GetOptions{})
	claimA := *pa.Status.ResourceClaimStatuses[0].ResourceClaimName
	if err := testutil.WaitFor(ctx, 60*time.Second, func() (bool, string) {
		c, err := n.Kube.ResourceV1().ResourceClaims(ns).Get(ctx, claimA, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		var ifs []string
		for _, d := range c.Status.Devices {
			if d.NetworkData != nil {
				ifs = append(ifs, d.NetworkData.InterfaceName)
			}
		}
		return strings.Join(ifs, ",") == "net1" && len(vfsOnHost(draIDs)) == 1, fmt.Sprintf("claim network data for %v; VFs on the host %v", ifs, vfsOnHost(draIDs))
	}); err != nil {
		t.Errorf("hot-unplug of a DRA network: %v", err)
	}
	for _, name := range []string{"a", "b"} {
		n.DeletePod(t, ns, name)
	}
	if err := testutil.WaitFor(ctx, 60*time.Second, func() (bool, string) {
		return len(vfsOnHost(draIDs)) == len(draIDs), fmt.Sprintf("VFs on the host: %v", vfsOnHost(draIDs))
	}); err != nil {
		t.Errorf("DRA devices not returned after DEL: %v", err)
	}

	// Failures: a Warning Event naming the pod, the claim and the NAD;
	// nothing left behind.
	records, ports := n.RecordIDs(), len(BridgePorts())
	cases := []struct {
		pod, networks, template string
		unused                  bool
		want                    []string
	}{
		{"nosuch", "dra-nosuch", "one-vf", false, []string{ns + "/nosuch", ns + "/dra-nosuch", `claim nosuch`, "has no resource claim"}},
		{"unprepared", "dra-claim", "one-vf", true, []string{ns + "/unprepared", ns + "/dra-claim", "claim vfs", "no container uses it"}},
		{"ghost", "dra-net", "ghost", false, []string{ns + "/ghost", ns + "/dra-net", draGhostID, "ResourceClaim " + ns + "/ghost-vfs-", "not found"}},
	}
	for _, c := range cases {
		n.draPod(t, ns, c.pod, c.networks, c.template, c.unused)
		msg := n.waitWarning(t, ns, c.pod, c.want...)
		t.Logf("%s: %s", c.pod, msg)
	}
	for _, c := range cases {
		n.DeletePod(t, ns, c.pod)
	}
	n.waitNothingLeft(ctx, t, records, ports, draIDs, nil)
}
