package netselect

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/plexus-cni/plexus/pkg/delegate"
)

// The auxiliary chain (auxiliaryCNIChainName) comes last on every pod, with
// the next free net<N> name: passthru, then the drop-in plugins in order,
// in the daemon's cniVersion or else the default network's.
func TestResolveAuxiliaryChain(t *testing.T) {
	t.Parallel()
	const calico = "/etc/cni/net.d/10-calico.conflist"
	nads, confs := world()
	confs.chains = map[string][]string{"/etc/cni/net.d/vendor-chain": {
		`{"type":"tuning","sysctl":{"net.ipv4.conf.IFNAME.arp_notify":"1"}}`,
		`{"type":"sbr"}`,
	}}
	opts := baseOpts()
	opts.ClusterNetwork, opts.AuxiliaryChain = calico, "vendor-chain"
	specs, err := Resolve(opts, Request{Pod: pod("pods", map[string]string{
		NetworksAnnotation: `[{"name":"plain"},{"name":"plain","interface":"net2"}]`,
	}), RuntimeIfName: "eth0"}, nads, confs)
	if err != nil {
		t.Fatal(err)
	}
	want := []brief{{"k8s-pod-network", "eth0", true}, {"pods/plain", "net1", false}, {"pods/plain", "net2", false}, {"vendor-chain", "net3", false}}
	if got := briefs(specs); !reflect.DeepEqual(got, want) {
		t.Fatalf("specs %v, want %v", got, want)
	}
	aux := specs[3]
	if !aux.Auxiliary || aux.Selection != "" || slices.ContainsFunc(specs[:3], func(s delegate.Spec) bool { return s.Auxiliary }) {
		t.Errorf("only the last spec is auxiliary: %+v", specs)
	}
	var list struct {
		CNIVersion string
		Name       string
		Plugins    []map[string]any
	}
	if err := json.Unmarshal(aux.ConfList, &list); err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, p := range list.Plugins {
		types = append(types, p["type"].(string))
	}
	if list.CNIVersion != "1.0.0" || list.Name != "vendor-chain" || strings.Join(types, ",") != "passthru,tuning,sbr" {
		t.Errorf("chain conflist %s", aux.ConfList)
	}

	// The daemon's cniVersion wins; a system-namespace pod gets it too.
	opts.AuxiliaryCNIVersion = "0.4.0"
	specs, err = Resolve(opts, Request{Pod: pod(psNS, nil), RuntimeIfName: "eth0"}, nads, confs)
	if err != nil || len(specs) != 2 || !strings.Contains(string(specs[1].ConfList), `"cniVersion":"0.4.0"`) {
		t.Errorf("with cniVersion 0.4.0: %v %+v", err, specs)
	}

	// No drop-in plugin: no chain (passthru alone does nothing).
	opts.AuxiliaryChain = "empty-chain"
	if specs, err := Resolve(opts, Request{Pod: pod("pods", nil), RuntimeIfName: "eth0"}, nads, confs); err != nil || len(specs) != 1 {
		t.Errorf("empty chain: %v %v", err, briefs(specs))
	}
}

func TestResolveAuxiliaryChainErrors(t *testing.T) {
	t.Parallel()
	nads, confs := world()
	confs.chains = map[string][]string{
		"/etc/cni/net.d/bad": {`{"type":"../evil"}`},
		"/etc/cni/net.d/ok":  {`{"type":"tuning"}`},
	}
	for _, tc := range []struct {
		name, cluster, chain string
		max                  int
		want                 []string
	}{
		{"cluster network is a NAD name", "cluster-nad", "ok", 0, []string{`auxiliaryCNIChainName "ok"`, "file path"}},
		{"hostile plugin type", "/etc/cni/net.d/10-calico.conflist", "bad", 0, []string{`auxiliaryCNIChainName "bad"`, "evil"}},
		{"counts against maxAttachments", "/etc/cni/net.d/10-calico.conflist", "ok", 1, []string{"1 auxiliary chain", "limit of 1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := baseOpts()
			opts.ClusterNetwork, opts.AuxiliaryChain, opts.MaxAttachments = tc.cluster, tc.chain, tc.max
			_, err := Resolve(opts, Request{Pod: pod("pods", nil), RuntimeIfName: "eth0"}, nads, confs)
			var se *SelectionError
			if !errors.As(err, &se) {
				t.Fatalf("err %v, want a SelectionError", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if !strings.Contains(err.Error(), "pods/p") {
				t.Errorf("error %q does not name the pod", err)
			}
		})
	}
}

// Multus's inline delegates, used without clusterNetwork: the first is the
// default network (a pod's default-network annotation still replaces it),
// the rest follow on every pod, system namespaces included, in place of
// defaultNetworks.
func TestResolveInlineDelegates(t *testing.T) {
	t.Parallel()
	nads, confs := world()
	opts := baseOpts()
	opts.ClusterNetwork = ""
	opts.DefaultNetworks = []string{"monitoring"}
	opts.Delegates = []json.RawMessage{
		json.RawMessage(`{"cniVersion":"1.0.0","name":"inline-cluster","type":"bridge"}`),
		json.RawMessage(`{"cniVersion":"1.0.0","type":"macvlan","master":"eth1"}`),
	}
	for _, tc := range []struct {
		name string
		pod  map[string]string
		ns   string
		want []brief
	}{
		{"pod with a network", map[string]string{NetworksAnnotation: "plain"}, "pods",
			[]brief{{"inline-cluster", "eth0", true}, {"delegates-1", "net1", false}, {"pods/plain", "net2", false}}},
		{"system namespace", nil, psNS,
			[]brief{{"inline-cluster", "eth0", true}, {"delegates-1", "net1", false}}},
		{"default-network override", map[string]string{DefaultNetworkAnnotation: "alt-default"}, "pods",
			[]brief{{psNS + "/alt-default", "eth0", true}, {"delegates-1", "net1", false}}},
	} {
		specs, err := Resolve(opts, Request{Pod: pod(tc.ns, tc.pod), RuntimeIfName: "eth0"}, nads, confs)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := briefs(specs); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	// With clusterNetwork set, delegates are not used.
	opts.ClusterNetwork = "cluster-nad"
	specs, err := Resolve(opts, Request{Pod: pod("pods", nil), RuntimeIfName: "eth0"}, nads, confs)
	if want := []brief{{psNS + "/cluster-nad", "eth0", true}, {psNS + "/monitoring", "net1", false}}; err != nil || !reflect.DeepEqual(briefs(specs), want) {
		t.Errorf("with clusterNetwork: %v %v", err, briefs(specs))
	}
	// A bad inline delegate is named.
	opts.ClusterNetwork = ""
	opts.Delegates = append(opts.Delegates[:1:1], json.RawMessage(`{"type":"../evil"}`))
	if _, err := Resolve(opts, Request{Pod: pod("pods", nil), RuntimeIfName: "eth0"}, nads, confs); err == nil || !strings.Contains(err.Error(), "delegates[1]") {
		t.Errorf("bad delegate: %v", err)
	}
}
