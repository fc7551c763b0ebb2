package netstatus

import (
	"encoding/json"
	"fmt"

	current "github.com/containernetworking/cni/pkg/types/100"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"

	"github.com/plexus-cni/plexus/pkg/delegate"
)

// Build returns one entry per sandbox interface of every attachment, in
// attachment order. Only interfaces with a sandbox count (spec 5.3.3.1);
// an attachment whose result lists no sandbox interface gets one entry named
// by its requested ifname with all its IPs. Exactly one entry (the default
// network's first sandbox interface, or its requested ifname) has
// default: true.
func Build(outcomes []delegate.Outcome) ([]nadv1.NetworkStatus, error) {
	var out []nadv1.NetworkStatus
	for _, o := range outcomes {
		res, err := delegate.AsCurrent(o.Result)
		if err != nil {
			return nil, fmt.Errorf("network %q: %w", o.Spec.Network, err)
		}
		out = append(out, entries(o.Spec, res)...)
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
		for _, ipc := range res.IPs {
			if ipc != nil && ipc.Gateway != nil {
				st.Gateway = append(st.Gateway, ipc.Gateway.String())
			}
		}
	}
	return st
}

// Marshal encodes a status list the way it is stored in the annotation.
func Marshal(st []nadv1.NetworkStatus) ([]byte, error) {
	return json.Marshal(st)
}
