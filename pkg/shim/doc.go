// Package shim is the CNI plugin side of Plexus: it turns one CNI invocation
// into an api.Request, sends it to plexusd over the unix socket with a
// connect deadline and a total deadline, and prints the answer. When the
// daemon is unreachable, ADD/CHECK/GC fail with code 11 and STATUS with 50;
// DEL is replayed from the attachment record so it is never lost.
//
// It must not import k8s.io/* or netlink (a go list -deps test enforces it).
package shim
