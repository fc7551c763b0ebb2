package config

// unsupported maps each Multus daemon-config key that Plexus rejects to the
// reason and, where there is one, what to use instead. Rejecting them loudly
// (rather than ignoring them) means a carried-over Multus config never
// silently behaves differently from what its author expected.
var unsupported = map[string]string{
	"metricsPort":           "metrics are not implemented yet",
	"enablePprof":           "use pprofSocket: pprof is served on a root-only unix socket, never on a TCP port",
	"connectionLimit":       "use maxConcurrency and queueSize, which bound delegate work rather than connections",
	"perNodeCertificate":    "per-node client certificates are not supported; plexusd uses its service account or the --kubeconfig flag",
	"forceCNIVersion":       "use cniVersion, which sets the generated file's version without rewriting the primary's",
	"overrideNetworkName":   "the generated network is always named plexus-cni-network",
	"delegates":             "inline delegates are not supported; use clusterNetwork (a NAD name, a CNI config name in confDir, or an absolute file path)",
	"auxiliaryCNIChainName": "auxiliary CNI chains are not supported; use defaultNetworks or a conflist with the plugins chained",
	"retryDeleteOnError":    "Plexus always keeps the attachment record until DEL succeeds, so DEL can always be retried",
	"kubeconfig":            "use the plexusd --kubeconfig flag",
	"capabilities":          "capabilities belong in the shim's CNI config file, which the runtime reads",
	"name":                  "this is a daemon config, not a CNI config; the network name belongs in the shim's CNI config file",
	"type":                  "this is a daemon config, not a CNI config; the shim's CNI config file has \"type\": \"plexus\"",
}
