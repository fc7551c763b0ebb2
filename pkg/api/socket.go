package api

import "github.com/plexus-cni/plexus/pkg/api/wire"

// Socket and endpoint paths shared by the shim and the daemon.
const (
	DefaultSocketPath = wire.DefaultSocketPath
	SocketName        = wire.SocketName
	PathCNI           = wire.PathCNI
	PathHealthz       = wire.PathHealthz
	PathReadyz        = wire.PathReadyz
)

// MsgNotReady is the CNI error message (code 11) of a daemon that is up
// but cannot serve ADD yet; the shim retries on it for a while.
const MsgNotReady = wire.MsgNotReady

// CodeNotAvailable is the CNI STATUS code 50, "the plugin cannot service
// ADD" (CNI spec 1.1, STATUS), which the CNI library does not declare.
const CodeNotAvailable = wire.CodeNotAvailable
