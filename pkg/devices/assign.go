package devices

import (
	"fmt"
	"slices"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/plexus-cni/plexus/pkg/delegate"
)

// Devices are the device IDs allocated to one pod, by resource name, in
// the order the kubelet reported them.
type Devices map[string][]string

// NeedsDevices reports whether any attachment names a resource.
func NeedsDevices(specs []delegate.Spec) bool {
	return slices.ContainsFunc(specs, func(s delegate.Spec) bool { return s.ResourceName != "" || s.ResourceClaim != "" })
}

// Assign hands out the pod's devices: the IDs of each resource are sorted
// (and deduplicated), and each attachment naming the resource, in
// attachment order, takes the first one no attachment took yet (a DRA
// device is listed both under its resource name and under its claim), so
// no two attachments share a device and the outcome does not depend on the
// kubelet's ordering. ids[i] is "" for a spec that names no resource. pod
// ("namespace/name") is used in errors only.
func Assign(pod string, specs []delegate.Spec, devs Devices) (ids []string, err error) {
	want := map[string]int{}
	for _, s := range specs {
		if r := resourceKey(s); r != "" {
			want[r]++
		}
	}
	pools := make(map[string][]string, len(want))
	for r := range want {
		pool := slices.Clone(devs[r])
		slices.Sort(pool)
		pools[r] = slices.Compact(pool)
	}
	ids = make([]string, len(specs))
	taken := map[string]bool{}
	for i, s := range specs {
		r := resourceKey(s)
		if r == "" {
			continue
		}
		pool := pools[r]
		if len(pool) == 0 {
			return nil, &Error{Pod: pod, Network: s.Network, IfName: s.IfName, Resource: r, Code: types.ErrInvalidNetworkConfig,
				Reason: fmt.Sprintf("the kubelet allocated no device of the resource to the pod: request it in a container's resources (limits %q: %d), or claim devices whose DRA driver publishes %s %q", r, want[r], AttrResourceName, r)}
		}
		j := slices.IndexFunc(pool, func(id string) bool { return !taken[id] })
		if j < 0 {
			return nil, &Error{Pod: pod, Network: s.Network, IfName: s.IfName, Resource: r, Code: types.ErrInvalidNetworkConfig,
				Reason: fmt.Sprintf("more attachments than devices: %d attachments use the resource, the kubelet allocated %d device(s) of it to the pod %v",
					want[r], len(pool), pool)}
		}
		ids[i] = pool[j]
		taken[pool[j]] = true
	}
	return ids, nil
}
