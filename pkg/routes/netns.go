package routes

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func (f family) netlink() int {
	if f == v4 {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}

// defaultRoutes lists the unicast default routes of f in the main table of
// the current netns. Both forms count: no destination (older netlink) and
// 0.0.0.0/0 or ::/0 (netlink >= 1.2; multus-cni#1444). Blackhole and
// unreachable defaults are policy, not a path through an interface, and
// are left alone.
func defaultRoutes(f family) ([]netlink.Route, error) {
	all, err := netlinksafe.RouteList(nil, f.netlink())
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	var out []netlink.Route
	for _, r := range all {
		if r.Type != unix.RTN_UNICAST || !isDefaultDst(r.Dst, f) {
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

// isRequested reports whether r is exactly "default via gw dev link".
func isRequested(r *netlink.Route, linkIndex int, gw net.IP) bool {
	return len(r.MultiPath) == 0 && r.LinkIndex == linkIndex && r.Gw.Equal(gw)
}

// apply makes "default via req.GW dev req.IfName" the only default route
// of req's family in the current netns: every other default route of
// that family is deleted, including one on req.IfName via another gateway.
func apply(req request) error {
	link, err := netlinksafe.LinkByName(req.IfName)
	if err != nil {
		return fmt.Errorf("find interface: %w", err)
	}
	idx := link.Attrs().Index
	routes, err := defaultRoutes(req.Family)
	if err != nil {
		return err
	}
	kept := false
	for i := range routes {
		r := &routes[i]
		if !kept && isRequested(r, idx, req.GW) {
			kept = true
			continue
		}
		if err = netlink.RouteDel(r); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("delete %s: %w", describe(r, nil), err)
		}
	}
	if kept {
		return nil
	}
	add := &netlink.Route{LinkIndex: idx, Gw: req.GW, Scope: netlink.SCOPE_UNIVERSE}
	if err = netlink.RouteAdd(add); err != nil && !errors.Is(err, syscall.EEXIST) {
		return fmt.Errorf("add default via %s dev %s: %w", req.GW, req.IfName, err)
	}
	return nil
}

// verify checks that "default via req.GW dev req.IfName" is the only
// default route of req's family in the current netns.
func verify(req request) error {
	link, err := netlinksafe.LinkByName(req.IfName)
	if err != nil {
		return fmt.Errorf("find interface: %w", err)
	}
	routes, err := defaultRoutes(req.Family)
	if err != nil {
		return err
	}
	if len(routes) == 1 && isRequested(&routes[0], link.Attrs().Index, req.GW) {
		return nil
	}
	names := linkNames()
	found := make([]string, 0, len(routes))
	for i := range routes {
		found = append(found, describe(&routes[i], names))
	}
	if len(found) == 0 {
		found = append(found, "none")
	}
	return fmt.Errorf("%w: want exactly one default via %s dev %s, found %s", ErrNotApplied, req.GW, req.IfName, strings.Join(found, "; "))
}

// linkNames maps interface indexes to names for error messages; on failure
// the messages fall back to indexes.
func linkNames() map[int]string {
	links, err := netlinksafe.LinkList()
	if err != nil {
		return nil
	}
	m := make(map[int]string, len(links))
	for _, l := range links {
		m[l.Attrs().Index] = l.Attrs().Name
	}
	return m
}

// describe renders r like `ip route` does.
func describe(r *netlink.Route, names map[int]string) string {
	dev := func(i int) string {
		if n, ok := names[i]; ok {
			return n
		}
		return fmt.Sprintf("if%d", i)
	}
	var b strings.Builder
	b.WriteString("default")
	if len(r.MultiPath) > 0 {
		for _, nh := range r.MultiPath {
			fmt.Fprintf(&b, " nexthop via %s dev %s", nh.Gw, dev(nh.LinkIndex))
		}
	} else {
		if r.Gw != nil {
			fmt.Fprintf(&b, " via %s", r.Gw)
		}
		fmt.Fprintf(&b, " dev %s", dev(r.LinkIndex))
	}
	if r.Priority != 0 {
		fmt.Fprintf(&b, " metric %d", r.Priority)
	}
	return b.String()
}
