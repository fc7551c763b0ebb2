package netselect

import (
	"errors"
	"strings"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/plexus-cni/plexus/pkg/podref"
)

// SelectionError reports why network selection failed, naming the pod, the
// selection element and the field at fault. It reads like
//
//	pod "ns/p": networks[1] "macvlan-conf": field "mac": invalid MAC address "zz"
type SelectionError struct {
	// Pod is "namespace/name", or "" when no pod is involved.
	Pod string
	// Element names the reference at fault, e.g. `networks[1] "macvlan-conf"`,
	// `v1.multus-cni.io/default-network`, `clusterNetwork`, or
	// `NetworkAttachmentDefinition "ns/name"`.
	Element string
	// Field is the field inside the element, e.g. "interface", "ips[0]",
	// "mac", "namespace", "spec.config: plugins[1].type"; "" if none.
	Field string
	// Reason says what is wrong, in words.
	Reason string
	// Err is the underlying error, if any.
	Err error
	// Transient is true only when a NADGetter failed with something other
	// than podref.ErrNotFound (API trouble): retrying may help. Everything else is
	// bad input.
	Transient bool
}

// Error implements error. The cause (Err) is appended after the reason,
// except for not-found causes, which the reason already states.
func (e *SelectionError) Error() string {
	var b strings.Builder
	sep := func() {
		if b.Len() > 0 {
			b.WriteString(": ")
		}
	}
	if e.Pod != "" {
		b.WriteString(`pod "` + e.Pod + `"`)
	}
	if e.Element != "" {
		sep()
		b.WriteString(e.Element)
	}
	if e.Field != "" {
		sep()
		b.WriteString(`field "` + e.Field + `"`)
	}
	if e.Reason != "" {
		sep()
		b.WriteString(e.Reason)
	}
	if e.Err != nil && (e.Reason == "" || !errors.Is(e.Err, podref.ErrNotFound)) {
		sep()
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *SelectionError) Unwrap() error { return e.Err }

// CNICode returns the CNI error code for the failure: 11 ("try again later")
// for a transient NAD lookup failure, 7 ("invalid network config") otherwise.
func (e *SelectionError) CNICode() uint {
	if e.Transient {
		return types.ErrTryAgainLater
	}
	return types.ErrInvalidNetworkConfig
}
