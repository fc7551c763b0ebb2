package routes

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/plexus-cni/plexus/internal/testutil"
	"github.com/plexus-cni/plexus/pkg/delegate"
)

// podNS builds a throwaway pod netns with one veth per name (the peer
// stays in the netns), each up with its address.
func podNS(t *testing.T, addrs map[string]string) ns.NetNS {
	t.Helper()
	pod, err := testutils.NewNS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pod.Close()
		_ = testutils.UnmountNS(pod)
	})
	err = pod.Do(func(ns.NetNS) error {
		for name, cidr := range addrs {
			if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"}); err != nil {
				return fmt.Errorf("add %s: %w", name, err)
			}
			for _, n := range []string{name, name + "p"} {
				l, err := netlinksafe.LinkByName(n)
				if err != nil {
					return err
				}
				if err := netlink.LinkSetUp(l); err != nil {
					return err
				}
			}
			l, err := netlinksafe.LinkByName(name)
			if err != nil {
				return err
			}
			a, err := netlink.ParseAddr(cidr)
			if err != nil {
				return err
			}
			a.Flags = unix.IFA_F_NODAD
			if err := netlink.AddrAdd(l, a); err != nil {
				return fmt.Errorf("address %s on %s: %w", cidr, name, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pod
}

// ipRoute runs `ip route <args>` inside the netns (test setup only).
func ipRoute(t *testing.T, pod ns.NetNS, args string) {
	t.Helper()
	err := pod.Do(func(ns.NetNS) error {
		f := strings.Fields(args)
		r := &netlink.Route{}
		for i := 0; i < len(f); i += 2 {
			switch f[i] {
			case "via":
				r.Gw = net.ParseIP(f[i+1])
			case "dev":
				l, err := netlinksafe.LinkByName(f[i+1])
				if err != nil {
					return err
				}
				r.LinkIndex = l.Attrs().Index
			case "metric":
				_, _ = fmt.Sscan(f[i+1], &r.Priority)
			case "dst":
				_, d, err := net.ParseCIDR(f[i+1])
				if err != nil {
					return err
				}
				r.Dst = d
			case "blackhole":
				r.Type = unix.RTN_BLACKHOLE
				z := v4.zero()
				r.Dst = &z
			}
		}
		return netlink.RouteAdd(r)
	})
	if err != nil {
		t.Fatalf("route add %s: %v", args, err)
	}
}

// defaults lists the netns's default routes of both families, rendered.
func defaults(t *testing.T, pod ns.NetNS) []string {
	t.Helper()
	var out []string
	err := pod.Do(func(ns.NetNS) error {
		names := linkNames()
		for _, f := range []family{v4, v6} {
			all, err := netlinksafe.RouteList(nil, f.netlink())
			if err != nil {
				return err
			}
			for i := range all {
				if isDefaultDst(all[i].Dst, f) {
					s := describe(&all[i], names)
					if all[i].Type == unix.RTN_BLACKHOLE {
						s = "blackhole " + s
					}
					out = append(out, s)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// Dual stack in a real netns: eth0's IPv4 default and net1's (given in the
// 0.0.0.0/0 form, with another metric) and net3's IPv6 default are removed;
// net1 gets the IPv4 default and net2 the IPv6 one; a blackhole default is
// policy and stays. CHECK passes, then fails once the route is gone or
// doubled.
func TestFixerRealNetns(t *testing.T) {
	testutil.RequireRoot(t)
	pod := podNS(t, map[string]string{
		"eth0": "10.88.0.5/16", "net1": "192.168.10.5/24", "net2": "fd00:10::5/64", "net3": "fd00:20::5/64",
	})
	ipRoute(t, pod, "via 10.88.0.1 dev eth0")
	ipRoute(t, pod, "dst 0.0.0.0/0 via 192.168.10.1 dev net1 metric 200")
	ipRoute(t, pod, "via fd00:20::1 dev net3")
	ipRoute(t, pod, "blackhole x metric 4000")
	specs := []delegate.Spec{
		{Network: "cluster", IfName: "eth0", Default: true},
		{Network: "ns/v4", IfName: "net1", DefaultRoute: []string{"192.168.10.254"}},
		{Network: "ns/v6", IfName: "net2", DefaultRoute: []string{"fd00:10::1"}},
		{Network: "ns/other6", IfName: "net3"},
	}
	outcomes := make([]delegate.Outcome, len(specs))
	for i := range specs {
		outcomes[i] = delegate.Outcome{Spec: specs[i]}
	}
	tgt := delegate.Target{ContainerID: "c", Netns: pod.Path()}
	f := New(nil)
	if _, err := f.Apply(context.Background(), tgt, outcomes); err != nil {
		t.Fatal(err)
	}
	want := []string{"blackhole default dev if0 metric 4000", "default via 192.168.10.254 dev net1", "default via fd00:10::1 dev net2 metric 1024"}
	if got := defaults(t, pod); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("default routes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if err := f.Check(context.Background(), tgt, specs); err != nil {
		t.Errorf("CHECK after ADD: %v", err)
	}
	// Idempotent: a second run changes nothing.
	if _, err := f.Apply(context.Background(), tgt, outcomes); err != nil {
		t.Fatal(err)
	}
	if got := defaults(t, pod); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("second Apply changed routes: %v", got)
	}

	ipRoute(t, pod, "via 10.88.0.1 dev eth0 metric 50")
	err := f.Check(context.Background(), tgt, specs)
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrNotApplied) || e.IfName != "net1" || e.Family != "IPv4" || e.Netns != pod.Path() ||
		!strings.Contains(err.Error(), "default via 10.88.0.1 dev eth0 metric 50") || !strings.Contains(err.Error(), "found default via 192.168.10.254 dev net1;") {
		t.Errorf("CHECK with two IPv4 defaults: %v", err)
	}

	err = pod.Do(func(ns.NetNS) error {
		rs, err := defaultRoutes(v6)
		if err != nil {
			return err
		}
		for i := range rs {
			if err := netlink.RouteDel(&rs[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = f.Check(context.Background(), tgt, specs)
	if !errors.Is(err, ErrNotApplied) || !strings.Contains(err.Error(), `IPv6 on "net2"`) || !strings.Contains(err.Error(), "found none") {
		t.Errorf("CHECK without an IPv6 default: %v", err)
	}
}

// A gateway outside every subnet cannot be installed: the ADD fails with
// an error naming the interface, family and netns.
func TestFixerUnreachableGateway(t *testing.T) {
	testutil.RequireRoot(t)
	pod := podNS(t, map[string]string{"net1": "192.168.10.5/24"})
	out := []delegate.Outcome{{Spec: delegate.Spec{Network: "ns/v4", IfName: "net1", DefaultRoute: []string{"172.16.0.1"}}}}
	_, err := New(nil).Apply(context.Background(), delegate.Target{Netns: pod.Path()}, out)
	var e *Error
	if !errors.As(err, &e) || e.IfName != "net1" || e.Family != "IPv4" || e.Netns != pod.Path() || e.Op != "apply" {
		t.Errorf("got %v", err)
	}
	_, err = New(nil).Apply(context.Background(), delegate.Target{Netns: "/nonexistent"}, out)
	if !errors.As(err, &e) || e.Netns != "/nonexistent" || e.Op != "enter netns" {
		t.Errorf("missing netns: %v", err)
	}
}
