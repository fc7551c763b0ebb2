package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/plugins/pkg/ns"
)

// multusDelegate is Multus thick v4.3.0's DelegateNetConf as it marshals
// it into <cniDir>/<containerID> (the fields a DEL reads; []byte fields
// are base64, as encoding/json writes them).
type multusDelegate struct {
	Conf                 map[string]any `json:"Conf"`
	ConfList             map[string]any `json:"ConfList"`
	CNINetworkConfigList struct {
		Name       string
		CNIVersion string
		Plugins    []struct{ Bytes []byte }
		Bytes      []byte
	}
	Name              string
	IsFilterV4Gateway bool
	IsFilterV6Gateway bool
	Bytes             []byte
}

// After a switch from Multus, the DEL of a sandbox Multus attached (no
// Plexus record) runs Multus's recorded plan: the cluster network (a
// conflist) and a NAD, in reverse, with Multus's interface names and
// arguments and libcni's cache in Multus's directory. Nothing leaks, even
// though Multus v4.3.0's own "Bytes" of a conflist drops the plugins'
// ipam (its DEL leaked the IP).
func TestDelOfSandboxAttachedByMultus(t *testing.T) {
	mdir := t.TempDir()
	e := newEnv(t, withConfig("multusCacheDir", mdir))
	p := e.newPod("default", "m")
	cluster := clusterNADConfig(e.ipamDir)
	mv := macvlanConf("mv1", "1.0.0", "192.168.60.0/24", e.ipamDir)
	args := [][2]string{{"IgnoreUnknown", "true"}, {"K8S_POD_NAMESPACE", p.ns}, {"K8S_POD_NAME", p.name}, {"K8S_POD_INFRA_CONTAINER_ID", p.containerID}, {"K8S_POD_UID", p.uid}}

	// Multus's plan, written before its delegates run.
	var list struct {
		CNIVersion string            `json:"cniVersion"`
		Name       string            `json:"name"`
		Plugins    []json.RawMessage `json:"plugins"`
	}
	if err := json.Unmarshal([]byte(cluster), &list); err != nil {
		t.Fatal(err)
	}
	first := multusDelegate{Conf: map[string]any{"ipam": map[string]any{}}, Name: list.Name,
		ConfList: map[string]any{"cniVersion": list.CNIVersion, "name": list.Name, "plugins": []any{map[string]any{"type": "bridge", "ipam": map[string]any{}}}}}
	first.CNINetworkConfigList.Name, first.CNINetworkConfigList.CNIVersion, first.CNINetworkConfigList.Bytes = list.Name, list.CNIVersion, []byte(cluster)
	for _, pl := range list.Plugins {
		first.CNINetworkConfigList.Plugins = append(first.CNINetworkConfigList.Plugins, struct{ Bytes []byte }{pl})
	}
	first.Bytes, _ = json.Marshal(first.ConfList) // lossy, as v4.3.0 writes it
	second := multusDelegate{Conf: map[string]any{"cniVersion": "1.0.0", "name": "mv1", "type": "macvlan"}, ConfList: map[string]any{}, Name: "default/mv1", Bytes: []byte(mv)}
	plan, _ := json.Marshal([]multusDelegate{first, second})
	if err := os.WriteFile(filepath.Join(mdir, p.containerID), plan, 0o600); err != nil {
		t.Fatal(err)
	}
	// Multus's ADD: libcni with its cniDir as the cache, from the host
	// netns (the plugins make their host-side links there).
	cfg := libcni.NewCNIConfigWithCacheDir([]string{cniBin}, mdir, nil)
	err := ns.WithNetNSPath(e.host.Path(), func(ns.NetNS) error {
		l, err := libcni.ConfListFromBytes([]byte(cluster))
		if err != nil {
			return err
		}
		if _, err := cfg.AddNetworkList(context.Background(), l, &libcni.RuntimeConf{ContainerID: p.containerID, NetNS: p.netns.Path(), IfName: "eth0", Args: args}); err != nil {
			return err
		}
		c, err := libcni.ConfFromBytes([]byte(mv)) //nolint:staticcheck // how Multus v4.3.0 runs a single-plugin conf
		if err != nil {
			return err
		}
		_, err = cfg.AddNetwork(context.Background(), c, &libcni.RuntimeConf{ContainerID: p.containerID, NetNS: p.netns.Path(), IfName: "net1", Args: args})
		return err
	})
	if err != nil {
		t.Fatalf("Multus's ADD, replayed with libcni: %v", err)
	}
	if l := e.links(p); len(l["eth0"].ipv4()) != 1 || len(l["net1"].ipv4()) != 1 {
		t.Fatalf("pod links after Multus's ADD: %v", keys(l))
	}
	if n := len(files(e.ipamDir)); n != 2 {
		t.Fatalf("%d IP allocations after Multus's ADD, want 2", n)
	}

	// A GC that lists the sandbox takes nothing from it: the networks it
	// shares with Plexus's sandboxes are GC'd with its attachments valid.
	valid := []map[string]string{{"containerID": p.containerID, "ifname": "eth0"}}
	if r := e.exec("GC", nil, "", e.shimConf("1.1.0", map[string]interface{}{"cni.dev/valid-attachments": valid})); r.err != nil {
		t.Errorf("GC: %s", r)
	}
	if n := len(files(e.ipamDir)); n != 2 {
		t.Errorf("%d IP allocations after a GC that listed the Multus sandbox, want 2", n)
	}
	if l := e.links(p); len(l["net1"].ipv4()) != 1 {
		t.Errorf("the Multus sandbox lost net1 to GC: %v", keys(l))
	}

	// CHECK sees it too: its delegates, from Multus's plan.
	if r := e.chk(p); r.err != nil {
		t.Errorf("CHECK of the sandbox Multus attached: %s", r)
	}

	e.mustDel(p)
	if l := e.links(p); len(l) != 1 {
		t.Errorf("pod links after Plexus's DEL: %v, want lo only", keys(l))
	}
	if left := files(mdir); len(left) > 0 {
		t.Errorf("Multus's files left: %v", left)
	}
	e.assertClean()
	e.mustDel(p) // and again: nothing known, success
}

// plexusd run as multus-daemon (Multus's manifest, the image changed)
// with a Multus config holding a value Plexus refuses (multusConfigFile
// naming Multus's own file, which Plexus cannot use as its config): it
// says which key and why, starts nothing, and the node keeps the CNI
// config it had.
func TestMultusDaemonRefusesUnsafeKey(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	netd := filepath.Join(dir, "net.d")
	if err := os.MkdirAll(netd, 0o755); err != nil {
		t.Fatal(err)
	}
	multusConf := []byte(`{"cniVersion":"0.3.1","name":"multus-cni-network","type":"multus-shim"}`)
	if err := os.WriteFile(filepath.Join(netd, "00-multus.conf"), multusConf, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "daemon-config.json")
	doc := `{"chrootDir":"/","cniVersion":"0.3.1","logLevel":"verbose","logToStderr":true,"cniConfigDir":"` + netd + `",` +
		`"multusAutoconfigDir":"` + netd + `","multusConfigFile":"/etc/cni/multus/net.d/multus.conf","socketDir":"` + filepath.Join(dir, "run") + `",` +
		`"metricsPort":9091}`
	if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	as := filepath.Join(dir, "multus-daemon")
	if err := os.Symlink(daemonBin, as); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(as, "-config", cfg)
	cmd.Env = append(os.Environ(), "MULTUS_NODE_NAME=n1")
	out := refusesToStart(t, cmd, `"multusConfigFile"`, `only "auto"`)
	if strings.Contains(out, "metricsPort") {
		t.Errorf("metricsPort is accepted with a warning, not an error: %s", out)
	}
	if got, _ := os.ReadFile(filepath.Join(netd, "00-multus.conf")); string(got) != string(multusConf) {
		t.Errorf("00-multus.conf changed: %s", got)
	}
	if ents, _ := os.ReadDir(netd); len(ents) != 1 {
		t.Errorf("files in the CNI config dir: %d, want Multus's alone", len(ents))
	}
}

// Multus's passthru plugin (installed by install_multus beside the shim;
// here the shim under that name, as the image links it): the head of a
// chain that works on the pod's existing interfaces. A NAD of passthru +
// tuning sets a sysctl of eth0 and creates no interface; DEL undoes
// nothing and leaves nothing.
func TestPassthruChainTunesThePod(t *testing.T) {
	e := newEnv(t)
	e.writeManifest("nads.yaml", nadManifest("default", "tune",
		`{"cniVersion":"1.0.0","name":"tune","plugins":[{"type":"passthru"},{"type":"tuning","sysctl":{"net.ipv4.conf.eth0.arp_notify":"1"}}]}`))
	e.writeManifest("pod.yaml", podManifest("default", "tuned", "tune"))
	p := e.newPod("default", "tuned")
	e.mustAdd(p)
	l := keys(e.links(p))
	if slices.Sort(l); strings.Join(l, ",") != "eth0,lo" {
		t.Errorf("pod has %v, want lo and eth0 only (passthru creates no interface)", l)
	}
	if val, err := arpNotify(p); err != nil || val != "1" {
		t.Errorf("eth0 arp_notify = %q (%v), want 1 (set by tuning after passthru)", val, err)
	}
	// No entry for it in network-status (nothing to show), as Multus.
	if st := e.status(p); len(st) != 1 || st[0]["interface"] != "eth0" {
		t.Errorf("network-status %v, want eth0's entry only", st)
	}
	e.mustDel(p)
	e.assertClean()
}

// auxiliaryCNIChainName, Multus's meaning: after a pod's other attachments,
// passthru then the plugins of <dir of clusterNetwork>/<name>/*.conf run
// on the pod's existing interfaces (here tuning sets a sysctl of eth0).
// The chain takes the next free net<N>, creates nothing, shows nothing in
// network-status, and its DEL (also replayed with the daemon down) leaves
// nothing.
func TestAuxiliaryChain(t *testing.T) {
	netd := t.TempDir()
	cluster := filepath.Join(netd, "10-cluster.conflist")
	e := newEnv(t, withConfig("clusterNetwork", cluster), withConfig("auxiliaryCNIChainName", "vendor-chain"))
	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"cluster-file","plugins":[{"type":"bridge","bridge":"plexus-br0","isGateway":true,"ipam":{"type":"host-local","dataDir":%q,"ranges":[[{"subnet":"10.88.0.0/16"}]],"routes":[{"dst":"0.0.0.0/0"}]}}]}`, e.ipamDir)
	if err := os.WriteFile(cluster, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(netd, "vendor-chain"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(netd, "vendor-chain", "10-tune.conf"), []byte(`{"type":"tuning","sysctl":{"net.ipv4.conf.eth0.arp_notify":"1"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	e.writeManifest("nads.yaml", nadManifest("default", "mv1", macvlanConf("mv1", "1.0.0", "192.168.10.0/24", e.ipamDir)))
	e.writeManifest("pod.yaml", podManifest("default", "web", "mv1")+"---\n"+podManifest("default", "web2", ""))
	for _, name := range []string{"web", "web2"} {
		p := e.newPod("default", name)
		e.mustAdd(p)
		l := keys(e.links(p))
		slices.Sort(l)
		want := "eth0,lo,net1"
		if name == "web2" {
			want = "eth0,lo"
		}
		if strings.Join(l, ",") != want {
			t.Errorf("%s has %v, want %s (the chain creates no interface)", name, l, want)
		}
		if val, err := arpNotify(p); err != nil || val != "1" {
			t.Errorf("%s: eth0 arp_notify = %q (%v), want 1 (set by the chain)", name, val, err)
		}
		var ifs []string
		for _, s := range e.status(p) {
			ifs = append(ifs, s["interface"].(string))
		}
		if want := map[string]string{"web": "eth0,net1", "web2": "eth0"}[name]; strings.Join(ifs, ",") != want {
			t.Errorf("%s: network-status interfaces %v, want %s", name, ifs, want)
		}
		if name == "web2" {
			// DEL replayed by the shim from the record, the daemon down.
			e.stopDaemon()
		}
		e.mustDel(p)
	}
	e.startDaemon() // sweeps the status file the shim could not remove
	e.assertClean()
}

// Multus's inline delegates, without clusterNetwork: the first is the
// pod's eth0, the second follows on every pod, then the annotation's
// networks; DEL leaves nothing. A delegate that is not a valid CNI config
// stops plexusd at start, naming it.
func TestInlineDelegates(t *testing.T) {
	e := newEnv(t)
	e.stopDaemon()
	bridge := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"inline-cluster","type":"bridge","bridge":"plexus-br0","isGateway":true,"ipam":{"type":"host-local","dataDir":%q,"ranges":[[{"subnet":"10.88.0.0/16"}]],"routes":[{"dst":"0.0.0.0/0"}]}}`, e.ipamDir)
	e.extraCfg["delegates"] = []json.RawMessage{json.RawMessage(bridge), json.RawMessage(macvlanConf("inline-mv", "1.0.0", "192.168.30.0/24", e.ipamDir))}
	e.writeDaemonConfig("")
	e.startDaemon()
	e.writeManifest("nads.yaml", nadManifest("default", "mv1", macvlanConf("mv1", "1.0.0", "192.168.10.0/24", e.ipamDir)))
	e.writeManifest("pod.yaml", podManifest("default", "web", "mv1"))
	p := e.newPod("default", "web")
	e.mustAdd(p)
	links := e.links(p)
	for name, prefix := range map[string]string{"eth0": "10.88.", "net1": "192.168.30.", "net2": "192.168.10."} {
		if ips := links[name].ipv4(); len(ips) != 1 || !strings.HasPrefix(ips[0], prefix) {
			t.Errorf("%s has %v, want an address in %s*", name, ips, prefix)
		}
	}
	var names []string
	for _, s := range e.status(p) {
		names = append(names, s["name"].(string))
	}
	if strings.Join(names, ",") != "inline-cluster,inline-mv,default/mv1" {
		t.Errorf("network-status names %v", names)
	}
	e.mustDel(p)
	e.assertClean()

	e.stopDaemon()
	e.extraCfg["delegates"] = []json.RawMessage{json.RawMessage(bridge), json.RawMessage(`{"cniVersion":"1.0.0","type":"../evil"}`)}
	e.writeDaemonConfig("")
	if out, err := exec.Command(daemonBin, "--config", e.cfgPath).CombinedOutput(); err == nil {
		t.Fatalf("plexusd started with a bad delegate: %s", out)
	}
	if log, _ := os.ReadFile(e.logPath); !strings.Contains(string(log), `delegates[1]`) || !strings.Contains(string(log), "evil") {
		t.Errorf("the log does not name delegates[1] and its type: %s", log)
	}
}

// arpNotify reads the pod's eth0 arp_notify sysctl (what the tuning
// plugin sets in the passthru tests).
func arpNotify(p *pod) (string, error) {
	var val string
	err := p.netns.Do(func(ns.NetNS) error {
		b, err := os.ReadFile("/proc/sys/net/ipv4/conf/eth0/arp_notify")
		val = strings.TrimSpace(string(b))
		return err
	})
	return val, err
}
