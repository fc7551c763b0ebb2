package api

// Socket and endpoint paths shared by the shim and the daemon.
const (
	DefaultSocketPath = "/run/plexus/plexus.sock"
	SocketName        = "plexus.sock"
	PathCNI           = "/cni"
	PathHealthz       = "/healthz"
	PathReadyz        = "/readyz"
)

// MsgNotReady is the CNI error message (code 11) of a daemon that is up
// but cannot serve ADD yet; the shim retries on it for a while.
const MsgNotReady = "plexusd not ready"

// CodeNotAvailable is the CNI STATUS code 50, "the plugin cannot service
// ADD" (CNI spec 1.1, STATUS), which the CNI library does not declare.
const CodeNotAvailable uint = 50
