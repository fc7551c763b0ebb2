// Package delegate runs delegate CNI plugins through libcni with the
// semantics a meta-plugin owes its runtime: ADD in order with a compensation
// stack (everything added is deleted in reverse if a later step fails), DEL
// in reverse that keeps going and joins every error, CHECK over every
// attachment, STATUS and GC forwarded to the delegates.
//
// It imports libcni and the CNI types, never k8s.io or netlink, so the shim
// can use it to replay a DEL while the daemon is down.
package delegate
