package api

// Socket and endpoint paths shared by the shim and the daemon.
const (
	DefaultSocketPath = "/run/plexus/plexus.sock"
	SocketName        = "plexus.sock"
	PathCNI           = "/cni"
	PathHealthz       = "/healthz"
	PathReadyz        = "/readyz"
)
