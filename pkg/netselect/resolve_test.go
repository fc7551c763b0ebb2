package netselect

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"

	"github.com/plexus-cni/plexus/pkg/delegate"
	"github.com/plexus-cni/plexus/pkg/podref"
)

const (
	confDir = "/etc/cni/plexus/net.d"
	psNS    = "plexus-system"

	clusterConf = `{"cniVersion":"1.0.0","name":"cluster","plugins":[{"type":"flannel"},{"type":"portmap","capabilities":{"portMappings":true}}]}`
	macvlanConf = `{"cniVersion":"1.0.0","type":"macvlan","master":"eth1","ipam":{"type":"static"},"capabilities":{"ips":true,"mac":true}}`
	plainConf   = `{"cniVersion":"0.4.0","type":"bridge"}`
	capsConf    = `{"cniVersion":"1.0.0","name":"caps","plugins":[{"type":"sriov","capabilities":{"infinibandGUID":true}},` +
		`{"type":"portmap","capabilities":{"portMappings":true}},{"type":"bandwidth","capabilities":{"bandwidth":true}}]}`
)

// world is the fixture every Resolve test starts from.
func world() (*fakeNADs, *fakeConfs) {
	nads := newFakeNADs(
		makeNAD(psNS, "cluster-nad", clusterConf),
		makeNAD(psNS, "alt-default", plainConf),
		makeNAD(psNS, "monitoring", plainConf),
		makeNAD("pods", "macvlan-conf", macvlanConf),
		makeNAD("pods", "plain", plainConf),
		makeNAD("pods", "caps", capsConf),
		makeNAD("pods", "bad-type", `{"cniVersion":"1.0.0","type":"../evil"}`),
		makeNAD("default", "shared", plainConf),
		makeNAD("other", "foreign", plainConf),
		makeNAD("other", "alt-default", plainConf),
	)
	confs := &fakeConfs{
		byName: map[string]string{confDir + "|disk-net": `{"cniVersion":"1.0.0","name":"disk-net","type":"ptp"}`},
		files:  map[string]string{"/etc/cni/net.d/10-calico.conflist": `{"cniVersion":"1.0.0","name":"k8s-pod-network","plugins":[{"type":"calico"}]}`},
	}
	return nads, confs
}

func baseOpts() Options {
	return Options{
		ClusterNetwork:  "cluster-nad",
		PlexusNamespace: psNS,
		ConfDir:         confDir,
	}
}

func pod(ns string, ann map[string]string) *podref.Pod {
	return &podref.Pod{Namespace: ns, Name: "p", UID: "uid-1", Annotations: ann}
}

// brief is the part of a Spec most tests care about.
type brief struct {
	Network string
	IfName  string
	Default bool
}

func briefs(specs []delegate.Spec) []brief {
	out := make([]brief, len(specs))
	for i, s := range specs {
		out[i] = brief{s.Network, s.IfName, s.Default}
	}
	return out
}

func TestResolveOrdering(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		modify func(*Options)
		req    Request
		want   []brief
	}{
		{
			name: "no pod: cluster and default networks only",
			modify: func(o *Options) {
				o.DefaultNetworks = []string{"monitoring", "disk-net"}
			},
			req: Request{RuntimeIfName: "eth0"},
			want: []brief{
				{psNS + "/cluster-nad", "eth0", true},
				{psNS + "/monitoring", "net1", false},
				{"disk-net", "net2", false},
			},
		},
		{
			name: "pod without annotations",
			req:  Request{Pod: pod("pods", nil), RuntimeIfName: "eth0"},
			want: []brief{{psNS + "/cluster-nad", "eth0", true}},
		},
		{
			name:   "cluster, defaults, annotation in order with duplicates",
			modify: func(o *Options) { o.DefaultNetworks = []string{"monitoring"} },
			req: Request{Pod: pod("pods", map[string]string{
				NetworksAnnotation: "plain, macvlan-conf@mv0, plain, default/shared",
			}), RuntimeIfName: "eth0"},
			want: []brief{
				{psNS + "/cluster-nad", "eth0", true},
				{psNS + "/monitoring", "net1", false},
				{"pods/plain", "net2", false},
				{"pods/macvlan-conf", "mv0", false},
				{"pods/plain", "net3", false},
				{"default/shared", "net4", false},
			},
		},
		{
			name: "requested names are reserved before numbering",
			req: Request{Pod: pod("pods", map[string]string{
				NetworksAnnotation: `[{"name":"plain"},{"name":"plain","interface":"net1"}]`,
			}), RuntimeIfName: "eth0"},
			want: []brief{
				{psNS + "/cluster-nad", "eth0", true},
				{"pods/plain", "net2", false},
				{"pods/plain", "net1", false},
			},
		},
		{
			name:   "default-network override replaces the cluster network",
			modify: func(o *Options) { o.DefaultNetworks = []string{"monitoring"} },
			req: Request{Pod: pod("pods", map[string]string{
				DefaultNetworkAnnotation: "alt-default",
				NetworksAnnotation:       "plain",
			}), RuntimeIfName: "eth0"},
			want: []brief{
				{psNS + "/alt-default", "eth0", true},
				{psNS + "/monitoring", "net1", false},
				{"pods/plain", "net2", false},
			},
		},
		{
			name: "override with explicit namespace",
			req: Request{Pod: pod("pods", map[string]string{DefaultNetworkAnnotation: "other/alt-default"}),
				RuntimeIfName: "eth0"},
			want: []brief{{"other/alt-default", "eth0", true}},
		},
		{
			name: "system namespace skips default networks",
			modify: func(o *Options) {
				o.DefaultNetworks = []string{"monitoring"}
				o.SystemNamespaces = []string{"kube-system"}
			},
			req: Request{Pod: pod("kube-system", map[string]string{NetworksAnnotation: "pods/plain"}), RuntimeIfName: "eth0"},
			want: []brief{
				{psNS + "/cluster-nad", "eth0", true},
				{"pods/plain", "net1", false},
			},
		},
		{
			name:   "cluster network from a conf name in confDir",
			modify: func(o *Options) { o.ClusterNetwork = "disk-net" },
			req:    Request{RuntimeIfName: "eth0"},
			want:   []brief{{"disk-net", "eth0", true}},
		},
		{
			name:   "cluster network from an absolute path uses the conf name",
			modify: func(o *Options) { o.ClusterNetwork = "/etc/cni/net.d/10-calico.conflist" },
			req:    Request{RuntimeIfName: "eth0"},
			want:   []brief{{"k8s-pod-network", "eth0", true}},
		},
		{
			name: "isolation allows own namespace and default when GlobalNamespaces is nil",
			modify: func(o *Options) {
				o.NamespaceIsolation = true
			},
			req: Request{Pod: pod("pods", map[string]string{NetworksAnnotation: "plain,default/shared"}), RuntimeIfName: "eth0"},
			want: []brief{
				{psNS + "/cluster-nad", "eth0", true},
				{"pods/plain", "net1", false},
				{"default/shared", "net2", false},
			},
		},
		{
			name: "isolation does not apply to configured networks",
			modify: func(o *Options) {
				o.NamespaceIsolation = true
				o.GlobalNamespaces = []string{}
				o.DefaultNetworks = []string{"monitoring"}
			},
			req: Request{Pod: pod("pods", nil), RuntimeIfName: "eth0"},
			want: []brief{
				{psNS + "/cluster-nad", "eth0", true},
				{psNS + "/monitoring", "net1", false},
			},
		},
		{
			name: "isolation allows listed global namespaces for the override",
			modify: func(o *Options) {
				o.NamespaceIsolation = true
				o.GlobalNamespaces = []string{psNS}
			},
			req:  Request{Pod: pod("pods", map[string]string{DefaultNetworkAnnotation: "alt-default"}), RuntimeIfName: "eth0"},
			want: []brief{{psNS + "/alt-default", "eth0", true}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			nads, confs := world()
			opts := baseOpts()
			if tc.modify != nil {
				tc.modify(&opts)
			}
			specs, err := Resolve(opts, tc.req, nads, confs)
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if got := briefs(specs); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
			for i, s := range specs {
				if !json.Valid(s.ConfList) {
					t.Errorf("specs[%d].ConfList is not JSON: %s", i, s.ConfList)
				}
			}
		})
	}
}

func TestResolveRequests(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		annotation string
		want       delegate.Spec // Network and IfName are checked too; ConfList via wantConf
		wantConf   []string      // fragments of the ConfList
	}{
		{
			name:       "ips and mac become capability args and legacy args",
			annotation: `[{"name":"macvlan-conf","ips":["10.1.1.5/24","2001:db8::5/64"],"mac":"02:00:00:00:00:01","default-route":["10.1.1.1"]}]`,
			want: delegate.Spec{
				Network: "pods/macvlan-conf", IfName: "net1",
				Args: [][2]string{{"IP", "10.1.1.5/24,2001:db8::5/64"}, {"MAC", "02:00:00:00:00:01"}},
				CapabilityArgs: map[string]interface{}{
					"ips": []string{"10.1.1.5/24", "2001:db8::5/64"},
					"mac": "02:00:00:00:00:01",
				},
				DefaultRoute: []string{"10.1.1.1"},
			},
			wantConf: []string{`"master":"eth1"`},
		},
		{
			name: "guid, port mappings and bandwidth",
			annotation: `[{"name":"caps","infiniband-guid":"c2:11:22:33:44:55:66:77",` +
				`"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"UDP"},{"hostPort":9090,"containerPort":90}],` +
				`"bandwidth":{"ingressRate":100,"ingressBurst":10,"egressRate":200,"egressBurst":20}}]`,
			want: delegate.Spec{
				Network: "pods/caps", IfName: "net1",
				CapabilityArgs: map[string]interface{}{
					"infinibandGUID": "c2:11:22:33:44:55:66:77",
					"portMappings": []nadv1.PortMapEntry{
						{HostPort: 8080, ContainerPort: 80, Protocol: "udp"},
						{HostPort: 9090, ContainerPort: 90, Protocol: "tcp"},
					},
					"bandwidth": nadv1.BandwidthEntry{IngressRate: 100, IngressBurst: 10, EgressRate: 200, EgressBurst: 20},
				},
			},
		},
		{
			name:       "cni-args merged into the delegate config",
			annotation: `[{"name":"plain","interface":"br0","cni-args":{"vlan":100,"big":12345678901234567890}}]`,
			want:       delegate.Spec{Network: "pods/plain", IfName: "br0"},
			wantConf:   []string{`"args":{"cni":{"big":12345678901234567890,"vlan":100}}`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			nads, confs := world()
			specs, err := Resolve(baseOpts(), Request{
				Pod: pod("pods", map[string]string{NetworksAnnotation: tc.annotation}), RuntimeIfName: "eth0",
			}, nads, confs)
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if len(specs) != 2 {
				t.Fatalf("got %d specs, want 2", len(specs))
			}
			got := specs[1]
			conf := string(got.ConfList)
			got.ConfList = nil
			if got.Selection == "" {
				t.Error("no selection key")
			}
			got.Selection = ""
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %#v\nwant %#v", got, tc.want)
			}
			for _, f := range tc.wantConf {
				if !strings.Contains(conf, f) {
					t.Errorf("ConfList %s lacks %q", conf, f)
				}
			}
		})
	}
}

func TestResolveErrors(t *testing.T) {
	t.Parallel()
	apiDown := errors.New("connection refused")
	tests := []struct {
		name          string
		modify        func(*Options)
		nadErrs       map[string]error
		req           Request
		field         string
		fragments     []string
		wantTransient bool
	}{
		{
			name:      "isolation rejects another namespace",
			modify:    func(o *Options) { o.NamespaceIsolation = true },
			req:       Request{Pod: pod("pods", map[string]string{NetworksAnnotation: "plain,other/foreign"}), RuntimeIfName: "eth0"},
			field:     "namespace",
			fragments: []string{`pod "pods/p"`, `networks[1] "foreign"`, "namespace isolation: pod in pods may not use networks in other"},
		},
		{
			name: "isolation with explicit GlobalNamespaces drops default",
			modify: func(o *Options) {
				o.NamespaceIsolation = true
				o.GlobalNamespaces = []string{"shared-nets"}
			},
			req:       Request{Pod: pod("pods", map[string]string{NetworksAnnotation: "default/shared"}), RuntimeIfName: "eth0"},
			field:     "namespace",
			fragments: []string{"may not use networks in default"},
		},
		{
			name:      "isolation applies to the default-network override",
			modify:    func(o *Options) { o.NamespaceIsolation = true },
			req:       Request{Pod: pod("pods", map[string]string{DefaultNetworkAnnotation: "other/alt-default"}), RuntimeIfName: "eth0"},
			field:     "namespace",
			fragments: []string{DefaultNetworkAnnotation, "may not use networks in other"},
		},
		{
			name:      "isolation applies to a namespace-less override (plexus namespace)",
			modify:    func(o *Options) { o.NamespaceIsolation = true },
			req:       Request{Pod: pod("pods", map[string]string{DefaultNetworkAnnotation: "alt-default"}), RuntimeIfName: "eth0"},
			field:     "namespace",
			fragments: []string{"may not use networks in " + psNS},
		},
		{
			name:      "unknown NAD",
			req:       Request{Pod: pod("pods", map[string]string{NetworksAnnotation: "plain,nope"}), RuntimeIfName: "eth0"},
			fragments: []string{`networks[1] "nope"`, `NetworkAttachmentDefinition "pods/nope" not found`},
		},
		{
			name:          "API trouble is transient",
			nadErrs:       map[string]error{"pods/plain": apiDown},
			req:           Request{Pod: pod("pods", map[string]string{NetworksAnnotation: "plain"}), RuntimeIfName: "eth0"},
			fragments:     []string{"connection refused"},
			wantTransient: true,
		},
		{
			name:          "API trouble on the cluster network is transient",
			nadErrs:       map[string]error{psNS + "/cluster-nad": apiDown},
			req:           Request{RuntimeIfName: "eth0"},
			fragments:     []string{"clusterNetwork"},
			wantTransient: true,
		},
		{
			name:      "unknown cluster network",
			modify:    func(o *Options) { o.ClusterNetwork = "ghost" },
			req:       Request{RuntimeIfName: "eth0"},
			fragments: []string{"clusterNetwork", `"ghost" is neither`},
		},
		{
			name:      "no cluster network configured",
			modify:    func(o *Options) { o.ClusterNetwork = "" },
			req:       Request{RuntimeIfName: "eth0"},
			fragments: []string{"clusterNetwork", "no network configured"},
		},
		{
			name:      "missing cluster network file",
			modify:    func(o *Options) { o.ClusterNetwork = "/nope.conf" },
			req:       Request{RuntimeIfName: "eth0"},
			fragments: []string{`"/nope.conf"`},
		},
		{
			name:      "unknown default network",
			modify:    func(o *Options) { o.DefaultNetworks = []string{"monitoring", "ghost"} },
			req:       Request{RuntimeIfName: "eth0"},
			fragments: []string{`defaultNetworks[1] "ghost"`},
		},
		{
			name:      "bad delegate config names the element and NAD",
			req:       Request{Pod: pod("pods", map[string]string{NetworksAnnotation: "bad-type"}), RuntimeIfName: "eth0"},
			field:     "spec.config: type",
			fragments: []string{`networks[0] "bad-type": NetworkAttachmentDefinition "pods/bad-type"`},
		},
		{
			name:      "ips without a declaring plugin",
			req:       Request{Pod: pod("pods", map[string]string{NetworksAnnotation: `[{"name":"plain","ips":["10.0.0.5/24"]}]`}), RuntimeIfName: "eth0"},
			field:     "ips",
			fragments: []string{`network "pods/plain" has no plugin declaring capability "ips" (NPWG spec 4.1.2.1.3.2)`},
		},
		{
			name:      "mac without a declaring plugin",
			req:       Request{Pod: pod("pods", map[string]string{NetworksAnnotation: `[{"name":"caps","mac":"02:00:00:00:00:01"}]`}), RuntimeIfName: "eth0"},
			field:     "mac",
			fragments: []string{`capability "mac"`},
		},
		{
			name:      "bandwidth without a declaring plugin",
			req:       Request{Pod: pod("pods", map[string]string{NetworksAnnotation: `[{"name":"macvlan-conf","bandwidth":{}}]`}), RuntimeIfName: "eth0"},
			field:     "bandwidth",
			fragments: []string{`capability "bandwidth"`},
		},
		{
			name: "capability on the override is checked too",
			req: Request{Pod: pod("pods", map[string]string{DefaultNetworkAnnotation: `[{"name":"alt-default","ips":["10.0.0.5/24"]}]`}),
				RuntimeIfName: "eth0"},
			field: "ips",
		},
		{
			name: "two IPv4 gateways (ECMP)",
			req: Request{Pod: pod("pods", map[string]string{NetworksAnnotation: `[{"name":"plain","default-route":["10.0.0.1"]},` +
				`{"name":"plain","default-route":["2001:db8::1"]},{"name":"plain","default-route":["10.0.1.1"]}]`}), RuntimeIfName: "eth0"},
			field:     "default-route",
			fragments: []string{`networks[2] "plain"`, `networks[0] "plain" already requests one`, "ECMP"},
		},
		{
			name: "two IPv6 gateways in one element",
			req: Request{Pod: pod("pods", map[string]string{NetworksAnnotation: `[{"name":"plain","default-route":["2001:db8::1","2001:db8::2"]}]`}),
				RuntimeIfName: "eth0"},
			field: "default-route",
		},
		{
			name:      "requested ifname equals CNI_IFNAME",
			req:       Request{Pod: pod("pods", map[string]string{NetworksAnnotation: "plain@eth0"}), RuntimeIfName: "eth0"},
			field:     "interface",
			fragments: []string{`networks[0] "plain"`, "the default network"},
		},
		{
			name:      "same ifname twice",
			req:       Request{Pod: pod("pods", map[string]string{NetworksAnnotation: "plain@x0, macvlan-conf@x0"}), RuntimeIfName: "eth0"},
			field:     "interface",
			fragments: []string{`networks[1] "macvlan-conf"`, `networks[0] "plain"`},
		},
		{
			name:      "too many attachments in total",
			modify:    func(o *Options) { o.MaxAttachments = 3; o.DefaultNetworks = []string{"monitoring"} },
			req:       Request{Pod: pod("pods", map[string]string{NetworksAnnotation: "plain,plain"}), RuntimeIfName: "eth0"},
			fragments: []string{"limit of 3"},
		},
		{
			name:      "bad annotation gets the pod",
			req:       Request{Pod: pod("pods", map[string]string{NetworksAnnotation: "a,b,"}), RuntimeIfName: "eth0"},
			fragments: []string{`pod "pods/p": networks[2]`},
		},
		{
			name:      "bad default-network annotation",
			req:       Request{Pod: pod("pods", map[string]string{DefaultNetworkAnnotation: "a,b"}), RuntimeIfName: "eth0"},
			fragments: []string{`pod "pods/p"`, DefaultNetworkAnnotation},
		},
		{
			name:      "invalid runtime ifname",
			req:       Request{RuntimeIfName: ""},
			fragments: []string{"CNI_IFNAME"},
		},
		{
			name:      "pod without namespace",
			req:       Request{Pod: pod("", nil), RuntimeIfName: "eth0"},
			fragments: []string{"no namespace"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			nads, confs := world()
			for k, v := range tc.nadErrs {
				nads.errs[k] = v
			}
			opts := baseOpts()
			if tc.modify != nil {
				tc.modify(&opts)
			}
			specs, err := Resolve(opts, tc.req, nads, confs)
			if err == nil {
				t.Fatalf("Resolve = %+v, want error", briefs(specs))
			}
			se := wantSelErr(t, err, tc.field, tc.fragments...)
			if se.Transient != tc.wantTransient {
				t.Errorf("Transient = %v, want %v (%v)", se.Transient, tc.wantTransient, err)
			}
			wantCode := uint(7)
			if tc.wantTransient {
				wantCode = 11
			}
			if se.CNICode() != wantCode {
				t.Errorf("CNICode = %d, want %d", se.CNICode(), wantCode)
			}
		})
	}
}

func TestResolveNotFoundIsDetectable(t *testing.T) {
	t.Parallel()
	nads, confs := world()
	_, err := Resolve(baseOpts(), Request{Pod: pod("pods", map[string]string{NetworksAnnotation: "nope"}), RuntimeIfName: "eth0"}, nads, confs)
	if !errors.Is(err, podref.ErrNotFound) {
		t.Fatalf("err = %v, want errors.Is(err, podref.ErrNotFound)", err)
	}
}

func TestResolveNilSources(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		noLoader bool
		wantErr  bool
	}{
		{"no NAD getter: conf by name", false, false},
		{"no NAD getter and no conf loader", true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, confs := world()
			var loader ConfLoader = confs
			if tc.noLoader {
				loader = nil
			}
			opts := Options{ClusterNetwork: "disk-net", ConfDir: confDir}
			_, err := Resolve(opts, Request{RuntimeIfName: "eth0"}, nil, loader)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
		})
	}
}

func TestCapabilityKeys(t *testing.T) {
	t.Parallel()
	want := []string{"ips", "mac", "infinibandGUID", "portMappings", "bandwidth"}
	if got := CapabilityKeys(); !reflect.DeepEqual(got, want) {
		t.Fatalf("CapabilityKeys() = %v, want %v", got, want)
	}
}

func TestResolveResourceName(t *testing.T) {
	t.Parallel()
	withResource := func(namespace, name, config, resource string) *nadv1.NetworkAttachmentDefinition {
		nad := makeNAD(namespace, name, config)
		nad.Annotations = map[string]string{ResourceNameAnnotation: resource}
		return nad
	}
	const vfConf = `{"cniVersion":"1.0.0","type":"sriov","capabilities":{"deviceID":true}}`
	tests := []struct {
		name       string
		opts       func(*Options)
		annotation string
		want       []string // ResourceName per spec, in order
	}{
		{
			name:       "selected NADs: annotated and not",
			annotation: "vf, plain, vf",
			want:       []string{"", "intel.com/sriov", "", "intel.com/sriov"},
		},
		{
			name:       "whitespace around the value is dropped",
			annotation: "spaced",
			want:       []string{"", "example.com/vf"},
		},
		{
			name: "cluster network and default networks from NADs",
			opts: func(o *Options) {
				o.ClusterNetwork = "vf-cluster"
				o.DefaultNetworks = []string{"monitoring", "vf-cluster"}
			},
			annotation: "",
			want:       []string{"example.com/cluster-vf", "", "example.com/cluster-vf"},
		},
		{
			name:       "conf-file networks have none",
			opts:       func(o *Options) { o.ClusterNetwork = "disk-net" },
			annotation: "vf",
			want:       []string{"", "intel.com/sriov"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			nads, confs := world()
			for _, n := range []*nadv1.NetworkAttachmentDefinition{
				withResource("pods", "vf", vfConf, "intel.com/sriov"),
				withResource("pods", "spaced", vfConf, " example.com/vf\n"),
				withResource(psNS, "vf-cluster", vfConf, "example.com/cluster-vf"),
			} {
				nads.nads[n.Namespace+"/"+n.Name] = n
			}
			opts := baseOpts()
			if tc.opts != nil {
				tc.opts(&opts)
			}
			specs, err := Resolve(opts, Request{Pod: pod("pods", map[string]string{NetworksAnnotation: tc.annotation}), RuntimeIfName: "eth0"}, nads, confs)
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			got := make([]string, len(specs))
			for i, s := range specs {
				got[i] = s.ResourceName
				if s.DeviceID != "" || s.DeviceInfoFile != "" {
					t.Errorf("spec %d: Resolve set DeviceID %q / DeviceInfoFile %q (devices are assigned later)", i, s.DeviceID, s.DeviceInfoFile)
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("ResourceName per spec = %q, want %q", got, tc.want)
			}
		})
	}
}
