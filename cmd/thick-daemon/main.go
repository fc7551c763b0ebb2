// Command plexusd is the Plexus node daemon.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

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

// Multus thick's entry points: its manifest runs
// /usr/src/multus-cni/bin/multus-daemon [-config FILE] and, in its init
// container, /usr/src/multus-cni/bin/install_multus -d DIR -t thick. The
// image links both names to plexusd.
const (
	multusDaemonName  = "multus-daemon"
	multusInstallName = "install_multus"
	multusConfigPath  = "/etc/cni/net.d/multus.d/daemon-config.json"
	// multusCNIDir is mounted at the same path by Multus's manifest: the
	// shim on the host finds Plexus's records there.
	multusCNIDir = "/var/lib/cni/multus"
)

// defaultGCPercent is plexusd's GOGC unless its environment sets one: its
// live heap is a few MiB (the trimmed pod and NAD caches, 3.4 MiB with
// 2,000 NADs and 200 pods), so the Go default of 100 lets the heap, and
// the resident memory, grow to twice that between collections. 25 keeps
// it to 1.25 times: 1.1 MiB less RSS in bench's "Scale" step, for a
// collection every few ADDs whose CPU (a few ms, on another core) is
// lost in the noise of the CPU per operation.
const defaultGCPercent = 25

func run() int {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	as := filepath.Base(os.Args[0])
	if as == multusInstallName {
		return installMultus(os.Args[1:])
	}
	defaultConfig, node := "/etc/plexus/plexusd.json", os.Getenv("NODE_NAME")
	if as == multusDaemonName {
		defaultConfig = multusConfigPath
		if node == "" {
			node = os.Getenv("MULTUS_NODE_NAME")
		}
	}
	cfgPath := flag.String("config", defaultConfig, "daemon config file (JSON)")
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig file (default: in-cluster config)")
	nodeName := flag.String("node-name", node, "this node's name (default: $NODE_NAME, or $MULTUS_NODE_NAME as multus-daemon)")
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
		return report(shim.Probe(*probe, 5*time.Second))
	}
	base, confFile := config.Default(), ""
	if as == multusDaemonName {
		// Multus's file name: switched either way, each replaces the other's.
		confFile = cniconf.MultusFileName
		base.CNIDir = multusCNIDir
		base.WriteMultusCache = true // the way back to Multus stays open
	}
	cfg, err := config.LoadOver(*cfgPath, base)
	if err != nil {
		fmt.Fprintf(os.Stderr, "plexusd: %v\n", err)
		return 2
	}
	if *uninstall {
		if cfg.CNIConfigDir == "" {
			return report(fmt.Errorf("--uninstall: cniConfigDir is not set in %s", *cfgPath))
		}
		return report(cniconf.Uninstall(cfg.CNIConfigDir, confFile))
	}
	log, closer, err := logging.New(cfg.Log)
	if err != nil {
		fmt.Fprintf(os.Stderr, "plexusd: %v\n", err)
		return 2
	}
	defer closer.Close()
	for _, w := range cfg.Warnings {
		log.Warn(w, "config", *cfgPath)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := daemon.Run(ctx, cfg, daemon.Flags{Kubeconfig: *kubeconfig, NodeName: *nodeName, CNIConfFile: confFile, DaemonSet: os.Getenv("PLEXUS_DAEMONSET")}, log); err != nil {
		log.Error("plexusd failed", "err", err)
		return 1
	}
	return 0
}

// installMultus takes install_multus's flags (-d/--dest-dir DIR, -t/--type
// thick) and installs the shim under both names.
func installMultus(args []string) int {
	fs := flag.NewFlagSet(multusInstallName, flag.ContinueOnError)
	dir := fs.String("d", "/host/opt/cni/bin", "destination directory")
	fs.StringVar(dir, "dest-dir", "/host/opt/cni/bin", "destination directory")
	typ := fs.String("t", "thick", "thick (thin is Multus's thin plugin: not Plexus)")
	fs.StringVar(typ, "type", "thick", "thick")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0 // usage printed, as install_multus -h does
		}
		return 2
	}
	if *typ != "thick" {
		return report(fmt.Errorf("install_multus -t %s: Plexus replaces Multus thick only", *typ))
	}
	self, err := os.Executable()
	if err != nil {
		return report(err)
	}
	if err := install.MultusShim(filepath.Dir(self), *dir); err != nil {
		return report(err)
	}
	fmt.Printf("plexus shim installed in %s as plexus, multus-shim and passthru, with plexus-replay\n", *dir)
	return 0
}

func installFromSelf(dir string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	return install.Shim(filepath.Dir(self), dir)
}

func report(err error) int {
	if err != nil {
		fmt.Fprintf(os.Stderr, "plexusd: %v\n", err)
		return 1
	}
	return 0
}
