// Package wire is what the plexus shim and plexusd must agree on beyond
// the request's JSON: the socket's place, the endpoints, the protocol
// version, the CNI versions and the retryable message. It imports nothing,
// so the shim, which the runtime execs for every CNI call, links none of
// pkg/api's dependencies.
package wire

// Socket and endpoint paths shared by the shim and the daemon.
const (
	DefaultSocketPath = "/run/plexus/plexus.sock"
	SocketName        = "plexus.sock"
	PathCNI           = "/cni"
	PathHealthz       = "/healthz"
	PathReadyz        = "/readyz"
)

// Protocol is the version of the shim↔daemon wire format this build
// speaks. The shim on the host and the daemon in the DaemonSet are upgraded
// separately, so each request says which version its shim speaks. 0 (the
// field absent) is the format from before the field existed, which is
// version 1's subset: a daemon serves every version up to its own, and
// answers a newer one with a CNI error naming both.
const Protocol = 1

// MsgNotReady is the CNI error message (code 11) of a daemon that is up
// but cannot serve ADD yet; the shim retries on it for a while.
const MsgNotReady = "plexusd not ready"

// CodeNotAvailable is the CNI STATUS code 50, "the plugin cannot service
// ADD" (CNI spec 1.1, STATUS), which the CNI library does not declare.
const CodeNotAvailable uint = 50

// CNIVersions are the CNI spec versions Plexus serves: what the shim
// advertises on VERSION, what the daemon config may generate, and what a
// delegate config may declare. One list, here.
var CNIVersions = []string{"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}

// ReplayName is the binary, installed beside the shim, that the shim execs
// to replay a DEL from the attachment record when plexusd is unreachable.
// It is apart so that the shim itself links no CNI library: the runtime
// execs the shim for every ADD and DEL, and every package linked costs its
// start-up.
const ReplayName = "plexus-replay"

// Environment the shim hands to ReplayName: the settings it resolved from
// its config, and why the daemon could not be asked.
const (
	EnvReplayPrefix = "PLEXUS_REPLAY_"
	EnvReplaySocket = EnvReplayPrefix + "SOCKET"
	EnvReplayCNIDir = EnvReplayPrefix + "CNIDIR"
	EnvReplayBinDir = EnvReplayPrefix + "BINDIR"
	EnvReplayReason = EnvReplayPrefix + "REASON"
)
