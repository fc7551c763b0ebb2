// Package k8sclient is all of Plexus's Kubernetes access: informer-backed
// pod and NAD lookups (the pod informer is filtered to this node and
// trimmed to what Plexus reads), the network-status patch, and Events.
// It holds adapters only: no annotation parsing, no delegate execution
// (it never imports pkg/delegate).
package k8sclient
