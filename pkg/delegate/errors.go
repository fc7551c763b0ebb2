package delegate

import (
	"errors"
	"fmt"

	"github.com/containernetworking/cni/pkg/types"
)

// PluginError says which delegate failed, in which verb, and keeps the
// delegate's CNI error code.
type PluginError struct {
	Network string
	IfName  string
	Op      string
	Err     error
	// Claim, when the attachment has a DRA device, names it and its
	// ResourceClaim.
	Claim *ClaimDevice
}

func (e *PluginError) Error() string {
	where := e.IfName
	if c := e.Claim; c != nil {
		where += fmt.Sprintf(", DRA device %s of ResourceClaim %s/%s", c.Device, c.Namespace, c.Name)
	}
	return fmt.Sprintf("delegate %q (%s) %s: %v", e.Network, where, e.Op, e.Err)
}

func (e *PluginError) Unwrap() error { return e.Err }

// CNICode is the delegate's own CNI error code when it returned one, else
// 100 (generic plugin failure).
func (e *PluginError) CNICode() uint {
	var te *types.Error
	if errors.As(e.Err, &te) && te.Code != 0 {
		return te.Code
	}
	return CodePluginFailed
}

// CodePluginFailed is used when a delegate failed without a CNI code.
const CodePluginFailed uint = 100
