package routes

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/types/create"

	"github.com/plexus-cni/plexus/pkg/delegate"
)

func mustCIDR(t *testing.T, s string) net.IPNet {
	t.Helper()
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		t.Fatal(err)
	}
	return *n
}

// routeStrings renders routes as "dst via gw" for comparison.
func routeStrings(rs []*types.Route) []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		s := r.Dst.String()
		if r.GW != nil {
			s += " via " + r.GW.String()
		}
		out = append(out, s)
	}
	return out
}

func TestRewriteRoutes(t *testing.T) {
	t.Parallel()
	rt := func(dst, gw string) *types.Route {
		r := &types.Route{Dst: mustCIDR(t, dst)}
		if gw != "" {
			r.GW = net.ParseIP(gw)
		}
		return r
	}
	req4 := request{IfName: "net1", Family: v4, GW: net.ParseIP("192.168.10.254").To4()}
	req6 := request{IfName: "net2", Family: v6, GW: net.ParseIP("fd00:10::1")}
	tests := []struct {
		name        string
		ifName      string
		reqs        []request
		routes      []*types.Route
		want        []string
		wantChanged bool
	}{
		{
			name: "other interface loses its IPv4 default, keeps the rest", ifName: "eth0", reqs: []request{req4},
			routes:      []*types.Route{rt("0.0.0.0/0", "10.88.0.1"), rt("10.96.0.0/12", "10.88.0.1"), rt("::/0", "fd00::1")},
			want:        []string{"10.96.0.0/12 via 10.88.0.1", "::/0 via fd00::1"},
			wantChanged: true,
		},
		{
			name: "a default without gateway goes too", ifName: "eth0", reqs: []request{req4},
			routes:      []*types.Route{rt("0.0.0.0/0", "")},
			want:        []string{},
			wantChanged: true,
		},
		{
			name: "0.0.0.0/8 is not a default", ifName: "eth0", reqs: []request{req4},
			routes: []*types.Route{rt("0.0.0.0/8", "10.88.0.1")},
			want:   []string{"0.0.0.0/8 via 10.88.0.1"},
		},
		{
			name: "requesting interface gains the default", ifName: "net1", reqs: []request{req4},
			routes:      []*types.Route{rt("192.168.0.0/16", "192.168.10.1")},
			want:        []string{"192.168.0.0/16 via 192.168.10.1", "0.0.0.0/0 via 192.168.10.254"},
			wantChanged: true,
		},
		{
			name: "requesting interface already has it", ifName: "net1", reqs: []request{req4},
			routes: []*types.Route{rt("0.0.0.0/0", "192.168.10.254")},
			want:   []string{"0.0.0.0/0 via 192.168.10.254"},
		},
		{
			name: "requesting interface's default via another gateway is replaced", ifName: "net1", reqs: []request{req4},
			routes:      []*types.Route{rt("0.0.0.0/0", "192.168.10.1")},
			want:        []string{"0.0.0.0/0 via 192.168.10.254"},
			wantChanged: true,
		},
		{
			name: "a duplicate of the requested default is dropped", ifName: "net1", reqs: []request{req4},
			routes:      []*types.Route{rt("0.0.0.0/0", "192.168.10.254"), rt("0.0.0.0/0", "192.168.10.254")},
			want:        []string{"0.0.0.0/0 via 192.168.10.254"},
			wantChanged: true,
		},
		{
			name: "dual stack: IPv6 default leaves the IPv4 requester", ifName: "net1", reqs: []request{req4, req6},
			routes:      []*types.Route{rt("::/0", "fd00:1::1")},
			want:        []string{"0.0.0.0/0 via 192.168.10.254"},
			wantChanged: true,
		},
		{
			name: "dual stack: IPv6 requester keeps nothing of IPv4, gains ::/0", ifName: "net2", reqs: []request{req4, req6},
			routes:      []*types.Route{rt("0.0.0.0/0", "10.0.0.1"), rt("fd00:20::/64", "fd00:10::2")},
			want:        []string{"fd00:20::/64 via fd00:10::2", "::/0 via fd00:10::1"},
			wantChanged: true,
		},
		{
			name: "unrequested family untouched", ifName: "eth0", reqs: []request{req6},
			routes: []*types.Route{rt("0.0.0.0/0", "10.88.0.1")},
			want:   []string{"0.0.0.0/0 via 10.88.0.1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			before := strings.Join(routeStrings(tc.routes), ",")
			got, changed := rewriteRoutes(tc.routes, tc.ifName, tc.reqs)
			if g, w := strings.Join(routeStrings(got), ","), strings.Join(tc.want, ","); g != w {
				t.Errorf("routes %q, want %q", g, w)
			}
			if changed != tc.wantChanged {
				t.Errorf("changed %v, want %v", changed, tc.wantChanged)
			}
			if after := strings.Join(routeStrings(tc.routes), ","); after != before {
				t.Errorf("input modified: %q → %q", before, after)
			}
		})
	}
}

// A result keeps its CNI version through the rewrite, so libcni hands the
// delegate a prevResult in the version it expects.
func TestRewriteResultKeepsVersion(t *testing.T) {
	t.Parallel()
	req := request{IfName: "net1", Family: v4, GW: net.ParseIP("192.168.10.254").To4()}
	for _, ver := range []string{"0.3.1", "0.4.0", "1.0.0", "1.1.0"} {
		t.Run(ver, func(t *testing.T) {
			t.Parallel()
			raw := `{"cniVersion":"` + ver + `","interfaces":[{"name":"eth0","sandbox":"/run/netns/p"}],` +
				`"ips":[{"interface":0,"address":"10.88.0.5/16","gateway":"10.88.0.1"}],` +
				`"routes":[{"dst":"0.0.0.0/0","gw":"10.88.0.1"},{"dst":"10.96.0.0/12"}]}`
			res, err := create.CreateFromBytes([]byte(raw))
			if err != nil {
				t.Fatal(err)
			}
			got, changed, err := rewriteResult(res, "eth0", []request{req})
			if err != nil || !changed {
				t.Fatalf("changed %v, err %v", changed, err)
			}
			if got.Version() != ver {
				t.Errorf("version %s, want %s", got.Version(), ver)
			}
			cur, err := delegate.AsCurrent(got)
			if err != nil {
				t.Fatal(err)
			}
			if rs := strings.Join(routeStrings(cur.Routes), ","); rs != "10.96.0.0/12" {
				t.Errorf("routes %q, want only 10.96.0.0/12", rs)
			}
			if len(cur.IPs) != 1 || cur.IPs[0].Address.String() != "10.88.0.5/16" {
				t.Errorf("IPs changed: %v", cur.IPs)
			}
			orig, _ := delegate.AsCurrent(res)
			if len(orig.Routes) != 2 {
				t.Errorf("input result modified: %v", orig.Routes)
			}
		})
	}
	t.Run("nil result", func(t *testing.T) {
		t.Parallel()
		got, changed, err := rewriteResult(nil, "net1", []request{req})
		if got != nil || changed || err != nil {
			t.Errorf("got %v %v %v", got, changed, err)
		}
	})
}

// Without a default-route request Apply returns the outcomes as they
// are and never enters the netns (the path does not exist).
func TestApplyWithoutRequestIsNoop(t *testing.T) {
	t.Parallel()
	res := &current.Result{CNIVersion: "1.0.0", Routes: []*types.Route{{Dst: mustCIDR(t, "0.0.0.0/0"), GW: net.ParseIP("10.88.0.1")}}}
	in := []delegate.Outcome{
		{Spec: delegate.Spec{Network: "cluster", IfName: "eth0", Default: true}, Result: res},
		{Spec: delegate.Spec{Network: "ns/mv", IfName: "net1", DefaultRoute: []string{}}},
	}
	t.Run("Apply", func(t *testing.T) {
		t.Parallel()
		out, err := NewWithCache("/nonexistent", nil).Apply(context.Background(), delegate.Target{ContainerID: "c", Netns: "/nonexistent/netns"}, in)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != 2 || out[0].Result != types.Result(res) {
			t.Errorf("outcomes changed: %v", out)
		}
	})
	t.Run("Check", func(t *testing.T) {
		t.Parallel()
		if err := New(nil).Check(context.Background(), delegate.Target{Netns: "/nonexistent/netns"}, []delegate.Spec{in[0].Spec, in[1].Spec}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestApplyBadRequestNamesNetns(t *testing.T) {
	t.Parallel()
	in := []delegate.Outcome{{Spec: delegate.Spec{Network: "ns/mv", IfName: "net1", DefaultRoute: []string{"nope"}}}}
	_, err := New(nil).Apply(context.Background(), delegate.Target{Netns: "/run/netns/pod"}, in)
	var e *Error
	if !errors.As(err, &e) || e.Netns != "/run/netns/pod" || e.IfName != "net1" {
		t.Errorf("error %v does not name netns and interface", err)
	}
}
