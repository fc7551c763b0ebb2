// Package replay is plexus-replay: the DEL the shim could not hand to
// plexusd (the daemon is down, being replaced, or hung), run from the
// attachment record so that a DEL is never lost. The shim execs it in its
// own place with the CNI environment and the settings it resolved from its
// config (wire.EnvReplay*), so the replay's output and exit code are the
// shim's. It links libcni and the delegate chain, which the shim does not.
package replay

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/plexus-cni/plexus/pkg/api/wire"
	"github.com/plexus-cni/plexus/pkg/buildinfo"
	"github.com/plexus-cni/plexus/pkg/delegate"
	"github.com/plexus-cni/plexus/pkg/detach"
	"github.com/plexus-cni/plexus/pkg/shim"
	"github.com/plexus-cni/plexus/pkg/store"
)

// Settings are what the shim resolved from its config.
type Settings struct {
	Socket, CNIDir, BinDir string
	// Reason is why the daemon could not be asked.
	Reason string
}

// Main runs the replay in the environment and returns the exit code.
func Main(getenv func(string) string, stdout, stderr io.Writer) int {
	s := Settings{Socket: getenv(wire.EnvReplaySocket), CNIDir: getenv(wire.EnvReplayCNIDir), BinDir: getenv(wire.EnvReplayBinDir), Reason: getenv(wire.EnvReplayReason)}
	if s.Socket == "" || s.CNIDir == "" || getenv("CNI_COMMAND") != "DEL" {
		fmt.Fprintf(stderr, "%s (%s): the plexus shim runs this to replay a DEL when plexusd is unreachable; it is not a CNI plugin of its own\n", wire.ReplayName, buildinfo.About("replay"))
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), shim.ReplayTimeout)
	defer cancel()
	if err := Del(ctx, s, getenv("CNI_CONTAINERID"), getenv("CNI_NETNS"), getenv("CNI_PATH"), stderr); err != nil {
		e := types.NewError(types.ErrTryAgainLater, "plexus: daemon unreachable at "+s.Socket+"; DEL from the attachment record failed", err.Error())
		b, _ := json.Marshal(e)
		_, _ = stdout.Write(append(b, '\n'))
		return 1
	}
	return 0
}

// Del runs the DEL of containerID from its attachment record.
func Del(ctx context.Context, s Settings, containerID, netns, cniPath string, log io.Writer) error {
	if err := store.ValidContainerID(containerID); err != nil {
		return err
	}
	// The runtime's CNI_PATH found the shim; it finds the delegates too,
	// unless binDir says otherwise.
	var binDirs []string
	if s.BinDir != "" {
		binDirs = []string{s.BinDir}
	}
	why := "plexus: daemon unreachable at " + s.Socket
	if s.Reason != "" {
		why += " (" + strings.TrimSpace(s.Reason) + ")"
	}
	inv := delegate.NewInvoker(binDirs, s.CNIDir, nil)
	st := store.NewFileStore(store.RecordsDir(s.CNIDir))
	rec, err := detach.Detach(ctx, inv, st, containerID, netns, cniPath)
	switch {
	case err != nil:
		return err
	case rec == nil:
		fmt.Fprintf(log, "%s; %s has no attachment record: nothing to delete\n", why, containerID)
	default:
		fmt.Fprintf(log, "%s; DEL of %s done from the attachment record\n", why, containerID)
		if err := store.MarkReplayed(s.CNIDir, containerID); err != nil {
			fmt.Fprintf(log, "plexus: leave the replay trail: %v\n", err) // the DEL itself succeeded
		}
	}
	return nil
}
