// Package podref is pod identity and the contract of a pod source: what
// the store records, what resolution reads and what the Kubernetes and
// manifest sources return. It is a leaf: it imports nothing of Plexus and
// nothing of libcni or Kubernetes, so the sources link neither the
// delegate chain nor libcni through it.
package podref

import "errors"

// Ref identifies the pod a sandbox belongs to.
type Ref struct {
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
	UID       string `json:"uid,omitempty"`
}

// String returns "namespace/name".
func (r Ref) String() string { return r.Namespace + "/" + r.Name }

// Pod is what resolution needs of a pod.
type Pod struct {
	Namespace   string
	Name        string
	UID         string
	Annotations map[string]string
	// ResourceClaims maps the pod's resource claim names (spec.
	// resourceClaims) to their ResourceClaim objects' names, as far as
	// known (status.resourceClaimStatuses; "" while not yet generated).
	ResourceClaims map[string]string
}

// ErrUnknown is returned by a pod source when the API has no such pod and
// never had it (the sandbox gets an empty result, as in Multus).
var ErrUnknown = errors.New("pod unknown to the API")

// ErrNotFound is wrapped by a source's NAD lookup (and a conf lookup) when
// the object does not exist.
var ErrNotFound = errors.New("not found")
