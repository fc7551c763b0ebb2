package routes

import (
	"errors"
	"fmt"
)

var (
	// ErrNotApplied means CHECK found the pod's default routes differ from
	// what the selection asked for.
	ErrNotApplied = errors.New("default route not as requested")
	// ErrConflict means two gateways were requested for one IP family.
	ErrConflict = errors.New("more than one default-route gateway for one IP family")
	// ErrBadGateway means a default-route entry is not an IP address.
	ErrBadGateway = errors.New("default-route gateway is not an IP address")
	// ErrNoCachedResult means libcni's cached result for an attachment is
	// missing or has no "result" key, so it cannot be rewritten.
	ErrNoCachedResult = errors.New("no cached result")
)

// Error names the pod netns, interface and family a default-route step
// failed for.
type Error struct {
	Netns  string
	IfName string
	Family string // "IPv4" or "IPv6"; empty when not family specific
	Op     string // "apply", "check", "rewrite result", "rewrite cache"
	Err    error
}

func (e *Error) Error() string {
	fam := e.Family
	if fam == "" {
		fam = "any family"
	}
	return fmt.Sprintf("default-route %s on %q in netns %s: %s: %v", fam, e.IfName, e.Netns, e.Op, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }
