package routes

import (
	"fmt"
	"net"

	"github.com/plexus-cni/plexus/pkg/delegate"
)

// family is an IP family: 4 or 6.
type family int

const (
	v4 family = 4
	v6 family = 6
)

func (f family) String() string { return fmt.Sprintf("IPv%d", int(f)) }

// zero is the family's default destination, 0.0.0.0/0 or ::/0.
func (f family) zero() net.IPNet {
	if f == v4 {
		return net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}
	}
	return net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
}

func familyOf(ip net.IP) family {
	if ip.To4() != nil {
		return v4
	}
	return v6
}

// request is one default route the selection asked for.
type request struct {
	IfName string
	Family family
	GW     net.IP
}

// requests collects the default routes asked for by specs, at most one per
// family (pkg/netselect enforces that already; a conflict here is a bug
// upstream, not something to resolve silently). An empty DefaultRoute list
// means "keep what the plugin set" and asks for nothing.
func requests(specs []delegate.Spec) ([]request, error) {
	var out []request
	seen := map[family]string{}
	for _, s := range specs {
		for _, g := range s.DefaultRoute {
			gw := net.ParseIP(g)
			if gw == nil {
				return nil, &Error{IfName: s.IfName, Op: "parse", Err: fmt.Errorf("%w: %q", ErrBadGateway, g)}
			}
			f := familyOf(gw)
			if gw.To4() != nil {
				gw = gw.To4()
			}
			if other, dup := seen[f]; dup {
				return nil, &Error{IfName: s.IfName, Family: f.String(), Op: "parse", Err: fmt.Errorf("%w: %s also requested on %q", ErrConflict, g, other)}
			}
			seen[f] = s.IfName
			out = append(out, request{IfName: s.IfName, Family: f, GW: gw})
		}
	}
	return out, nil
}
