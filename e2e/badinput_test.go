package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// Every kind of bad input fails the ADD with an error that names the pod,
// the element and the field, and leaves nothing behind.
func TestBadInputFailsCleanly(t *testing.T) {
	e := newEnv(t)
	e.writeManifest("nads.yaml", nadManifest("default", "mv1", macvlanConf("mv1", "1.0.0", "192.168.10.0/24", e.ipamDir))+"---\n"+
		nadManifest("default", "evil", `{"cniVersion":"1.0.0","name":"evil","type":"../../../bin/sh"}`)+"---\n"+
		nadManifest("default", "evil-ipam", `{"cniVersion":"1.0.0","name":"evil-ipam","type":"macvlan","master":"plexus-demo0","ipam":{"type":"/bin/sh"}}`)+"---\n"+
		nadManifest("default", "not-json", `{"cniVersion":"1.0.0",`)+"---\n"+
		nadManifest("default", "reserved", `{"cniVersion":"1.0.0","name":"reserved","type":"macvlan","runtimeConfig":{"ips":["1.2.3.4/24"]}}`))
	cases := []struct {
		name     string
		networks string
		want     []string
	}{
		{"unknown-nad", "nope", []string{`"nope"`, "not found"}},
		{"unknown-namespace", "other/mv1", []string{"other/mv1", "not found"}},
		{"duplicate-ifname", "mv1@data0,mv1@data0", []string{"data0"}},
		{"ifname-is-eth0", "mv1@eth0", []string{"eth0"}},
		{"ifname-too-long", "mv1@abcdefghijklmnop", []string{"interface", "abcdefghijklmnop"}},
		{"ifname-slash", `[{"name":"mv1","interface":"a/b"}]`, []string{"interface"}},
		{"ifname-space", `[{"name":"mv1","interface":"a b"}]`, []string{"interface"}},
		{"bad-ip", `[{"name":"mv1","ips":["300.1.1.1/24"]}]`, []string{"ips", "300.1.1.1"}},
		{"bad-mac", `[{"name":"mv1","mac":"zz:00"}]`, []string{"mac", "zz:00"}},
		{"bad-json", `[{"name":"mv1"`, []string{"networks"}},
		{"trailing-comma", `mv1,`, []string{"networks[1]"}},
		{"bad-namespace", `[{"name":"mv1","namespace":"Bad_NS"}]`, []string{"namespace", "Bad_NS"}},
		{"type-traversal", "evil", []string{"type", "../../../bin/sh"}},
		{"ipam-type-path", "evil-ipam", []string{"ipam.type", "/bin/sh"}},
		{"nad-not-json", "not-json", []string{"spec.config"}},
		{"nad-reserved-key", "reserved", []string{"runtimeConfig"}},
		{"ecmp", `[{"name":"mv1","default-route":["192.168.10.1"]},{"name":"mv1","default-route":["192.168.10.2"]}]`, []string{"default-route"}},
	}
	var docs []string
	for _, c := range cases {
		docs = append(docs, podManifest("default", c.name, c.networks))
	}
	e.writeManifest("pods.yaml", strings.Join(docs, "---\n"))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := e.newPod("default", c.name)
			r := e.add(p)
			if r.err == nil {
				e.mustDel(p)
				t.Fatalf("ADD accepted %s", c.networks)
			}
			if r.err.Code != 7 {
				t.Errorf("code %d, want 7: %s", r.err.Code, r)
			}
			for _, w := range append([]string{fmt.Sprintf("default/%s", c.name)}, c.want...) {
				if !strings.Contains(r.err.Msg, w) {
					t.Errorf("error does not mention %q: %s", w, r.err.Msg)
				}
			}
			if n := len(e.links(p)); n != 1 {
				t.Errorf("pod has %d interfaces after a rejected ADD", n)
			}
		})
	}
	e.assertClean()
}

// Namespace isolation applies to the networks annotation and to the
// default-network override; "default" is global unless globalNamespaces is set.
func TestNamespaceIsolation(t *testing.T) {
	e := newEnv(t, withConfig("namespaceIsolation", true))
	e.writeManifest("nads.yaml", nadManifest("team-b", "mv1", macvlanConf("mv1", "1.0.0", "192.168.10.0/24", e.ipamDir))+"---\n"+
		nadManifest("default", "shared", macvlanConf("shared", "1.0.0", "192.168.20.0/24", e.ipamDir))+"---\n"+
		nadManifest("team-a", "own", macvlanConf("own", "1.0.0", "192.168.30.0/24", e.ipamDir))+"---\n"+
		nadManifest("team-b", "alt-cluster", macvlanConf("alt-cluster", "1.0.0", "192.168.40.0/24", e.ipamDir)))
	override := "apiVersion: v1\nkind: Pod\nmetadata:\n  name: sneaky\n  namespace: team-a\n  annotations:\n    v1.multus-cni.io/default-network: team-b/alt-cluster\n"
	e.writeManifest("pods.yaml", podManifest("team-a", "cross", "team-b/mv1")+"---\n"+
		podManifest("team-a", "cross-json", `[{"name":"mv1","namespace":"team-b"}]`)+"---\n"+
		podManifest("team-a", "ok", "own, default/shared")+"---\n"+override)

	for _, name := range []string{"cross", "cross-json", "sneaky"} {
		p := e.newPod("team-a", name)
		r := e.add(p)
		if r.err == nil {
			e.mustDel(p)
			t.Errorf("%s: ADD across namespaces accepted", name)
			continue
		}
		if !strings.Contains(r.err.Msg, "namespace isolation") || !strings.Contains(r.err.Msg, "team-b") {
			t.Errorf("%s: error does not explain the isolation: %s", name, r)
		}
	}
	ok := e.newPod("team-a", "ok")
	e.mustAdd(ok)
	if l := e.links(ok); len(l) != 4 {
		t.Errorf("allowed pod has interfaces %v, want lo, eth0, net1, net2", keys(l))
	}
	e.mustDel(ok)
	e.assertClean()
}

// The default-network override replaces the cluster network as eth0.
func TestDefaultNetworkOverride(t *testing.T) {
	e := newEnv(t)
	e.writeManifest("nads.yaml", nadManifest("kube-system", "alt", macvlanConf("alt", "1.0.0", "192.168.40.0/24", e.ipamDir)))
	e.writeManifest("pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: alt\n  namespace: default\n  annotations:\n    v1.multus-cni.io/default-network: alt\n")
	p := e.newPod("default", "alt")
	e.mustAdd(p)
	l := e.links(p)
	if ips := l["eth0"].ipv4(); len(ips) != 1 || !strings.HasPrefix(ips[0], "192.168.40.") {
		t.Errorf("eth0 %v, want the override network's 192.168.40.x", ips)
	}
	if st := e.status(p); len(st) != 1 || st[0]["name"] != "kube-system/alt" || st[0]["default"] != true {
		t.Errorf("status %v", st)
	}
	e.mustDel(p)
	e.assertClean()
}
