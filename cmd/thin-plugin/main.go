// Command plexus is the CNI plugin the container runtime execs. It forwards
// the request to plexusd over a unix socket and prints the answer. Run as
// passthru (the name install_multus gives it too), it is Multus's passthru
// plugin. When plexusd is unreachable for a DEL, it execs plexus-replay
// (cmd/thin-plugin/replay), installed beside it, to replay the DEL from the
// attachment record.
package main

import (
	"os"
	"runtime"

	"github.com/plexus-cni/plexus/pkg/shim"
)

func main() {
	// One goroutine does all the work, and most of the process's life is
	// a blocking read of the daemon's answer: with a P per core, the
	// runtime wakes idle threads around that syscall for nothing (2–3 ms
	// of CPU per ADD here, measured against a daemon that answers in
	// 80 ms).
	runtime.GOMAXPROCS(1)
	os.Exit(shim.Main(os.Args[0], os.Getenv, os.Stdin, os.Stdout, os.Stderr))
}
