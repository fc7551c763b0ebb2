// Command plexus-replay replays a DEL from the attachment record when
// plexusd is unreachable. The plexus shim, installed beside it, execs it in
// its own place; it is not a CNI plugin of its own (see pkg/replay).
package main

import (
	"os"

	"github.com/plexus-cni/plexus/pkg/replay"
)

func main() {
	os.Exit(replay.Main(os.Getenv, os.Stdout, os.Stderr))
}
