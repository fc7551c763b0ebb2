// Package api is the wire contract between the plexus shim and plexusd: the
// request the shim sends over the unix socket and the response it gets back.
// It imports only the standard library and the CNI types, so the shim stays
// small (no client-go, no netlink).
package api
