package delegate

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
)

// ErrNoDefault means no outcome is marked as the default network.
var ErrNoDefault = errors.New("no default network result")

// DefaultResult returns the default network's result converted to the
// runtime's cniVersion, encoded. The runtime (and kubelet) only use the
// default network's result; the other attachments appear in network-status
// (NPWG spec 5; Multus does the same).
func DefaultResult(outcomes []Outcome, cniVersion string) ([]byte, error) {
	for _, o := range outcomes {
		if !o.Spec.Default {
			continue
		}
		if o.Result == nil {
			return nil, fmt.Errorf("default network %q returned no result", o.Spec.Network)
		}
		res, err := o.Result.GetAsVersion(cniVersion)
		if err != nil {
			return nil, fmt.Errorf("convert result of %q to %s: %w", o.Spec.Network, cniVersion, err)
		}
		return json.Marshal(res)
	}
	return nil, ErrNoDefault
}

// EmptyResult is the result for a sandbox that gets no attachment (the pod
// is unknown to the API): the runtime's ifname, no IPs.
func EmptyResult(cniVersion, ifName string) ([]byte, error) {
	r := &current.Result{CNIVersion: current.ImplementedSpecVersion, Interfaces: []*current.Interface{{Name: ifName}}}
	res, err := r.GetAsVersion(cniVersion)
	if err != nil {
		return nil, err
	}
	return json.Marshal(res)
}

// AsCurrent converts any delegate result to the current (1.x) types.
func AsCurrent(r types.Result) (*current.Result, error) {
	if r == nil {
		return &current.Result{CNIVersion: current.ImplementedSpecVersion}, nil
	}
	return current.NewResultFromResult(r)
}
