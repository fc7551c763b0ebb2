package devices

import (
	"errors"
	"strings"
)

// ErrPodNotListed is wrapped when the kubelet's PodResources API does not
// know the pod.
var ErrPodNotListed = errors.New("the kubelet's PodResources API does not list the pod")

// Error is a failure to give an attachment its device. It reads like
//
//	pod "ns/a": network "ns/vf-net" (net3): resource "example.com/vf": more attachments than devices: …
type Error struct {
	// Pod is "namespace/name", or "" without K8S_POD_* args.
	Pod string
	// Network and IfName name the attachment; "" when the failure concerns
	// the pod as a whole (e.g. the kubelet call).
	Network string
	IfName  string
	// Resource is the device-plugin resource name, if one is concerned.
	Resource string
	// Reason says what went wrong, in words.
	Reason string
	// Code is the CNI error code.
	Code uint
	// Err is the underlying error, if any.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	var parts []string
	if e.Pod != "" {
		parts = append(parts, `pod "`+e.Pod+`"`)
	}
	if e.Network != "" {
		n := `network "` + e.Network + `"`
		if e.IfName != "" {
			n += " (" + e.IfName + ")"
		}
		parts = append(parts, n)
	}
	if e.Resource != "" {
		parts = append(parts, `resource "`+e.Resource+`"`)
	}
	if e.Reason != "" {
		parts = append(parts, e.Reason)
	}
	if e.Err != nil {
		parts = append(parts, e.Err.Error())
	}
	return strings.Join(parts, ": ")
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// CNICode is the CNI error code the daemon returns for the failure.
func (e *Error) CNICode() uint { return e.Code }
