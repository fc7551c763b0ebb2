package netselect

import (
	"encoding/json"
	"errors"
	"net"
	"reflect"
	"strings"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"

	"github.com/plexus-cni/plexus/pkg/podref"
)

// wantSelErr asserts err is a *SelectionError with the given field and an
// Error() containing every fragment.
func wantSelErr(t *testing.T, err error, field string, fragments ...string) *SelectionError {
	t.Helper()
	var se *SelectionError
	if !errors.As(err, &se) {
		t.Fatalf("want *SelectionError, got %T: %v", err, err)
	}
	if se.Field != field {
		t.Errorf("Field = %q, want %q (error: %v)", se.Field, field, err)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q does not contain %q", err.Error(), f)
		}
	}
	return se
}

func TestParseNetworks(t *testing.T) {
	t.Parallel()
	cniArgs := map[string]interface{}{"foo": "bar", "n": json.Number("12345678901234567890")}
	tests := []struct {
		name  string
		value string
		want  []nadv1.NetworkSelectionElement
	}{
		{name: "empty", value: "", want: nil},
		{name: "whitespace only", value: " \t\n ", want: nil},
		{name: "empty JSON list", value: "[]", want: nil},
		{name: "comma single", value: "macvlan-conf",
			want: []nadv1.NetworkSelectionElement{{Name: "macvlan-conf", Namespace: "pods"}}},
		{name: "comma full forms with whitespace", value: " a , other/b@net7,c@my_if ",
			want: []nadv1.NetworkSelectionElement{
				{Name: "a", Namespace: "pods"},
				{Name: "b", Namespace: "other", InterfaceRequest: "net7"},
				{Name: "c", Namespace: "pods", InterfaceRequest: "my_if"},
			}},
		{name: "comma duplicates kept", value: "a,a",
			want: []nadv1.NetworkSelectionElement{{Name: "a", Namespace: "pods"}, {Name: "a", Namespace: "pods"}}},
		{name: "JSON minimal", value: `[{"name":"x","interface":"net1"}]`,
			want: []nadv1.NetworkSelectionElement{{Name: "x", Namespace: "pods", InterfaceRequest: "net1"}}},
		{name: "JSON explicit namespace", value: `[{"name":"x","namespace":"kube-system"}]`,
			want: []nadv1.NetworkSelectionElement{{Name: "x", Namespace: "kube-system"}}},
		{name: "JSON empty namespace defaults", value: `[{"name":"x","namespace":""}]`,
			want: []nadv1.NetworkSelectionElement{{Name: "x", Namespace: "pods"}}},
		{name: "JSON unknown keys ignored", value: `[{"name":"x","deviceID":"0000:00:01.0","whatever":{"a":[1]}}]`,
			want: []nadv1.NetworkSelectionElement{{Name: "x", Namespace: "pods"}}},
		{name: "JSON interfaceRequest alias", value: `[{"name":"x","interfaceRequest":"legacy0"}]`,
			want: []nadv1.NetworkSelectionElement{{Name: "x", Namespace: "pods", InterfaceRequest: "legacy0"}}},
		{name: "JSON alias equal to interface", value: `[{"name":"x","interface":"a0","interfaceRequest":"a0"}]`,
			want: []nadv1.NetworkSelectionElement{{Name: "x", Namespace: "pods", InterfaceRequest: "a0"}}},
		{name: "JSON nulls are absent", value: `[{"name":"x","ips":null,"mac":null,"cni-args":null,"bandwidth":null}]`,
			want: []nadv1.NetworkSelectionElement{{Name: "x", Namespace: "pods"}}},
		{name: "JSON every field", value: `[{
			"name": "sriov", "namespace": "net",
			"ips": ["10.1.1.5/24", "2001:db8::5"],
			"mac": "02:00:00:00:00:01",
			"infiniband-guid": "c2:11:22:33:44:55:66:77",
			"interface": "sr0",
			"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "TCP", "hostIP": "10.0.0.1"}],
			"bandwidth": {"ingressRate": 1000, "ingressBurst": 10, "egressRate": 2000, "egressBurst": 20},
			"cni-args": {"foo": "bar", "n": 12345678901234567890},
			"default-route": ["10.1.1.1"],
			"ipam-claim-reference": "claim-1"
		}]`,
			want: []nadv1.NetworkSelectionElement{{
				Name: "sriov", Namespace: "net",
				IPRequest:             []string{"10.1.1.5/24", "2001:db8::5"},
				MacRequest:            "02:00:00:00:00:01",
				InfinibandGUIDRequest: "c2:11:22:33:44:55:66:77",
				InterfaceRequest:      "sr0",
				PortMappingsRequest:   []*nadv1.PortMapEntry{{HostPort: 8080, ContainerPort: 80, Protocol: "TCP", HostIP: "10.0.0.1"}},
				BandwidthRequest:      &nadv1.BandwidthEntry{IngressRate: 1000, IngressBurst: 10, EgressRate: 2000, EgressBurst: 20},
				CNIArgs:               &cniArgs,
				GatewayRequest:        []net.IP{net.ParseIP("10.1.1.1")},
				IPAMClaimReference:    "claim-1",
			}}},
		{name: "15-byte interface ok", value: "a@abcdefghijklmno",
			want: []nadv1.NetworkSelectionElement{{Name: "a", Namespace: "pods", InterfaceRequest: "abcdefghijklmno"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseNetworks(tc.value, "pods")
			if err != nil {
				t.Fatalf("ParseNetworks: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %s\nwant %s", FormatNetworks(got), FormatNetworks(tc.want))
			}
			again, err := ParseNetworks(FormatNetworks(got), "elsewhere")
			if err != nil {
				t.Fatalf("re-parse of %s: %v", FormatNetworks(got), err)
			}
			if !reflect.DeepEqual(again, got) {
				t.Fatalf("round trip changed the value:\n%s\n%s", FormatNetworks(got), FormatNetworks(again))
			}
		})
	}
}

func TestParseNetworksErrors(t *testing.T) {
	t.Parallel()
	many := strings.Repeat("a,", DefaultMaxAttachments) + "a"
	manyJSON := "[" + strings.Repeat(`{"name":"a"},`, DefaultMaxAttachments) + `{"name":"a"}]`
	tests := []struct {
		name      string
		value     string
		field     string
		fragments []string
	}{
		{"trailing comma", "a,b,", "", []string{`networks[2]`, "empty element"}},
		{"double comma", "a,,b", "", []string{`networks[1]`}},
		{"empty namespace", "/a", "namespace", []string{`networks[0] "a"`}},
		{"empty ifname", "a@", "interface", nil},
		{"too many slashes", "a/b/c", "name", []string{`"b/c"`}},
		{"upper-case name", "Macvlan", "name", []string{`invalid network name "Macvlan"`}},
		{"bad namespace comma", "Bad_NS/a", "namespace", nil},
		{"ifname 16 bytes", "a@abcdefghijklmnop", "interface", []string{"longer than 15"}},
		{"ifname multibyte over 15 bytes", "a@ééééééé√", "interface", []string{"longer than 15"}},
		{"ifname slash JSON", `[{"name":"a","interface":"x/y"}]`, "interface", []string{`'/'`}},
		{"ifname colon", "a@eth0:1", "interface", nil},
		{"ifname whitespace JSON", `[{"name":"a","interface":"a b"}]`, "interface", nil},
		{"ifname NUL JSON", `[{"name":"a","interface":"a\u0000"}]`, "interface", nil},
		{"ifname dotdot", "a@..", "interface", nil},
		{"alias conflict", `[{"name":"a","interface":"x","interfaceRequest":"y"}]`, "interfaceRequest", nil},
		{"bad JSON", `[{"name":"a"`, "", []string{NetworksAnnotation, "invalid JSON"}},
		{"JSON object not list", `{"name":"a"}`, "", []string{"list"}},
		{"JSON element not object", `["a"]`, "", []string{"networks[0]", "object"}},
		{"JSON name missing", `[{"namespace":"x"}]`, "name", []string{"missing network name"}},
		{"JSON name wrong type", `[{"name":5}]`, "name", nil},
		{"bad namespace JSON", `[{"name":"a","namespace":"Not_Valid"}]`, "namespace", []string{`networks[0] "a"`}},
		{"bad name JSON", `[{"name":"a b"}]`, "name", nil},
		{"quote in comma form is JSON", `a,"b"`, "", []string{"JSON form"}},
		{"bad IP", `[{"name":"a","ips":["10.0.0.1","10.0.0.300"]}]`, "ips[1]", []string{`"10.0.0.300"`}},
		{"bad CIDR", `[{"name":"a","ips":["10.0.0.1/33"]}]`, "ips[0]", nil},
		{"IP with zone", `[{"name":"a","ips":["fe80::1%eth0"]}]`, "ips[0]", nil},
		{"ips wrong type", `[{"name":"a","ips":"10.0.0.1"}]`, "ips", nil},
		{"bad MAC", `[{"name":"macvlan-conf","mac":"zz"}]`, "mac",
			[]string{`networks[0] "macvlan-conf": field "mac": invalid MAC address "zz"`}},
		{"8-byte MAC rejected", `[{"name":"a","mac":"c2:11:22:33:44:55:66:77"}]`, "mac", nil},
		{"6-byte IB GUID rejected", `[{"name":"a","infiniband-guid":"02:00:00:00:00:01"}]`, "infiniband-guid", nil},
		{"bad default-route", `[{"name":"a","default-route":["10.0.0.1","nope"]}]`, "default-route[1]", []string{`"nope"`}},
		{"default-route wrong type", `[{"name":"a","default-route":"10.0.0.1"}]`, "default-route", nil},
		{"port zero", `[{"name":"a","portMappings":[{"hostPort":0,"containerPort":80}]}]`, "portMappings[0].hostPort", nil},
		{"port too big", `[{"name":"a","portMappings":[{"hostPort":80,"containerPort":65536}]}]`, "portMappings[0].containerPort", nil},
		{"bad protocol", `[{"name":"a","portMappings":[{"hostPort":80,"containerPort":80,"protocol":"icmp"}]}]`, "portMappings[0].protocol", nil},
		{"bad hostIP", `[{"name":"a","portMappings":[{"hostPort":80,"containerPort":80,"hostIP":"x"}]}]`, "portMappings[0].hostIP", nil},
		{"null port mapping", `[{"name":"a","portMappings":[null]}]`, "portMappings[0]", nil},
		{"negative bandwidth", `[{"name":"a","bandwidth":{"egressBurst":-1}}]`, "bandwidth.egressBurst", nil},
		{"cni-args not object", `[{"name":"a","cni-args":["x"]}]`, "cni-args", []string{"JSON object"}},
		{"too many comma", many, "", []string{"limit of 32"}},
		{"too many JSON", manyJSON, "", []string{"limit of 32"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseNetworks(tc.value, "pods")
			if err == nil {
				t.Fatalf("ParseNetworks(%q) = %s, want error", tc.value, FormatNetworks(got))
			}
			se := wantSelErr(t, err, tc.field, tc.fragments...)
			if se.Transient || se.CNICode() != 7 {
				t.Errorf("parse errors must be permanent (code 7), got transient=%v code=%d", se.Transient, se.CNICode())
			}
		})
	}
}

func TestParseNetworksLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		limit   int
		value   string
		wantErr bool
	}{
		{"at limit", 2, "a,b", false},
		{"over limit", 2, "a,b,c", true},
		{"zero means default", 0, strings.Repeat("a,", 31) + "a", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseNetworksLimit(tc.value, "pods", tc.limit)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
		})
	}
}

func TestParseDefaultNetwork(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		value     string
		want      *nadv1.NetworkSelectionElement
		field     string
		fragments []string
	}{
		{name: "empty", value: "  ", want: nil},
		{name: "name defaults to plexus namespace", value: "calico",
			want: &nadv1.NetworkSelectionElement{Name: "calico", Namespace: "plexus-system"}},
		{name: "explicit namespace", value: " team/cilium ",
			want: &nadv1.NetworkSelectionElement{Name: "cilium", Namespace: "team"}},
		{name: "JSON form", value: `[{"name":"calico"}]`,
			want: &nadv1.NetworkSelectionElement{Name: "calico", Namespace: "plexus-system"}},
		{name: "JSON form with ips", value: `[{"name":"calico","ips":["10.0.0.9/24"]}]`,
			want: &nadv1.NetworkSelectionElement{Name: "calico", Namespace: "plexus-system", IPRequest: []string{"10.0.0.9/24"}}},
		{name: "two elements", value: "a,b", fragments: []string{DefaultNetworkAnnotation, "exactly one"}},
		{name: "two JSON elements", value: `[{"name":"a"},{"name":"b"}]`, fragments: []string{"exactly one"}},
		{name: "ifname not allowed", value: "a@eth1", field: "interface", fragments: []string{`"eth1"`}},
		{name: "JSON interface not allowed", value: `[{"name":"a","interface":"eth1"}]`, field: "interface"},
		{name: "invalid name", value: "A", field: "name", fragments: []string{DefaultNetworkAnnotation}},
		{name: "trailing comma", value: "a,", fragments: []string{DefaultNetworkAnnotation, "empty element"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseDefaultNetwork(tc.value, "plexus-system")
			if tc.fragments != nil || tc.field != "" {
				_ = wantSelErr(t, err, tc.field, tc.fragments...)
				return
			}
			if err != nil {
				t.Fatalf("ParseDefaultNetwork: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestValidateIfName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, ifName string
		ok           bool
	}{
		{"plain", "net1", true},
		{"underscore and dash", "my_if-0", true},
		{"max length", "abcdefghijklmno", true},
		{"empty", "", false},
		{"too long", "abcdefghijklmnop", false},
		{"dot", ".", false},
		{"dotdot", "..", false},
		{"slash", "a/b", false},
		{"colon", "a:b", false},
		{"space", "a b", false},
		{"tab", "a\tb", false},
		{"NUL", "a\x00", false},
		{"control", "a\x01", false},
		{"invalid UTF-8", "a\xff", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := ValidateIfName(tc.ifName); (err == nil) != tc.ok {
				t.Fatalf("ValidateIfName(%q) = %v, want ok=%v", tc.ifName, err, tc.ok)
			}
		})
	}
}

func TestSelectionErrorFormat(t *testing.T) {
	t.Parallel()
	cause := errors.New("connection refused")
	tests := []struct {
		name     string
		err      *SelectionError
		want     string
		wantCode uint
	}{
		{"full", &SelectionError{Pod: "ns/p", Element: `networks[1] "macvlan-conf"`, Field: "mac", Reason: `invalid MAC address "zz"`},
			`pod "ns/p": networks[1] "macvlan-conf": field "mac": invalid MAC address "zz"`, 7},
		{"no pod no field", &SelectionError{Element: "clusterNetwork", Reason: "no network configured"},
			`clusterNetwork: no network configured`, 7},
		{"transient with cause", &SelectionError{Pod: "ns/p", Element: `networks[0] "a"`, Reason: `getting NetworkAttachmentDefinition "ns/a"`, Err: cause, Transient: true},
			`pod "ns/p": networks[0] "a": getting NetworkAttachmentDefinition "ns/a": connection refused`, 11},
		{"not-found cause not repeated", &SelectionError{Element: `networks[0] "a"`, Reason: `NetworkAttachmentDefinition "ns/a" not found`, Err: podref.ErrNotFound},
			`networks[0] "a": NetworkAttachmentDefinition "ns/a" not found`, 7},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("Error() = %q\nwant      %q", got, tc.want)
			}
			if got := tc.err.CNICode(); got != tc.wantCode {
				t.Errorf("CNICode() = %d, want %d", got, tc.wantCode)
			}
			if tc.err.Err != nil && !errors.Is(tc.err, tc.err.Err) {
				t.Errorf("Unwrap does not reach the cause")
			}
		})
	}
}
