package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-cni/plexus/internal/testutil"
)

// setNetworks changes the pod's networks annotation in the API.
func (e *env) setNetworks(p *pod, networks string) {
	e.t.Helper()
	pods := e.kube.kube.CoreV1().Pods(p.ns)
	for {
		obj, err := pods.Get(context.Background(), p.name, metav1.GetOptions{})
		if err != nil {
			e.t.Fatal(err)
		}
		if obj.Annotations == nil {
			obj.Annotations = map[string]string{}
		}
		obj.Annotations[nadv1.NetworkAttachmentAnnot] = networks
		if _, err = pods.Update(context.Background(), obj, metav1.UpdateOptions{}); err == nil {
			return
		}
		if !strings.Contains(err.Error(), "modified") {
			e.t.Fatal(err)
		}
	}
}

// ifaces is the sorted list of the pod's interfaces but lo.
func (e *env) ifaces(p *pod) []string {
	var out []string
	for n := range e.links(p) {
		if n != "lo" {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// waitIfaces waits until the pod has exactly want (sorted, lo aside) and
// its network-status lists the same interfaces; it returns how long the
// interfaces took to appear.
func (e *env) waitIfaces(p *pod, want ...string) time.Duration {
	e.t.Helper()
	start := time.Now()
	var took time.Duration
	testutil.Eventually(e.t, 20*time.Second, fmt.Sprintf("%s/%s interfaces %v", p.ns, p.name, want), func() bool {
		if !slices.Equal(e.ifaces(p), want) {
			return false
		}
		if took == 0 {
			took = time.Since(start)
		}
		var st []string
		for _, s := range e.apiStatus(p) {
			st = append(st, s.Interface)
		}
		sort.Strings(st)
		return slices.Equal(st, want)
	})
	return took
}

// waitEventWith waits up to 5 s for an Event of the pod with reason whose
// message contains says, and returns "type reason: message".
func (e *env) waitEventWith(p *pod, reason, says string) string {
	e.t.Helper()
	var found string
	if !testutil.Within(5*time.Second, func() bool {
		list, err := e.kube.kube.CoreV1().Events(p.ns).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + p.name})
		if err != nil {
			return false
		}
		for _, ev := range list.Items {
			if ev.Reason == reason && strings.Contains(ev.Message, says) {
				found = ev.Type + " " + ev.Reason + ": " + ev.Message
				return true
			}
		}
		return false
	}) {
		e.t.Errorf("no %s event saying %q for %s/%s", reason, says, p.ns, p.name)
	}
	return found
}

// ping runs one ping from the pod to ip.
func ping(p *pod, ip string) error {
	out, err := exec.Command("nsenter", "--net="+p.netns.Path(), "ping", "-c1", "-W2", ip).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ping %s from %s: %w: %s", ip, p.name, err, out)
	}
	return nil
}

// ipamFiles are the host-local allocations of a subnet's network.
func ipamFiles(e *env, network string) []string {
	return files(filepath.Join(e.ipamDir, network))
}

// Hot-plug against the real API server, with real macvlan and host-local:
// add, remove, add two and remove the first, bad input, isolation, a
// daemon killed mid-change, and a pod deleted while a change is pending.
func TestK8sHotplug(t *testing.T) {
	e := newEnv(t, withKube(t), withConfig("hotplug", true), withConfig("namespaceIsolation", true),
		withConfig("globalNamespaces", []string{}), withConfig("delegateTimeout", "6s"))
	k := e.kube
	k.ensureNamespace(t, "other-team")
	for i, n := range []string{"mv1", "mv2", "mv3"} {
		k.createNAD(t, k.ns, n, macvlanConf(n, "1.0.0", fmt.Sprintf("192.168.%d.0/24", 61+i), e.ipamDir))
	}
	k.createNAD(t, "other-team", "priv-"+k.ns, macvlanConf("priv", "1.0.0", "192.168.69.0/24", e.ipamDir))
	logFile := filepath.Join(e.dir, "hang.log")
	// A chain that attaches a macvlan and then hangs: a change in flight.
	k.createNAD(t, k.ns, "hang", fmt.Sprintf(`{"cniVersion":"1.0.0","name":"hang","plugins":[`+
		`{"type":"macvlan","master":"plexus-demo0","mode":"bridge","ipam":{"type":"host-local","dataDir":%q,"ranges":[[{"subnet":"192.168.68.0/24"}]]}},`+
		`{"type":"recorder","logFile":%q,"hangOn":"ADD"}]}`, e.ipamDir, logFile))
	t.Cleanup(func() { _ = exec.Command("pkill", "-9", "-f", recorder).Run() })

	peer := e.createPod(k.ns, "peer", map[string]string{nadv1.NetworkAttachmentAnnot: "mv1, mv2"})
	e.mustAdd(peer)
	a := e.createPod(k.ns, "a", nil)
	e.mustAdd(a)
	e.waitIfaces(a, "eth0")
	peerIP := map[string]string{}
	for _, s := range e.apiStatus(peer) {
		if len(s.IPs) > 0 {
			peerIP[s.Interface] = s.IPs[0]
		}
	}

	t.Run("add", func(t *testing.T) {
		before := apiRequests(t, k.c)
		e.setNetworks(a, "mv1")
		took := e.waitIfaces(a, "eth0", "net1")
		if ip := e.links(a)["net1"].ipv4(); len(ip) != 1 || !strings.HasPrefix(ip[0], "192.168.61.") {
			t.Errorf("net1 addresses %v", ip)
		}
		if err := ping(a, peerIP["net1"]); err != nil {
			t.Error(err)
		}
		if ev := e.waitEventWith(a, "AddedInterface", "net1"); !addedInterfaceRE.MatchString(ev) || !strings.Contains(ev, "/mv1") {
			t.Errorf("event %q", ev)
		}
		if n := delta(apiRequests(t, k.c), before)["PATCH pods/status"]; n != 1 {
			t.Errorf("%v PATCHes of pods/status for one change; want 1", n)
		}
		t.Logf("annotation change to net1 up: %s", took)
	})
	t.Run("remove", func(t *testing.T) {
		e.setNetworks(a, "")
		e.waitIfaces(a, "eth0")
		testutil.Eventually(t, 5*time.Second, "the IP released", func() bool { return len(ipamFiles(e, "mv1")) == 1 }) // peer's
		if ev := e.waitEventWith(a, "RemovedInterface", "net1"); ev != "Normal RemovedInterface: Remove net1 from "+k.ns+"/mv1" {
			t.Errorf("event %q", ev)
		}
	})
	t.Run("add two, remove the first", func(t *testing.T) {
		e.setNetworks(a, "mv1, mv2")
		e.waitIfaces(a, "eth0", "net1", "net2")
		mac := e.links(a)["net2"].Address
		e.setNetworks(a, "mv2")
		e.waitIfaces(a, "eth0", "net2")
		if got := e.links(a)["net2"].Address; got != mac {
			t.Errorf("net2 changed: mac %s, was %s", got, mac)
		}
		if err := ping(a, peerIP["net2"]); err != nil {
			t.Error(err)
		}
		st := e.apiStatus(a)
		if len(st) != 2 || st[1].Interface != "net2" || st[1].Name != k.ns+"/mv2" {
			t.Errorf("network-status %+v", st)
		}
	})
	t.Run("bad input changes nothing", func(t *testing.T) {
		for _, c := range []struct{ networks, reason, says string }{
			{"mv2, nosuch", "NoNetworkFound", `networks[1] "nosuch"`},
			{"mv2, other-team/priv-" + k.ns, "InvalidNetworkSelection", "namespace isolation"},
			{`[{"name":"mv2"},{"name":"mv3","interface":"eth0"}]`, "InvalidNetworkSelection", `interface name "eth0" is in use`},
		} {
			e.setNetworks(a, c.networks)
			ev := e.waitEventWith(a, c.reason, c.says)
			if !strings.HasPrefix(ev, "Warning") || !strings.Contains(ev, "hot-plug") {
				t.Errorf("%s: event %q", c.networks, ev)
			}
			if got := e.ifaces(a); !slices.Equal(got, []string{"eth0", "net2"}) {
				t.Errorf("%s: interfaces %v", c.networks, got)
			}
		}
		if n := len(ipamFiles(e, "mv3")) + len(ipamFiles(e, "priv")); n != 0 {
			t.Errorf("%d allocations left by refused changes", n)
		}
		e.setNetworks(a, "mv2")
	})
	t.Run("daemon killed mid-change", func(t *testing.T) {
		e.setNetworks(a, "mv2, hang")
		testutil.Eventually(t, 10*time.Second, "the hanging delegate runs", func() bool {
			b, _ := os.ReadFile(logFile)
			return strings.Contains(string(b), "ADD")
		})
		_ = e.daemon.Stop(syscall.SIGKILL, 5*time.Second)
		e.daemon = nil
		_ = exec.Command("pkill", "-9", "-f", recorder).Run()
		if got := e.ifaces(a); !slices.Contains(got, "net1") {
			t.Fatalf("the change had not attached its macvlan yet: %v", got)
		}
		// While plexusd is down the hanging element is taken out again.
		e.setNetworks(a, "mv2")
		e.startDaemon()
		e.waitIfaces(a, "eth0", "net2")
		testutil.Eventually(t, 5*time.Second, "the hang network's IP released", func() bool { return len(ipamFiles(e, "hang")) == 0 })
	})
	t.Run("pod deleted while a change is pending", func(t *testing.T) {
		if err := os.Remove(logFile); err != nil {
			t.Fatal(err)
		}
		e.setNetworks(a, "mv2, hang")
		testutil.Eventually(t, 10*time.Second, "the hanging delegate runs", func() bool {
			b, _ := os.ReadFile(logFile)
			return strings.Contains(string(b), "ADD")
		})
		zero := int64(0)
		if err := k.kube.CoreV1().Pods(a.ns).Delete(context.Background(), a.name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
			t.Fatal(err)
		}
		e.mustDel(a) // waits for the change (delegateTimeout), which rolls back
	})
	e.mustDel(peer)
	e.assertClean()
}

// Hot-plug of a device network (resourceName): the new attachment gets the
// allocated device no attachment uses; with none left the change is
// refused with a Warning and nothing changes; a removal gives the device
// back to the host.
func TestK8sHotplugDevices(t *testing.T) {
	kubelet := &testutil.FakeKubelet{}
	devInfoDir := t.TempDir()
	sock := kubelet.Serve(t)
	e := newEnv(t, withKube(t), withConfig("hotplug", true), withConfig("podResourcesSocket", sock), withConfig("deviceInfoDir", devInfoDir))
	k := e.kube
	vfs := []string{"vf-h1", "vf-h2"}
	for _, vf := range vfs {
		e.hostIP("link", "add", vf, "link", "plexus-demo0", "type", "macvlan", "mode", "bridge")
	}
	nad := &nadv1.NetworkAttachmentDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "vf-net", Namespace: k.ns, Annotations: map[string]string{"k8s.v1.cni.cncf.io/resourceName": vfResource}},
		Spec:       nadv1.NetworkAttachmentDefinitionSpec{Config: `{"cniVersion":"1.0.0","name":"vf-net","type":"vfplugin","capabilities":{"deviceID":true}}`},
	}
	if _, err := k.nads.K8sCniCncfIoV1().NetworkAttachmentDefinitions(k.ns).Create(context.Background(), nad, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := e.createPod(k.ns, "vfpod", map[string]string{nadv1.NetworkAttachmentAnnot: "vf-net"})
	res := vfPod("vfpod", vfs)
	res.Namespace = k.ns
	kubelet.SetPods(res)
	e.mustAdd(p)
	e.waitIfaces(p, "eth0", "net1")

	e.setNetworks(p, "vf-net, vf-net")
	e.waitIfaces(p, "eth0", "net1", "net2")
	if slices.Contains(e.hostLinks(), "vf-h1") || slices.Contains(e.hostLinks(), "vf-h2") {
		t.Errorf("both VFs should be in the pod; host has %v", e.hostLinks())
	}

	e.setNetworks(p, "vf-net, vf-net, vf-net")
	ev := e.waitEventWith(p, "AddFailed", "hot-plug needs a device the pod was allocated and does not use yet")
	if !strings.Contains(ev, `network "`+k.ns+`/vf-net" (net3)`) {
		t.Errorf("event %q does not name the attachment", ev)
	}
	if got := e.ifaces(p); !slices.Equal(got, []string{"eth0", "net1", "net2"}) {
		t.Errorf("interfaces after a refused change: %v", got)
	}

	e.setNetworks(p, "vf-net")
	e.waitIfaces(p, "eth0", "net1")
	testutil.Eventually(t, 5*time.Second, "one VF back on the host", func() bool {
		n := 0
		for _, l := range e.hostLinks() {
			if l == "vf-h1" || l == "vf-h2" {
				n++
			}
		}
		return n == 1
	})
	e.mustDel(p)
	testutil.Eventually(t, 5*time.Second, "both VFs back on the host", func() bool {
		h := e.hostLinks()
		return slices.Contains(h, "vf-h1") && slices.Contains(h, "vf-h2")
	})
	if left := files(filepath.Join(devInfoDir, "cni")); len(left) > 0 {
		t.Errorf("CNI device-info files left: %v", left)
	}
	for _, vf := range vfs {
		e.hostIP("link", "del", vf)
	}
	e.assertClean()
}
