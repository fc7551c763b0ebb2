// Command plexusd is the Plexus node daemon.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/plexus-cni/plexus/pkg/buildinfo"
	"github.com/plexus-cni/plexus/pkg/cniconf"
	"github.com/plexus-cni/plexus/pkg/config"
	"github.com/plexus-cni/plexus/pkg/daemon"
	"github.com/plexus-cni/plexus/pkg/install"
	"github.com/plexus-cni/plexus/pkg/logging"
	"github.com/plexus-cni/plexus/pkg/shim"
)

func main() {
	os.Exit(run())
}

func run() int {
	cfgPath := flag.String("config", "/etc/plexus/plexusd.json", "daemon config file (JSON)")
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig file (default: in-cluster config)")
	nodeName := flag.String("node-name", os.Getenv("NODE_NAME"), "this node's name (default: $NODE_NAME)")
	installShim := flag.String("install-shim", "", "copy the plexus shim (next to this binary) into DIR atomically, then exit")
	probe := flag.String("probe", "", "exit 0 if the daemon on this socket is ready")
	uninstall := flag.Bool("uninstall", false, "remove the generated CNI config (cniConfigDir/00-plexus.conflist), then exit")
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	switch {
	case *showVersion:
		fmt.Println(buildinfo.About("daemon"))
		return 0
	case *installShim != "":
		return report(installFromSelf(*installShim))
	case *probe != "":
		return report(shim.Probe(context.Background(), *probe))
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "plexusd: %v\n", err)
		return 2
	}
	if *uninstall {
		if cfg.CNIConfigDir == "" {
			return report(fmt.Errorf("--uninstall: cniConfigDir is not set in %s", *cfgPath))
		}
		return report(cniconf.Uninstall(cfg.CNIConfigDir))
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

func installFromSelf(dir string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	return install.Shim(filepath.Join(filepath.Dir(self), "plexus"), dir)
}

func report(err error) int {
	if err != nil {
		fmt.Fprintf(os.Stderr, "plexusd: %v\n", err)
		return 1
	}
	return 0
}
