package delegate

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
)

// RequestNotHonoredError says a delegate ignored a requested IP or MAC
// (NPWG spec 4.1.2.1.3: the implementation must verify them in the result
// and fail the attachment otherwise).
type RequestNotHonoredError struct {
	Network, IfName, Field, Want, Got string
}

func (e *RequestNotHonoredError) Error() string {
	return fmt.Sprintf("network %q (%s) did not honour the requested %s %s (result has %s)", e.Network, e.IfName, e.Field, e.Want, e.Got)
}

// CNICode is 7: the network's config does not do what the pod asked.
func (e *RequestNotHonoredError) CNICode() uint { return types.ErrInvalidNetworkConfig }

// VerifyRequested checks every outcome's result against the ips and mac
// its selection requested.
func VerifyRequested(outcomes []Outcome) error {
	var errs []error
	for _, o := range outcomes {
		if o.Spec.CapabilityArgs == nil {
			continue
		}
		res, err := AsCurrent(o.Result)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var got []string
		have := map[netip.Addr]bool{}
		for _, ipc := range res.IPs {
			if ipc == nil || ipc.Address.IP == nil {
				continue
			}
			if a, ok := netip.AddrFromSlice(ipc.Address.IP); ok {
				have[a.Unmap()] = true
				got = append(got, a.Unmap().String())
			}
		}
		for _, want := range stringList(o.Spec.CapabilityArgs["ips"]) {
			a, err := parseAddr(want)
			if err != nil || !have[a] {
				errs = append(errs, &RequestNotHonoredError{Network: o.Spec.Network, IfName: o.Spec.IfName, Field: "ips", Want: want, Got: "[" + strings.Join(got, " ") + "]"})
			}
		}
		if mac, ok := o.Spec.CapabilityArgs["mac"].(string); ok && mac != "" {
			gotMAC := ""
			for _, i := range res.Interfaces {
				if i != nil && i.Sandbox != "" && i.Name == o.Spec.IfName {
					gotMAC = i.Mac
				}
			}
			if !sameMAC(mac, gotMAC) {
				errs = append(errs, &RequestNotHonoredError{Network: o.Spec.Network, IfName: o.Spec.IfName, Field: "mac", Want: mac, Got: fmt.Sprintf("%q", gotMAC)})
			}
		}
	}
	return errors.Join(errs...)
}

func parseAddr(s string) (netip.Addr, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Addr().Unmap(), nil
	}
	a, err := netip.ParseAddr(s)
	return a.Unmap(), err
}

func sameMAC(a, b string) bool {
	ma, err1 := net.ParseMAC(a)
	mb, err2 := net.ParseMAC(b)
	return err1 == nil && err2 == nil && ma.String() == mb.String()
}

// stringList reads a capability value that is []string in memory and
// []interface{} after a trip through JSON (the attachment record).
func stringList(v interface{}) []string {
	switch l := v.(type) {
	case []string:
		return l
	case []interface{}:
		var out []string
		for _, x := range l {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
