package e2e

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nadutils "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/utils"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-cni/plexus/internal/testutil"
)

// NADs and pods from a real API server: both annotation forms attach, and
// the network-status on the API object matches what is in the pod's netns.
// The steady-state ADD makes 0 GET and exactly 1 PATCH of the pod; DEL none.
var addedInterfaceRE = regexp.MustCompile(`^Normal AddedInterface: Add (eth0|net\d+) \[[0-9a-f.:/ ]*\] from \S+$`)

func TestK8sAttachAndStatus(t *testing.T) {
	e := newEnv(t, withKube(t))
	k := e.kube
	k.createNAD(t, k.ns, "mv1", macvlanConf("mv1", "1.0.0", "192.168.10.0/24", e.ipamDir))
	k.createNAD(t, k.ns, "mv2", macvlanConf("mv2", "1.0.0", "192.168.20.0/24", e.ipamDir))
	comma := e.createPod(k.ns, "comma", map[string]string{nadv1.NetworkAttachmentAnnot: "mv1, " + k.ns + "/mv2@data0"})
	jsonForm := e.createPod(k.ns, "json", map[string]string{nadv1.NetworkAttachmentAnnot: `[{"name":"mv2"},{"name":"mv1","interface":"fast1"}]`})
	time.Sleep(300 * time.Millisecond) // let the informer see the pods: this test measures the steady state

	before := apiRequests(t, k.c)
	e.mustAdd(comma)
	e.mustAdd(jsonForm)
	// The status PATCH is sent as the ADD answers (statusWrite async):
	// count once both landed, or after 10 s.
	var add map[string]float64
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if add = delta(apiRequests(t, k.c), before); add["PATCH pods/status"] >= 2 || time.Now().After(deadline) {
			break
		}
	}
	if add["GET pods"] != 0 || add["PATCH pods/status"] != 2 {
		t.Errorf("API requests for 2 ADDs: %v; want 0 GET pods and 2 PATCH pods/status", add)
	}
	t.Logf("API requests for 2 ADDs (Events included): %v", add)

	for _, c := range []struct {
		p      *pod
		ifaces []string
		names  []string
	}{
		{comma, []string{"eth0", "net1", "data0"}, []string{k.ns + "/cluster-net", k.ns + "/mv1", k.ns + "/mv2"}},
		{jsonForm, []string{"eth0", "net1", "fast1"}, []string{k.ns + "/cluster-net", k.ns + "/mv2", k.ns + "/mv1"}},
	} {
		st := e.apiStatus(c.p)
		links := e.links(c.p)
		if len(st) != len(c.ifaces) {
			t.Fatalf("%s: network-status %+v", c.p.name, st)
		}
		for i, s := range st {
			l := links[c.ifaces[i]]
			if s.Interface != c.ifaces[i] || s.Name != c.names[i] || s.Mac != l.Address || len(s.IPs) != 1 || !strings.HasPrefix(l.ipv4()[0], s.IPs[0]+"/") {
				t.Errorf("%s: status[%d] %+v does not match the pod's %s %s %v", c.p.name, i, s, c.ifaces[i], l.Address, l.ipv4())
			}
			if s.Default != (i == 0) {
				t.Errorf("%s: status[%d].default = %v", c.p.name, i, s.Default)
			}
		}
		// What kubectl-multinet prints (POD IF ADDRESS MAC, from the NAD
		// client's GetNetworkStatus of the pod as the API server has it):
		// one row per interface, each matching the pod's netns.
		obj, err := k.kube.CoreV1().Pods(c.p.ns).Get(context.Background(), c.p.name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		rows, err := nadutils.GetNetworkStatus(obj)
		if err != nil || len(rows) != len(c.ifaces) {
			t.Errorf("%s: kubectl-multinet's reading: %+v %v", c.p.name, rows, err)
		}
		for i, r := range rows {
			if r.DeviceInfo != nil || r.Interface != c.ifaces[i] || r.Mac != links[c.ifaces[i]].Address || len(r.IPs) != 1 {
				t.Errorf("%s: kubectl-multinet row %d: %s %s %v %s", c.p.name, i, c.p.name, r.Interface, r.IPs, r.Mac)
			}
		}
		// Multus's message format: "Add <if> [<ips>] from <network>".
		if ev := e.waitEvent(c.p, "AddedInterface"); !addedInterfaceRE.MatchString(ev) {
			t.Errorf("%s: AddedInterface %q, want Multus's format", c.p.name, ev)
		}
	}

	before = apiRequests(t, k.c)
	e.mustDel(comma)
	e.mustDel(jsonForm)
	del := delta(apiRequests(t, k.c), before)
	for key, n := range del {
		if !strings.Contains(key, "events") {
			t.Errorf("DEL made API request %s ×%v", key, n)
		}
	}
	e.assertClean()
}

// A NAD updated between pods is picked up by the next pod; a deleted NAD
// fails the next ADD with a Warning Event, and DEL of the earlier pod still
// works from the record.
func TestK8sNADUpdatedAndDeleted(t *testing.T) {
	e := newEnv(t, withKube(t))
	k := e.kube
	k.createNAD(t, k.ns, "mv1", macvlanConf("mv1", "1.0.0", "192.168.10.0/24", e.ipamDir))
	first := e.createPod(k.ns, "first", map[string]string{nadv1.NetworkAttachmentAnnot: "mv1"})
	e.mustAdd(first)

	nads := k.nads.K8sCniCncfIoV1().NetworkAttachmentDefinitions(k.ns)
	nad, err := nads.Get(context.Background(), "mv1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nad.Spec.Config = macvlanConf("mv1", "1.0.0", "192.168.99.0/24", e.ipamDir)
	if _, err := nads.Update(context.Background(), nad, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	second := e.createPod(k.ns, "second", map[string]string{nadv1.NetworkAttachmentAnnot: "mv1"})
	testutil.Eventually(t, 10*time.Second, "NAD update reaches the daemon", func() bool {
		r := e.add(second)
		if r.err != nil {
			t.Fatalf("ADD second: %s", r)
		}
		ok := strings.HasPrefix(e.links(second)["net1"].ipv4()[0], "192.168.99.")
		if !ok {
			e.mustDel(second)
		}
		return ok
	})

	if err := nads.Delete(context.Background(), "mv1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	third := e.createPod(k.ns, "third", map[string]string{nadv1.NetworkAttachmentAnnot: "mv1"})
	testutil.Eventually(t, 10*time.Second, "NAD deletion reaches the daemon", func() bool {
		r := e.add(third)
		if r.err == nil {
			e.mustDel(third)
			return false
		}
		if !strings.Contains(r.err.Msg, "not found") || !strings.Contains(r.err.Msg, k.ns+"/mv1") {
			t.Errorf("error does not say the NAD is missing: %s", r)
		}
		return true
	})
	// A missing NAD: Multus's reason, NoNetworkFound.
	if ev := e.waitEvent(third, "NoNetworkFound"); !strings.HasPrefix(ev, "Warning") || !strings.Contains(ev, "mv1") {
		t.Errorf("event %q", ev)
	}
	if n := len(e.links(third)); n != 1 {
		t.Errorf("third pod has %d interfaces", n)
	}
	e.mustDel(first)
	e.mustDel(second)
	e.mustDel(third)
	e.assertClean()
}

// Namespace isolation and globalNamespaces against the API, the
// default-network override included.
func TestK8sNamespaceIsolation(t *testing.T) {
	e := newEnv(t, withKube(t), withConfig("namespaceIsolation", true), withConfig("globalNamespaces", "shared-nets"))
	k := e.kube
	for _, ns := range []string{"shared-nets", "other-team"} {
		k.ensureNamespace(t, ns)
	}
	k.createNAD(t, "shared-nets", "pub-"+k.ns, macvlanConf("pub", "1.0.0", "192.168.30.0/24", e.ipamDir))
	k.createNAD(t, "other-team", "priv-"+k.ns, macvlanConf("priv", "1.0.0", "192.168.40.0/24", e.ipamDir))
	k.createNAD(t, "other-team", "alt-"+k.ns, macvlanConf("alt", "1.0.0", "192.168.50.0/24", e.ipamDir))

	ok := e.createPod(k.ns, "ok", map[string]string{nadv1.NetworkAttachmentAnnot: "shared-nets/pub-" + k.ns})
	e.mustAdd(ok)
	for name, ann := range map[string]map[string]string{
		"cross":    {nadv1.NetworkAttachmentAnnot: "other-team/priv-" + k.ns},
		"override": {"v1.multus-cni.io/default-network": "other-team/alt-" + k.ns},
	} {
		p := e.createPod(k.ns, name, ann)
		r := e.add(p)
		if r.err == nil || !strings.Contains(r.err.Msg, "namespace isolation") {
			t.Errorf("%s: %s; want a namespace isolation error", name, r)
		}
		e.waitEvent(p, "InvalidNetworkSelection")
		e.mustDel(p)
	}
	e.mustDel(ok)
	e.assertClean()
}

// The runtime's sandbox is for a pod that was deleted and recreated under
// the same name: the ADD fails, nothing is attached, and the new pod's
// status is never written by the old sandbox.
func TestK8sPodRecreatedSameName(t *testing.T) {
	e := newEnv(t, withKube(t))
	k := e.kube
	old := e.createPod(k.ns, "sts-0", nil)
	zero := int64(0)
	if err := k.kube.CoreV1().Pods(k.ns).Delete(context.Background(), "sts-0", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	fresh := e.createPod(k.ns, "sts-0", nil)
	if fresh.uid == old.uid {
		t.Fatal("same UID")
	}
	r := e.add(old)
	if r.err == nil || !strings.Contains(r.err.Msg, old.uid) {
		t.Errorf("ADD for the old UID: %s; want a UID mismatch error", r)
	}
	if n := len(e.links(old)); n != 1 {
		t.Errorf("old sandbox has %d interfaces", n)
	}
	if st := e.apiStatusNow(fresh); st != nil {
		t.Errorf("the new pod got a status from the old sandbox: %+v", st)
	}
	e.mustAdd(fresh)
	if st := e.apiStatus(fresh); len(st) != 1 {
		t.Errorf("new pod status %+v", st)
	}
	e.mustDel(old)
	e.mustDel(fresh)
	e.assertClean()
}

// A sandbox whose pod the API never knew gets an empty result (Multus
// semantics) and nothing attached.
func TestK8sUnknownPodEmptyResult(t *testing.T) {
	e := newEnv(t, withKube(t))
	ghost := e.newPod(e.kube.ns, "ghost")
	out := e.mustAdd(ghost)
	var res struct {
		IPs []interface{} `json:"ips"`
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res.IPs) != 0 {
		t.Errorf("result %s", out)
	}
	if n := len(e.links(ghost)); n != 1 {
		t.Errorf("ghost has %d interfaces", n)
	}
	e.mustDel(ghost)
	e.assertClean()
}

// The runtime's copy of the pod annotations (containerd's
// io.kubernetes.cri.pod-annotations) is what selects the networks.
func TestK8sRuntimePodAnnotations(t *testing.T) {
	e := newEnv(t, withKube(t))
	k := e.kube
	k.createNAD(t, k.ns, "mv1", macvlanConf("mv1", "1.0.0", "192.168.10.0/24", e.ipamDir))
	k.createNAD(t, k.ns, "mv2", macvlanConf("mv2", "1.0.0", "192.168.20.0/24", e.ipamDir))
	p := e.createPod(k.ns, "rt", map[string]string{nadv1.NetworkAttachmentAnnot: "mv1"})
	conf := e.shimConf("1.0.0", map[string]interface{}{"runtimeConfig": map[string]interface{}{
		"io.kubernetes.cri.pod-annotations": map[string]string{nadv1.NetworkAttachmentAnnot: "mv2@from-runtime"},
	}})
	if r := e.exec("ADD", p, "eth0", conf); r.err != nil {
		t.Fatalf("ADD: %s", r)
	}
	l := e.links(p)
	if _, ok := l["from-runtime"]; !ok {
		t.Errorf("runtime annotations not used: interfaces %v", keys(l))
	}
	e.mustDel(p)
	e.assertClean()
}

// The pod's v1.multus-cni.io/default-network annotation replaces the
// cluster network as eth0; a bare name is looked up in the Plexus
// namespace.
func TestK8sDefaultNetworkOverride(t *testing.T) {
	e := newEnv(t, withKube(t))
	k := e.kube
	k.createNAD(t, k.ns, "alt", macvlanConf("alt", "1.0.0", "192.168.40.0/24", e.ipamDir))
	p := e.createPod(k.ns, "alt", map[string]string{"v1.multus-cni.io/default-network": "alt"})
	e.mustAdd(p)
	if ips := e.links(p)["eth0"].ipv4(); len(ips) != 1 || !strings.HasPrefix(ips[0], "192.168.40.") {
		t.Errorf("eth0 %v, want the override network's 192.168.40.x", ips)
	}
	if st := e.apiStatus(p); len(st) != 1 || st[0].Name != k.ns+"/alt" || !st[0].Default {
		t.Errorf("status %+v", st)
	}
	e.mustDel(p)
	e.assertClean()
}
