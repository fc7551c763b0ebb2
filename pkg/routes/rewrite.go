package routes

import (
	"net"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/plexus-cni/plexus/pkg/delegate"
)

// isDefaultDst reports whether dst is the default destination of f. An
// unset destination counts: older results may carry one.
func isDefaultDst(dst *net.IPNet, f family) bool {
	if dst == nil || dst.IP == nil {
		return true
	}
	ones, _ := dst.Mask.Size()
	return ones == 0 && dst.IP.IsUnspecified() && familyOf(dst.IP) == f
}

// resultRouteFamily is the family of a result route: its destination's,
// or its gateway's when the destination is unset.
func resultRouteFamily(r *types.Route) (family, bool) {
	switch {
	case r.Dst.IP != nil:
		return familyOf(r.Dst.IP), true
	case r.GW != nil:
		return familyOf(r.GW), true
	}
	return 0, false
}

// rewriteRoutes returns the routes of the attachment on ifName with the
// requested default routes applied: for each requested family, a default
// route of that family is kept only on the requesting interface and only
// via the requested gateway (the first such route); one is added there if
// none is. The input is not modified. changed reports whether the routes
// differ.
func rewriteRoutes(routes []*types.Route, ifName string, reqs []request) (out []*types.Route, changed bool) {
	out = make([]*types.Route, 0, len(routes)+len(reqs))
	kept := map[family]bool{}
	for _, r := range routes {
		if r == nil {
			out = append(out, r)
			continue
		}
		f, ok := resultRouteFamily(r)
		req, asked := findRequest(reqs, f)
		if !ok || !asked || !isDefaultDst(&r.Dst, f) {
			out = append(out, r)
			continue
		}
		if req.IfName == ifName && r.GW.Equal(req.GW) && !kept[f] {
			kept[f] = true
			out = append(out, r)
			continue
		}
		changed = true // a default route of a requested family, dropped
	}
	for _, req := range reqs {
		if req.IfName == ifName && !kept[req.Family] {
			out = append(out, &types.Route{Dst: req.Family.zero(), GW: req.GW})
			changed = true
		}
	}
	return out, changed
}

func findRequest(reqs []request, f family) (request, bool) {
	for _, r := range reqs {
		if r.Family == f {
			return r, true
		}
	}
	return request{}, false
}

// rewriteResult applies reqs to one attachment's result and returns it in
// the result's own CNI version (the version libcni cached it in and hands
// back as prevResult). A nil result stays nil: there is nothing a later
// CHECK or DEL would compare. changed is false when nothing differs, and
// then res itself is returned.
func rewriteResult(res types.Result, ifName string, reqs []request) (types.Result, bool, error) {
	if res == nil {
		return nil, false, nil
	}
	cur, err := delegate.AsCurrent(res)
	if err != nil {
		return nil, false, err
	}
	routes, changed := rewriteRoutes(cur.Routes, ifName, reqs)
	if !changed {
		return res, false, nil
	}
	next := *cur // shallow copy: only Routes is replaced
	next.Routes = routes
	out, err := (&next).GetAsVersion(res.Version())
	if err != nil {
		return nil, false, err
	}
	return out, true, nil
}
