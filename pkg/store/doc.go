// Package store keeps the attachment record: the resolved plan of one pod
// sandbox (delegate configs, ifnames, args, capability args), written
// atomically before the first delegate runs so DEL, CHECK and GC never need
// the API server, the NAD or the daemon's memory.
//
// The runtime never runs two operations on one container at once (CNI spec
// section 3), and GC is exclusive, so the store needs no cross-process lock:
// the shim may replay a DEL from a record while the daemon is down.
//
// It imports only the standard library and pkg/delegate (for Spec).
package store
