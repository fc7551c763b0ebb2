package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The NPWG default-route selection (spec v1.3 4.1.2.1.9) against real
// plugins in real netns: the cluster bridge network sets eth0's default
// route; a selection element moves it to its own interface.

// defaultRoutes returns the pod's default routes of one family ("-4" or
// "-6") as `ip -j route` reports them, rendered "via GW dev DEV".
func (e *env) defaultRoutes(p *pod, fam string) []string {
	e.t.Helper()
	out, err := exec.Command("nsenter", "--net="+p.netns.Path(), "ip", fam, "-j", "route", "show", "table", "main").Output()
	if err != nil {
		e.t.Fatalf("ip %s route in pod: %v", fam, err)
	}
	var rs []struct {
		Dst      string `json:"dst"`
		Type     string `json:"type"`
		Gateway  string `json:"gateway"`
		Dev      string `json:"dev"`
		Nexthops []struct {
			Gateway string `json:"gateway"`
			Dev     string `json:"dev"`
		} `json:"nexthops"`
	}
	if err := json.Unmarshal(out, &rs); err != nil {
		e.t.Fatalf("ip route json %s: %v", out, err)
	}
	var ds []string
	for _, r := range rs {
		if r.Dst != "default" && r.Dst != "0.0.0.0/0" && r.Dst != "::/0" {
			continue
		}
		s := fmt.Sprintf("via %s dev %s", r.Gateway, r.Dev)
		for _, nh := range r.Nexthops {
			s += fmt.Sprintf(" nexthop via %s dev %s", nh.Gateway, nh.Dev)
		}
		if r.Type != "" && r.Type != "unicast" {
			s = r.Type + " " + s
		}
		ds = append(ds, s)
	}
	sort.Strings(ds)
	return ds
}

func (e *env) wantDefaults(p *pod, fam string, want ...string) {
	e.t.Helper()
	sort.Strings(want)
	if got := e.defaultRoutes(p, fam); strings.Join(got, "|") != strings.Join(want, "|") {
		e.t.Errorf("%s/%s %s default routes %q, want %q", p.ns, p.name, fam, got, want)
	}
}

// podIP runs `ip` in the pod netns; only tests' own damage goes through it.
func (e *env) podIP(p *pod, args ...string) {
	e.t.Helper()
	if out, err := exec.Command("nsenter", append([]string{"--net=" + p.netns.Path(), "ip"}, args...)...).CombinedOutput(); err != nil {
		e.t.Fatalf("ip %v in pod: %v: %s", args, err, out)
	}
}

// noDAD turns IPv6 duplicate address detection off in the pod's netns
// (interfaces moved in take its defaults), so the plugins' wait for
// addresses to leave "tentative" does not depend on machine load. The
// setting dies with the netns.
func (e *env) noDAD(p *pod) {
	e.t.Helper()
	if out, err := exec.Command("nsenter", "--net="+p.netns.Path(), "sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.accept_dad=0").CombinedOutput(); err != nil {
		e.t.Fatalf("disable DAD in pod: %v: %s", err, out)
	}
}

// resultRoutes returns the "dst via gw" routes of an encoded CNI result.
func resultRoutes(t *testing.T, data []byte) []string {
	t.Helper()
	var res struct {
		Routes []struct{ Dst, GW string }
	}
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatalf("result %s: %v", data, err)
	}
	var out []string
	for _, r := range res.Routes {
		out = append(out, strings.TrimSpace(r.Dst+" via "+r.GW))
	}
	return out
}

func statusOf(t *testing.T, st []map[string]interface{}, ifName string) map[string]interface{} {
	t.Helper()
	for _, s := range st {
		if s["interface"] == ifName {
			return s
		}
	}
	t.Fatalf("no network-status entry for %s: %v", ifName, st)
	return nil
}

func gateways(s map[string]interface{}) string {
	gw, _ := json.Marshal(s["gateway"])
	return string(gw)
}

// (a) eth0 (bridge, default via 10.88.0.1) + net1 macvlan asking
// default-route: exactly one IPv4 default, via net1; the runtime's result
// no longer lists eth0's default; CHECK passes and catches a deleted or an
// extra default (given as 0.0.0.0/0); DEL leaves nothing. (b) pods without
// the key, or with an empty list, keep eth0's default.
func TestDefaultRouteMovesToRequestedInterface(t *testing.T) {
	e := newEnv(t)
	e.writeManifest("nad.yaml", nadManifest("default", "mv1", macvlanConf("mv1", "1.0.0", "192.168.10.0/24", e.ipamDir)))
	e.writeManifest("pods.yaml", podManifest("default", "gw", `[{"name":"mv1","default-route":["192.168.10.254"]}]`)+"---\n"+
		podManifest("default", "plain", `mv1`)+"---\n"+
		podManifest("default", "empty", `[{"name":"mv1","default-route":[]}]`))

	p := e.newPod("default", "gw")
	out := e.mustAdd(p)
	e.wantDefaults(p, "-4", "via 192.168.10.254 dev net1")
	for _, r := range resultRoutes(t, out) {
		if strings.HasPrefix(r, "0.0.0.0/0") {
			t.Errorf("runtime result still lists eth0's default route %q: %s", r, out)
		}
	}
	if gw := gateways(statusOf(t, e.status(p), "net1")); gw != `["192.168.10.254"]` {
		t.Errorf("net1 network-status gateway %s, want [192.168.10.254]", gw)
	}
	if r := e.chk(p); r.err != nil {
		t.Errorf("CHECK after ADD: %s", r)
	}

	t.Run("CHECK catches an extra default in the 0.0.0.0/0 form", func(t *testing.T) {
		e.podIP(p, "route", "add", "0.0.0.0/0", "via", "10.88.0.1", "dev", "eth0", "metric", "50")
		r := e.chk(p)
		if r.err == nil {
			t.Fatal("CHECK passed with a second IPv4 default route")
		}
		for _, want := range []string{`IPv4 on "net1"`, "via 10.88.0.1 dev eth0", p.netns.Path()} {
			if !strings.Contains(r.err.Msg+r.err.Details, want) {
				t.Errorf("CHECK error %q does not mention %q", r, want)
			}
		}
		e.podIP(p, "route", "del", "0.0.0.0/0", "via", "10.88.0.1", "dev", "eth0", "metric", "50")
	})
	t.Run("CHECK catches a deleted default", func(t *testing.T) {
		e.podIP(p, "route", "del", "default", "via", "192.168.10.254", "dev", "net1")
		r := e.chk(p)
		if r.err == nil {
			t.Fatal("CHECK passed without the requested default route")
		}
		for _, want := range []string{`IPv4 on "net1"`, "found none"} {
			if !strings.Contains(r.err.Msg+r.err.Details, want) {
				t.Errorf("CHECK error %q does not mention %q", r, want)
			}
		}
	})
	e.mustDel(p)

	for _, name := range []string{"plain", "empty"} {
		q := e.newPod("default", name)
		e.mustAdd(q)
		e.wantDefaults(q, "-4", "via 10.88.0.1 dev eth0")
		if r := e.chk(q); r.err != nil {
			t.Errorf("CHECK %s: %s", name, r)
		}
		e.mustDel(q)
	}
	e.assertClean()
}

// (c) dual stack: net1 (IPv4 macvlan) asks the IPv4 default, net2 (IPv6
// macvlan) the IPv6 one; net3 (IPv6, host-local route ::/0) brings an IPv6
// default that must move, and eth0's IPv4 default goes.
func TestDefaultRouteDualStack(t *testing.T) {
	e := newEnv(t)
	v6 := func(name, subnet, routes string) string {
		return fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"type":"macvlan","master":"plexus-demo0","mode":"bridge","ipam":{"type":"host-local","dataDir":%q,"ranges":[[{"subnet":%q}]]%s}}`, name, e.ipamDir, subnet, routes)
	}
	e.writeManifest("nads.yaml", nadManifest("default", "mv4", macvlanConf("mv4", "1.0.0", "192.168.10.0/24", e.ipamDir))+"---\n"+
		nadManifest("default", "mv6", v6("mv6", "fd00:10::/64", ""))+"---\n"+
		nadManifest("default", "mv6b", v6("mv6b", "fd00:20::/64", `,"routes":[{"dst":"::/0"}]`)))
	e.writeManifest("pods.yaml", podManifest("default", "ds", `[{"name":"mv4","default-route":["192.168.10.254"]},{"name":"mv6","default-route":["fd00:10::1"]},{"name":"mv6b"}]`)+"---\n"+
		podManifest("default", "before", `mv4,mv6,mv6b`))

	// Without the key the plugins' defaults stand: eth0 (IPv4), net3 (IPv6).
	q := e.newPod("default", "before")
	e.noDAD(q)
	e.mustAdd(q)
	e.wantDefaults(q, "-4", "via 10.88.0.1 dev eth0")
	e.wantDefaults(q, "-6", "via fd00:20::1 dev net3")
	e.mustDel(q)

	p := e.newPod("default", "ds")
	e.noDAD(p)
	e.mustAdd(p)
	e.wantDefaults(p, "-4", "via 192.168.10.254 dev net1")
	e.wantDefaults(p, "-6", "via fd00:10::1 dev net2")
	st := e.status(p)
	if gw := gateways(statusOf(t, st, "net1")); gw != `["192.168.10.254"]` {
		t.Errorf("net1 gateway %s", gw)
	}
	if gw := gateways(statusOf(t, st, "net2")); gw != `["fd00:10::1"]` {
		t.Errorf("net2 gateway %s", gw)
	}
	if r := e.chk(p); r.err != nil {
		t.Errorf("CHECK: %s", r)
	}
	e.podIP(p, "-6", "route", "del", "default", "via", "fd00:10::1", "dev", "net2")
	if r := e.chk(p); r.err == nil || !strings.Contains(r.err.Msg+r.err.Details, `IPv6 on "net2"`) {
		t.Errorf("CHECK without the IPv6 default: %s", r)
	}
	e.mustDel(p)
	e.assertClean()
}

// (d) A plugin that installs a second IPv4 default in the 0.0.0.0/0 form
// (host-local route dst 0.0.0.0/0 on net1, next to eth0's): both go when
// net2 asks for the default (multus-cni#1444 kept such routes).
func TestDefaultRouteRemovesZeroPrefixForm(t *testing.T) {
	e := newEnv(t)
	withDefault := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"mvd","type":"macvlan","master":"plexus-demo0","mode":"bridge","ipam":{"type":"host-local","dataDir":%q,"ranges":[[{"subnet":"192.168.10.0/24"}]],"routes":[{"dst":"0.0.0.0/0","priority":200}]}}`, e.ipamDir)
	e.writeManifest("nads.yaml", nadManifest("default", "mvd", withDefault)+"---\n"+
		nadManifest("default", "mv2", macvlanConf("mv2", "1.0.0", "192.168.20.0/24", e.ipamDir)))
	e.writeManifest("pods.yaml", podManifest("default", "before", `mvd`)+"---\n"+
		podManifest("default", "p", `[{"name":"mvd"},{"name":"mv2","default-route":["192.168.20.254"]}]`))

	q := e.newPod("default", "before")
	e.mustAdd(q)
	e.wantDefaults(q, "-4", "via 10.88.0.1 dev eth0", "via 192.168.10.1 dev net1")
	e.mustDel(q)

	p := e.newPod("default", "p")
	e.mustAdd(p)
	e.wantDefaults(p, "-4", "via 192.168.20.254 dev net2")
	if r := e.chk(p); r.err != nil {
		t.Errorf("CHECK: %s", r)
	}
	e.mustDel(p)
	e.assertClean()
}

// libcni's cached results are rewritten with the routes, so the
// prevResult a delegate gets on CHECK and DEL matches the pod: eth0's no
// longer lists its default, net1's lists the requested one. Needs the
// daemon to build its Fixer with routes.NewWithCache(cniDir, ...).
func TestDefaultRouteLibcniCacheRewritten(t *testing.T) {
	e := newEnv(t)
	e.writeManifest("nad.yaml", nadManifest("default", "mv1", macvlanConf("mv1", "1.0.0", "192.168.10.0/24", e.ipamDir)))
	e.writeManifest("pod.yaml", podManifest("default", "gw", `[{"name":"mv1","default-route":["192.168.10.254"]}]`))
	p := e.newPod("default", "gw")
	e.mustAdd(p)
	cached := func(network, ifName string) []string {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(e.cniDir, "results", network+"-"+p.containerID+"-"+ifName))
		if err != nil {
			t.Fatal(err)
		}
		var c struct {
			Kind   string          `json:"kind"`
			Result json.RawMessage `json:"result"`
		}
		if err := json.Unmarshal(data, &c); err != nil || c.Kind != "cniCacheV1" {
			t.Fatalf("cache file %s: %v", data, err)
		}
		return resultRoutes(t, c.Result)
	}
	if rs := cached("cluster-net", "eth0"); len(rs) != 0 {
		t.Errorf("eth0 cached routes %q, want none", rs)
	}
	if rs := cached("mv1", "net1"); strings.Join(rs, ",") != "0.0.0.0/0 via 192.168.10.254" {
		t.Errorf("net1 cached routes %q, want the requested default", rs)
	}
	if r := e.chk(p); r.err != nil {
		t.Errorf("CHECK: %s", r)
	}
	e.mustDel(p)
	e.assertClean()
}
