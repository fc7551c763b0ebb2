package node

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-cni/plexus/internal/testutil"
)

// testHotplug: one hot-plug round trip on a pod the real kubelet runs: its
// networks annotation gains mv-a (net1 appears with an IP from mv-a's
// range, the network-status lists it), then loses it (net1 gone, the IP
// released); the pod's containers are never restarted.
func testHotplug(t *testing.T, n *Node) {
	ctx := context.Background()
	ns := n.Namespace(t, "node-hotplug")
	n.attachNADs(t, ns)
	p := n.Pod(t, ns, "hp", "")
	p = n.WaitRunning(t, ns, p.Name, 90*time.Second)
	sb := n.SandboxOf(t, p)
	setNetworks := func(v string) {
		if _, err := n.Kubectl(ctx, nil, "-n", ns, "annotate", "--overwrite", "pod", p.Name, networksKey+"="+v); err != nil {
			t.Fatalf("annotate %q: %v", v, err)
		}
	}
	wait := func(want string) time.Duration {
		start := time.Now()
		testutil.Eventually(t, 30*time.Second, "pod interfaces "+want, func() bool {
			return strings.Join(keys(Links(t, sb.NetNS)), ",") == want
		})
		took := time.Since(start)
		testutil.Eventually(t, 10*time.Second, "network-status lists "+want, func() bool {
			cur, err := n.Kube.CoreV1().Pods(ns).Get(ctx, p.Name, metav1.GetOptions{})
			if err != nil {
				return false
			}
			var ifs []string
			for _, s := range networkStatus(t, cur) {
				ifs = append(ifs, s.Interface)
			}
			return strings.Join(ifs, ",") == want
		})
		return took
	}
	setNetworks("mv-a")
	took := wait("eth0,net1")
	cur, _ := n.Kube.CoreV1().Pods(ns).Get(ctx, p.Name, metav1.GetOptions{})
	_, links := n.CheckStatusMatchesNetns(t, cur)
	if ips := links["net1"].IPs; len(ips) != 1 || !strings.HasPrefix(ips[0], "10.248.1.") {
		t.Errorf("net1 IPs %v, want one from mv-a's 10.248.1.0/24", ips)
	}
	held := func() int {
		c := 0
		for f, id := range n.Allocations() {
			if strings.HasPrefix(f, "mv-a/") && id == sb.ID {
				c++
			}
		}
		return c
	}
	if held() != 1 {
		t.Errorf("the sandbox holds %d mv-a allocations, want 1", held())
	}
	setNetworks("")
	wait("eth0")
	testutil.Eventually(t, 10*time.Second, "mv-a's IP released", func() bool { return held() == 0 })
	if ev := n.podEvents(ns, p.Name); !strings.Contains(ev, "RemovedInterface") {
		t.Errorf("no RemovedInterface Event: %s", ev)
	}
	cur, _ = n.Kube.CoreV1().Pods(ns).Get(ctx, p.Name, metav1.GetOptions{})
	if len(cur.Status.ContainerStatuses) != 1 || cur.Status.ContainerStatuses[0].RestartCount != 0 || n.SandboxOf(t, cur).ID != sb.ID {
		t.Errorf("the pod was restarted: %+v", cur.Status.ContainerStatuses)
	}
	t.Logf("hot-plug on the real node: annotation to net1 in the netns %s", took.Round(time.Millisecond))
	n.DeletePod(t, ns, p.Name)
}
