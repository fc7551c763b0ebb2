package config

// unsupported maps each Multus daemon-config key that Plexus rejects to the
// reason and, where there is one, what to use instead. Rejecting them loudly
// (rather than ignoring them) means a carried-over Multus config never
// silently behaves differently from what its author expected.
var unsupported = map[string]string{
	"chrootDir":             "delegates run in the host mount namespace of the plexusd pod (mount the host's CNI directories into the pod instead of chrooting)",
	"metricsPort":           "metrics are not implemented yet",
	"enablePprof":           "use pprofSocket: pprof is served on a root-only unix socket, never on a TCP port",
	"connectionLimit":       "use maxConcurrency and queueSize, which bound delegate work rather than connections",
	"perNodeCertificate":    "per-node client certificates are not supported; plexusd uses its service account or the --kubeconfig flag",
	"cniVersion":            "Plexus does not generate a CNI config yet; set cniVersion in the shim's CNI config file",
	"cniConfigDir":          "CNI config generation is not implemented yet; install the shim's CNI config file yourself",
	"multusConfigFile":      "CNI config generation is not implemented yet; install the shim's CNI config file yourself",
	"multusAutoconfigDir":   "CNI config generation is not implemented yet; set clusterNetwork to the primary CNI config instead",
	"multusMasterCNI":       "CNI config generation is not implemented yet; set clusterNetwork to the primary CNI config instead",
	"forceCNIVersion":       "CNI config generation is not implemented yet",
	"overrideNetworkName":   "CNI config generation is not implemented yet",
	"delegates":             "inline delegates are not supported; use clusterNetwork (a NAD name, a CNI config name in confDir, or an absolute file path)",
	"auxiliaryCNIChainName": "auxiliary CNI chains are not supported; use defaultNetworks or a conflist with the plugins chained",
	"retryDeleteOnError":    "Plexus always keeps the attachment record until DEL succeeds, so DEL can always be retried",
	"kubeconfig":            "use the plexusd --kubeconfig flag",
	"capabilities":          "capabilities belong in the shim's CNI config file, which the runtime reads",
	"name":                  "this is a daemon config, not a CNI config; the network name belongs in the shim's CNI config file",
	"type":                  "this is a daemon config, not a CNI config; the shim's CNI config file has \"type\": \"plexus\"",
}
