// Command plexusd is the Plexus node daemon.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/plexus-cni/plexus/pkg/buildinfo"
	"github.com/plexus-cni/plexus/pkg/config"
	"github.com/plexus-cni/plexus/pkg/daemon"
	"github.com/plexus-cni/plexus/pkg/logging"
)

func main() {
	os.Exit(run())
}

func run() int {
	cfgPath := flag.String("config", "/etc/plexus/plexusd.json", "daemon config file (JSON)")
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig file (default: in-cluster config)")
	nodeName := flag.String("node-name", os.Getenv("NODE_NAME"), "this node's name (default: $NODE_NAME)")
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *showVersion {
		fmt.Println(buildinfo.About("daemon"))
		return 0
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "plexusd: %v\n", err)
		return 2
	}
	log, closer, err := logging.New(cfg.Log)
	if err != nil {
		fmt.Fprintf(os.Stderr, "plexusd: %v\n", err)
		return 2
	}
	defer closer.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := daemon.Run(ctx, cfg, daemon.Flags{Kubeconfig: *kubeconfig, NodeName: *nodeName}, log); err != nil {
		log.Error("plexusd failed", "err", err)
		return 1
	}
	return 0
}
