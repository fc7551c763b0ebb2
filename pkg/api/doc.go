// Package api is the wire contract between the plexus shim and plexusd: the
// request the shim sends over the unix socket and the response it gets back,
// as the daemon decodes and encodes them. The shim writes and reads the same
// JSON without this package (it links no CNI library): what both ends must
// agree on beyond the JSON lives in pkg/api/wire.
package api
