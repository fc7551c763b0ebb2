package netstatus

import (
	"encoding/json"
	"fmt"

	current "github.com/containernetworking/cni/pkg/types/100"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"

	"github.com/plexus-cni/plexus/pkg/delegate"
)

// DeviceInfoFunc returns an attachment's device-info (device-info spec
// v1.1.0), or nil if it has none. The caller supplies it (reading the file
// named by Spec.DeviceInfoFile, see devices.ReadDeviceInfo) so this package
// stays free of I/O.
type DeviceInfoFunc func(delegate.Spec) (*nadv1.DeviceInfo, error)

// Build returns one entry per sandbox interface of every attachment, in
// attachment order. Only interfaces with a sandbox count (spec 5.3.3.1);
// an attachment whose result lists no sandbox interface gets one entry named
// by its requested ifname with all its IPs, and none at all if it has no IPs
// either (a passthru chain that only tunes the pod: nothing to show, as
// Multus shows nothing), unless it is the default network. Exactly one entry (the default
// network's first sandbox interface, or its requested ifname) has
// default: true. Every entry of an attachment carries its device-info, as
// the NAD client's CreateNetworkStatuses does; devInfo may be nil.
func Build(outcomes []delegate.Outcome, devInfo DeviceInfoFunc) ([]nadv1.NetworkStatus, error) {
	var out []nadv1.NetworkStatus
	for _, o := range outcomes {
		res, err := delegate.AsCurrent(o.Result)
		if err != nil {
			return nil, fmt.Errorf("network %q: %w", o.Spec.Network, err)
		}
		es := entries(o.Spec, res)
		if devInfo != nil {
			di, err := devInfo(o.Spec)
			if err != nil {
				return nil, fmt.Errorf("network %q (%s): device-info: %w", o.Spec.Network, o.Spec.IfName, err)
			}
			for i := range es {
				es[i].DeviceInfo = di
			}
		}
		out = append(out, es...)
	}
	return out, nil
}

func entries(s delegate.Spec, res *current.Result) []nadv1.NetworkStatus {
	var out []nadv1.NetworkStatus
	for idx, iface := range res.Interfaces {
		if iface == nil || iface.Sandbox == "" {
			continue
		}
		st := base(s, res)
		st.Interface = iface.Name
		if st.Interface == "" {
			st.Interface = s.IfName
		}
		st.Mac = iface.Mac
		st.Mtu = iface.Mtu
		for _, ipc := range res.IPs {
			if ipc != nil && ipc.Interface != nil && *ipc.Interface == idx && ipc.Address.IP != nil {
				st.IPs = append(st.IPs, ipc.Address.IP.String())
			}
		}
		out = append(out, st)
	}
	if len(out) == 0 {
		if !s.Default && !hasIP(res) {
			return nil
		}
		st := base(s, res)
		st.Interface = s.IfName
		for _, ipc := range res.IPs {
			if ipc != nil && ipc.Address.IP != nil {
				st.IPs = append(st.IPs, ipc.Address.IP.String())
			}
		}
		out = append(out, st)
	}
	if s.Default {
		// Prefer the interface the runtime asked for; else the first.
		mark := 0
		for i := range out {
			if out[i].Interface == s.IfName {
				mark = i
				break
			}
		}
		out[mark].Default = true
	}
	return out
}

func hasIP(res *current.Result) bool {
	for _, ipc := range res.IPs {
		if ipc != nil && ipc.Address.IP != nil {
			return true
		}
	}
	return false
}

func base(s delegate.Spec, res *current.Result) nadv1.NetworkStatus {
	st := nadv1.NetworkStatus{
		Name: s.Network,
		DNS: nadv1.DNS{
			Nameservers: res.DNS.Nameservers,
			Domain:      res.DNS.Domain,
			Search:      res.DNS.Search,
			Options:     res.DNS.Options,
		},
	}
	switch {
	case len(s.DefaultRoute) > 0:
		st.Gateway = append(st.Gateway, s.DefaultRoute...)
	case s.Default:
		st.Gateway = defaultGateways(res)
	}
	return st
}

// Marshal encodes a status list the way it is stored in the annotation.
func Marshal(st []nadv1.NetworkStatus) ([]byte, error) {
	return json.Marshal(st)
}

// defaultGateways are the gateways of the result's default routes (0.0.0.0/0
// or ::/0): the route's own gw, else the gateway of an address of the same
// family. A default route moved away by default-route handling is no
// longer in the result, so its gateway is not reported either.
func defaultGateways(res *current.Result) []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range res.Routes {
		if r == nil || r.Dst.IP == nil {
			continue
		}
		if ones, _ := r.Dst.Mask.Size(); ones != 0 || !r.Dst.IP.IsUnspecified() {
			continue
		}
		v4 := r.Dst.IP.To4() != nil
		gw := r.GW
		if gw == nil {
			for _, ipc := range res.IPs {
				if ipc != nil && ipc.Gateway != nil && (ipc.Gateway.To4() != nil) == v4 {
					gw = ipc.Gateway
					break
				}
			}
		}
		if gw != nil && !seen[gw.String()] {
			seen[gw.String()] = true
			out = append(out, gw.String())
		}
	}
	return out
}
