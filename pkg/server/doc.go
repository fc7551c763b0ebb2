// Package server serves the CNI API on the daemon's unix socket: it decodes
// and validates requests, applies the concurrency limit, the queue and the
// per-container serialization, attaches a request-scoped logger, calls the
// Handler and encodes its answer with the CNI error code intact. It also
// serves /healthz and /readyz.
//
// It imports only pkg/api (and the CNI types): no Kubernetes, no delegates.
package server
