// Package shim is the CNI plugin side of Plexus: it turns one CNI invocation
// into the daemon's request, sends it to plexusd over the unix socket with a
// connect deadline and a total deadline, and prints the answer. When the
// daemon is unreachable, ADD/CHECK/GC fail with code 11 and STATUS with 50;
// DEL is replayed from the attachment record (by plexus-replay, which the
// shim execs in its place) so it is never lost.
//
// The runtime execs the shim for every CNI call, so what it links is paid
// on every pod's start-up: it imports only the standard library's os,
// syscall, strconv and strings families and pkg/api/wire, reading and
// writing its JSON itself (json.go). A go list -deps test enforces that.
package shim
