package config

// ignored maps each Multus daemon-config key that Plexus accepts without
// acting on it to what Plexus does instead, logged as a warning at start:
// a stock Multus config (and the upstream docs' keys) carries over.
var ignored = map[string]string{
	"enablePprof":         "pprof is served only on a root-only unix socket: set pprofSocket",
	"connectionLimit":     "maxConcurrency and queueSize bound the work instead of the connections",
	"perNodeCertificate":  "plexusd uses its service account (or --kubeconfig); deployments/hardening/node-scope.yaml scopes it to its node",
	"forceCNIVersion":     "the primary's file is never rewritten; cniVersion sets the generated file's version",
	"overrideNetworkName": "the generated network is always named plexus-cni-network",
	"retryDeleteOnError":  "Plexus always keeps the attachment record until DEL succeeds",
	"kubeconfig":          "use the plexusd --kubeconfig flag (Multus thick ignores this key too)",
	"capabilities":        "the generated file carries the primary's capabilities",
	"name":                "the generated network is always named plexus-cni-network",
	"type":                "the generated file has \"type\": \"plexus\"",
	"daemonSocketDir":     "a shim key: the generated file names the socket (socketDir) itself",
}
