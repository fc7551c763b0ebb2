package delegate

import (
	"encoding/json"
	"errors"
	"net"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	types040 "github.com/containernetworking/cni/pkg/types/040"
	current "github.com/containernetworking/cni/pkg/types/100"
)

var supportedVersions = []string{"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}

func cidr(t *testing.T, s string) net.IPNet {
	t.Helper()
	ipn, err := types.ParseCIDR(s)
	if err != nil {
		t.Fatal(err)
	}
	return *ipn
}

func defaultResult100(t *testing.T) *current.Result {
	t.Helper()
	return &current.Result{
		CNIVersion: "1.0.0",
		Interfaces: []*current.Interface{{Name: "eth0", Mac: "02:00:00:00:00:01", Sandbox: "/var/run/netns/x"}},
		IPs: []*current.IPConfig{
			{Interface: current.Int(0), Address: cidr(t, "10.0.0.5/24"), Gateway: net.ParseIP("10.0.0.1")},
			{Interface: current.Int(0), Address: cidr(t, "2001:db8::5/64")},
		},
		DNS: types.DNS{Nameservers: []string{"10.96.0.10"}},
	}
}

// decoded is the version-independent part of every 0.3.0+ result.
type decoded struct {
	CNIVersion string `json:"cniVersion"`
	Interfaces []struct {
		Name string `json:"name"`
	} `json:"interfaces"`
	IPs []struct {
		Address string `json:"address"`
	} `json:"ips"`
}

func decode(t *testing.T, raw []byte) decoded {
	t.Helper()
	var d decoded
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("result %s does not decode: %v", raw, err)
	}
	return d
}

func TestDefaultResult(t *testing.T) {
	t.Parallel()
	for _, v := range supportedVersions {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			outcomes := []Outcome{
				{Spec: Spec{Network: "ns/first", IfName: "net1"}, Result: &current.Result{
					CNIVersion: "1.0.0",
					Interfaces: []*current.Interface{{Name: "net1", Sandbox: "/var/run/netns/x"}},
					IPs:        []*current.IPConfig{{Interface: current.Int(0), Address: cidr(t, "192.168.1.5/24")}},
				}},
				{Spec: Spec{Network: "default", IfName: "eth0", Default: true}, Result: defaultResult100(t)},
			}
			raw, err := DefaultResult(outcomes, v)
			if err != nil {
				t.Fatalf("DefaultResult(%s): %v", v, err)
			}
			d := decode(t, raw)
			if d.CNIVersion != v {
				t.Fatalf("cniVersion = %q, want %q", d.CNIVersion, v)
			}
			if len(d.Interfaces) != 1 || d.Interfaces[0].Name != "eth0" {
				t.Fatalf("interfaces = %+v, want the default network's eth0", d.Interfaces)
			}
			if len(d.IPs) != 2 || d.IPs[0].Address != "10.0.0.5/24" || d.IPs[1].Address != "2001:db8::5/64" {
				t.Fatalf("ips = %+v, want the default network's", d.IPs)
			}
			// The result must parse back as a result of that version.
			if _, err := current.NewResultFromResult(mustParse(t, v, raw)); err != nil {
				t.Fatalf("result does not convert back: %v", err)
			}
		})
	}
}

func mustParse(t *testing.T, v string, raw []byte) types.Result {
	t.Helper()
	var (
		r   types.Result
		err error
	)
	switch v {
	case "1.0.0", "1.1.0":
		r, err = current.NewResult(raw)
	default:
		r, err = types040.NewResult(raw)
	}
	if err != nil {
		t.Fatalf("parse %s result %s: %v", v, raw, err)
	}
	return r
}

func TestDefaultResultFromOlderDelegate(t *testing.T) {
	t.Parallel()
	old := &types040.Result{
		CNIVersion: "0.3.1",
		Interfaces: []*types040.Interface{{Name: "eth0", Sandbox: "/var/run/netns/x"}},
		IPs:        []*types040.IPConfig{{Version: "4", Interface: types040.Int(0), Address: cidr(t, "10.3.1.5/24")}},
	}
	for _, v := range supportedVersions {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			raw, err := DefaultResult([]Outcome{{Spec: Spec{Network: "default", IfName: "eth0", Default: true}, Result: old}}, v)
			if err != nil {
				t.Fatalf("DefaultResult: %v", err)
			}
			if d := decode(t, raw); d.CNIVersion != v || len(d.IPs) != 1 || d.IPs[0].Address != "10.3.1.5/24" {
				t.Fatalf("result = %s", raw)
			}
		})
	}
}

func TestDefaultResultErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		outcomes      []Outcome
		version       string
		wantNoDefault bool
	}{
		{name: "no outcomes", outcomes: nil, version: "1.0.0", wantNoDefault: true},
		{name: "no default outcome", version: "1.0.0", wantNoDefault: true, outcomes: []Outcome{
			{Spec: Spec{Network: "ns/a", IfName: "net1"}, Result: defaultResult100(t)},
			{Spec: Spec{Network: "ns/b", IfName: "net2"}, Result: defaultResult100(t)},
		}},
		{name: "default without result", version: "1.0.0", outcomes: []Outcome{
			{Spec: Spec{Network: "default", IfName: "eth0", Default: true}},
		}},
		{name: "unknown version", version: "9.9.9", outcomes: []Outcome{
			{Spec: Spec{Network: "default", IfName: "eth0", Default: true}, Result: defaultResult100(t)},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			raw, err := DefaultResult(tt.outcomes, tt.version)
			if err == nil {
				t.Fatalf("DefaultResult = %s, want error", raw)
			}
			if got := errors.Is(err, ErrNoDefault); got != tt.wantNoDefault {
				t.Fatalf("errors.Is(%v, ErrNoDefault) = %v, want %v", err, got, tt.wantNoDefault)
			}
		})
	}
}

func TestEmptyResult(t *testing.T) {
	t.Parallel()
	for _, v := range supportedVersions {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			raw, err := EmptyResult(v, "eth0")
			if err != nil {
				t.Fatalf("EmptyResult(%s): %v", v, err)
			}
			d := decode(t, raw)
			if d.CNIVersion != v {
				t.Fatalf("cniVersion = %q, want %q", d.CNIVersion, v)
			}
			if len(d.Interfaces) != 1 || d.Interfaces[0].Name != "eth0" {
				t.Fatalf("interfaces = %+v, want [eth0]", d.Interfaces)
			}
			if len(d.IPs) != 0 {
				t.Fatalf("ips = %+v, want none", d.IPs)
			}
		})
	}
	t.Run("unknown version", func(t *testing.T) {
		t.Parallel()
		if raw, err := EmptyResult("9.9.9", "eth0"); err == nil {
			t.Fatalf("EmptyResult = %s, want error", raw)
		}
	})
}

func TestAsCurrent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      types.Result
		wantIPs int
	}{
		{name: "nil", in: nil, wantIPs: 0},
		{name: "1.0.0", in: defaultResult100(t), wantIPs: 2},
		{name: "0.4.0", in: &types040.Result{CNIVersion: "0.4.0", IPs: []*types040.IPConfig{{Version: "4", Address: cidr(t, "10.0.0.1/8")}}}, wantIPs: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := AsCurrent(tt.in)
			if err != nil {
				t.Fatalf("AsCurrent: %v", err)
			}
			if got == nil || len(got.IPs) != tt.wantIPs {
				t.Fatalf("AsCurrent = %+v, want %d IPs", got, tt.wantIPs)
			}
		})
	}
}
