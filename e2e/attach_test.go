package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The main path: eth0 from the cluster network, two macvlan attachments
// (comma form, one with @ifname) and a named JSON-form interface.
func TestAttachDefaultTwoMacvlanAndNamed(t *testing.T) {
	e := newEnv(t)
	e.writeManifest("nads.yaml", nadManifest("default", "mv1", macvlanConf("mv1", "1.0.0", "192.168.10.0/24", e.ipamDir))+"---\n"+
		nadManifest("default", "mv2", macvlanConf("mv2", "1.0.0", "192.168.20.0/24", e.ipamDir)))
	e.writeManifest("pod.yaml", podManifest("default", "web", `default/mv1, mv2@data9, mv1`))
	p := e.newPod("default", "web")

	out := e.mustAdd(p)
	var res struct {
		CNIVersion string `json:"cniVersion"`
		Interfaces []struct{ Name, Sandbox string }
		IPs        []struct{ Address string }
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("result %s: %v", out, err)
	}
	if res.CNIVersion != "1.0.0" || len(res.IPs) != 1 || !strings.HasPrefix(res.IPs[0].Address, "10.88.") {
		t.Errorf("runtime result is not the default network's: %s", out)
	}
	links := e.links(p)
	want := map[string]string{"eth0": "10.88.", "net1": "192.168.10.", "data9": "192.168.20.", "net2": "192.168.10."}
	for name, prefix := range want {
		l, ok := links[name]
		if !ok {
			t.Errorf("interface %s missing in pod (have %v)", name, keys(links))
			continue
		}
		if ips := l.ipv4(); len(ips) != 1 || !strings.HasPrefix(ips[0], prefix) {
			t.Errorf("%s has %v, want one address in %s*", name, ips, prefix)
		}
	}
	st := e.status(p)
	if len(st) != 4 {
		t.Fatalf("network-status has %d entries, want 4: %v", len(st), st)
	}
	wantNames := []string{"kube-system/cluster-net", "default/mv1", "default/mv2", "default/mv1"}
	wantIfs := []string{"eth0", "net1", "data9", "net2"}
	defaults := 0
	for i, s := range st {
		if s["name"] != wantNames[i] || s["interface"] != wantIfs[i] {
			t.Errorf("status[%d] = %v/%v, want %s/%s", i, s["name"], s["interface"], wantNames[i], wantIfs[i])
		}
		if s["default"] == true {
			defaults++
		}
		ips, _ := s["ips"].([]interface{})
		if len(ips) != 1 || links[wantIfs[i]].ipv4() == nil || !strings.HasPrefix(links[wantIfs[i]].ipv4()[0], ips[0].(string)+"/") {
			t.Errorf("status[%d] ips %v do not match the pod's %s %v", i, ips, wantIfs[i], links[wantIfs[i]].ipv4())
		}
		if s["mac"] != links[wantIfs[i]].Address {
			t.Errorf("status[%d] mac %v, pod has %s", i, s["mac"], links[wantIfs[i]].Address)
		}
	}
	if defaults != 1 || st[0]["default"] != true {
		t.Errorf("want exactly eth0 default, got %d defaults: %v", defaults, st)
	}
	if r := e.chk(p); r.err != nil {
		t.Errorf("CHECK: %s", r)
	}
	e.mustDel(p)
	e.assertClean()
}

// Static IP and MAC reach the plugins through capabilities.
func TestStaticIPAndMACThroughCapabilities(t *testing.T) {
	e := newEnv(t)
	e.writeManifest("nad.yaml", nadManifest("default", "static-mv", `{"cniVersion":"1.0.0","name":"static-mv","plugins":[{"type":"macvlan","master":"plexus-demo0","capabilities":{"ips":true,"mac":true},"ipam":{"type":"static"}}]}`))
	e.writeManifest("pod.yaml", podManifest("default", "db", `[{"name":"static-mv","interface":"fast0","ips":["10.20.30.40/24"],"mac":"02:aa:bb:cc:dd:ee"}]`))
	p := e.newPod("default", "db")
	e.mustAdd(p)
	l := e.links(p)["fast0"]
	if ips := l.ipv4(); len(ips) != 1 || ips[0] != "10.20.30.40/24" {
		t.Errorf("fast0 addresses %v, want 10.20.30.40/24", ips)
	}
	if l.Address != "02:aa:bb:cc:dd:ee" {
		t.Errorf("fast0 mac %s, want 02:aa:bb:cc:dd:ee", l.Address)
	}
	e.mustDel(p)
	e.assertClean()
}

// A requested capability no plugin declares fails the ADD (NPWG 4.1.2.1.3.2)
// and leaves nothing behind.
func TestCapabilityMissingFails(t *testing.T) {
	e := newEnv(t)
	e.writeManifest("nad.yaml", nadManifest("default", "plain", macvlanConf("plain", "1.0.0", "192.168.10.0/24", e.ipamDir)))
	e.writeManifest("pod.yaml", podManifest("default", "db", `[{"name":"plain","ips":["192.168.10.7/24"]}]`))
	p := e.newPod("default", "db")
	r := e.add(p)
	if r.err == nil {
		t.Fatalf("ADD succeeded without the ips capability")
	}
	for _, want := range []string{"default/db", "ips", "capability"} {
		if !strings.Contains(r.err.Msg, want) {
			t.Errorf("error %q does not mention %q", r.err.Msg, want)
		}
	}
	if r.err.Code != 7 {
		t.Errorf("code %d, want 7 (invalid config)", r.err.Code)
	}
	if len(e.links(p)) != 1 {
		t.Errorf("pod has interfaces after a failed ADD: %v", keys(e.links(p)))
	}
	e.assertClean()
}

// The third delegate fails: the first two are deleted in reverse order and
// nothing (link, IPAM, record, cache) is left.
func TestRollbackWhenThirdDelegateFails(t *testing.T) {
	e := newEnv(t)
	log := filepath.Join(e.dir, "calls.log")
	e.writeManifest("nads.yaml", nadManifest("default", "mv1", fmt.Sprintf(`{"cniVersion":"1.0.0","name":"mv1","plugins":[%s,{"type":"recorder","logFile":%q}]}`, macvlanConf("mv1", "1.0.0", "192.168.10.0/24", e.ipamDir), log))+"---\n"+
		nadManifest("default", "broken", fmt.Sprintf(`{"cniVersion":"1.0.0","name":"broken","type":"recorder","logFile":%q,"failOn":"ADD","failCode":142}`, log)))
	e.writeManifest("pod.yaml", podManifest("default", "p", "mv1,broken"))
	p := e.newPod("default", "p")
	r := e.add(p)
	if r.err == nil {
		t.Fatal("ADD succeeded although the third delegate failed")
	}
	if r.err.Code != 142 {
		t.Errorf("code %d, want the delegate's 142", r.err.Code)
	}
	for _, want := range []string{"default/p", `"default/broken"`, "net2"} {
		if !strings.Contains(r.err.Msg, want) {
			t.Errorf("error %q does not name %s", r.err.Msg, want)
		}
	}
	calls, _ := os.ReadFile(log)
	want := fmt.Sprintf("ADD %[1]s net1\nADD %[1]s net2\nDEL %[1]s net2\nDEL %[1]s net1\n", p.containerID)
	if string(calls) != want {
		t.Errorf("delegate calls:\n%s\nwant:\n%s", calls, want)
	}
	if len(e.links(p)) != 1 {
		t.Errorf("pod has interfaces after rollback: %v", keys(e.links(p)))
	}
	e.assertClean()
	e.mustDel(p) // the runtime's DEL after a failed ADD succeeds
	e.assertRequestIDs()
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
