package routes

import (
	"errors"
	"net"
	"testing"

	"github.com/plexus-cni/plexus/pkg/delegate"
)

func TestRequests(t *testing.T) {
	t.Parallel()
	spec := func(ifName string, gws ...string) delegate.Spec {
		return delegate.Spec{Network: "ns/" + ifName, IfName: ifName, DefaultRoute: gws}
	}
	tests := []struct {
		name    string
		specs   []delegate.Spec
		want    []request
		wantErr error
	}{
		{name: "no spec asks", specs: []delegate.Spec{spec("eth0"), spec("net1")}},
		{name: "empty list keeps the plugins' routes", specs: []delegate.Spec{spec("eth0"), spec("net1", []string{}...)}},
		{
			name:  "one IPv4 gateway",
			specs: []delegate.Spec{spec("eth0"), spec("net1", "192.168.10.254")},
			want:  []request{{IfName: "net1", Family: v4, GW: net.ParseIP("192.168.10.254")}},
		},
		{
			name:  "IPv4 and IPv6 on one interface",
			specs: []delegate.Spec{spec("net1", "10.0.0.1", "fd00::1")},
			want:  []request{{IfName: "net1", Family: v4, GW: net.ParseIP("10.0.0.1")}, {IfName: "net1", Family: v6, GW: net.ParseIP("fd00::1")}},
		},
		{
			name:  "IPv4 and IPv6 on two interfaces",
			specs: []delegate.Spec{spec("eth0"), spec("net1", "10.0.0.1"), spec("net2", "fd00:10::1")},
			want:  []request{{IfName: "net1", Family: v4, GW: net.ParseIP("10.0.0.1")}, {IfName: "net2", Family: v6, GW: net.ParseIP("fd00:10::1")}},
		},
		{name: "two IPv4 gateways", specs: []delegate.Spec{spec("net1", "10.0.0.1"), spec("net2", "10.0.1.1")}, wantErr: ErrConflict},
		{name: "not an IP", specs: []delegate.Spec{spec("net1", "gateway")}, wantErr: ErrBadGateway},
		{name: "a CIDR is not a gateway", specs: []delegate.Spec{spec("net1", "10.0.0.1/24")}, wantErr: ErrBadGateway},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := requests(tc.specs)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i].IfName != tc.want[i].IfName || got[i].Family != tc.want[i].Family || !got[i].GW.Equal(tc.want[i].GW) {
					t.Errorf("[%d] = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestErrorNamesNetnsInterfaceFamily(t *testing.T) {
	t.Parallel()
	err := error(&Error{Netns: "/run/netns/pod", IfName: "net1", Family: "IPv6", Op: "check", Err: ErrNotApplied})
	want := `default-route IPv6 on "net1" in netns /run/netns/pod: check: default route not as requested`
	if err.Error() != want {
		t.Errorf("got %q, want %q", err, want)
	}
	if !errors.Is(err, ErrNotApplied) {
		t.Error("Error does not unwrap")
	}
}
