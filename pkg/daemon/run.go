package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/plexus-cni/plexus/pkg/atomicfile"
	"github.com/plexus-cni/plexus/pkg/buildinfo"
	"github.com/plexus-cni/plexus/pkg/cniconf"
	"github.com/plexus-cni/plexus/pkg/config"
	"github.com/plexus-cni/plexus/pkg/delegate"
	"github.com/plexus-cni/plexus/pkg/detach"
	"github.com/plexus-cni/plexus/pkg/devices"
	"github.com/plexus-cni/plexus/pkg/hostroot"
	"github.com/plexus-cni/plexus/pkg/k8sclient"
	"github.com/plexus-cni/plexus/pkg/manifest"
	"github.com/plexus-cni/plexus/pkg/metrics"
	"github.com/plexus-cni/plexus/pkg/netselect"
	"github.com/plexus-cni/plexus/pkg/podref"
	"github.com/plexus-cni/plexus/pkg/routes"
	"github.com/plexus-cni/plexus/pkg/server"
	"github.com/plexus-cni/plexus/pkg/store"
)

// ShutdownGrace is how long in-flight requests may finish after ctx ends.
const ShutdownGrace = 10 * time.Second

// Flags are the settings that come from the command line, not the config.
type Flags struct {
	Kubeconfig string
	NodeName   string
	// CNIConfFile is the generated CNI config's name; "" is
	// 00-plexus.conflist (run as multus-daemon: 00-multus.conf).
	CNIConfFile string
	// DaemonSet is "namespace/name" of the DaemonSet that runs plexusd
	// (env PLEXUS_DAEMONSET): when plexusd stops because it is being
	// deleted, not rolled, it removes the generated CNI config so the node
	// falls back to its primary network. "": never removed on exit.
	DaemonSet string
}

// Run serves until ctx ends.
func Run(ctx context.Context, cfg config.Config, flags Flags, log *slog.Logger) error {
	if os.Geteuid() != 0 {
		return errors.New("plexusd must run as root")
	}
	if err := checkHostRoot(cfg, log); err != nil {
		return err
	}
	if err := checkDelegates(cfg); err != nil {
		return err
	}
	st := store.NewFileStore(store.RecordsDir(cfg.CNIDir))
	sweepTemp(log, store.RecordsDir(cfg.CNIDir), cfg.StatusDir)
	var met *metrics.Metrics
	if cfg.MetricsPort != 0 {
		met = metrics.New(buildinfo.Version)
	}
	replayed(cfg, met, log)
	exec := &delegate.BoundedExec{Timeout: cfg.DelegateTimeout, Root: cfg.ChrootDir}
	inv := delegate.NewInvoker(cfg.BinDirs, cfg.CNIDir, exec)
	inv.RollbackTimeout = cfg.RollbackTimeout
	if met != nil {
		inv.Observe = func(network, plugin, verb string, err error, d time.Duration) {
			met.Delegate(network, plugin, verb, outcome(err), d)
		}
	}
	src, events, err := newSource(ctx, cfg, flags, log, st, inv, met)
	if err != nil {
		return err
	}
	// DRA devices are looked up in the node's ResourceSlices, which the
	// Kubernetes source watches when resource.k8s.io/v1 is served.
	var attrs devices.DeviceAttributes
	if d, ok := src.(draSource); ok && d.DRA() {
		attrs = d
	}
	mux := NewMultiplexer(cfg, src, st, inv, events,
		devices.New(devices.Options{PodResourcesSocket: cfg.PodResourcesSocket, DeviceInfoDir: cfg.DeviceInfoDir}, log, attrs),
		routes.NewWithCache(cfg.CNIDir, log).InHostRoot(cfg.ChrootDir))
	mux.metrics = met
	if cfg.MultusCacheDir != "" {
		mux.multusInv = delegate.NewInvoker(cfg.BinDirs, hostroot.Path(cfg.ChrootDir, cfg.MultusCacheDir), exec)
	}
	var observer server.Observer
	if met != nil {
		observer = met
	}
	srv := server.New(mux, log, server.Options{
		Observer:          observer,
		Workers:           cfg.MaxConcurrency,
		BackgroundWorkers: cfg.HotplugConcurrency,
		QueueSize:         cfg.QueueSize,
		QueueTimeout:      cfg.QueueTimeout,
		RequestTimeout:    cfg.RequestTimeout,
		MaxBodyBytes:      cfg.MaxRequestBytes,
	})
	mux.locked = srv.Locked
	if cfg.OrphanSweepInterval > 0 {
		var cri SandboxLister
		if cfg.CRISocket != "" {
			cri = CRISandboxes{Socket: cfg.CRISocket}
		}
		go NewSweeper(mux, cfg.OrphanGracePeriod, cri, log).Run(ctx, cfg.OrphanSweepInterval)
	}
	if cfg.PprofSocket != "" {
		if err := servePprof(ctx, cfg.PprofSocket, log); err != nil {
			return err
		}
	}
	if sink, ok := src.(claimSink); ok && attrs != nil {
		mux.claimW = newClaimWriter(mux, sink, log)
		mux.claimW.Run(ctx, 1)
	}
	if cfg.StatusWrite == config.StatusAsync && cfg.ManifestsDir == "" {
		mux.statusW = newStatusWriter(mux, log)
		mux.statusW.Run(ctx, statusWorkers)
	}
	if cfg.Hotplug {
		watcher, ok := src.(networksWatcher)
		if !ok {
			return &config.KeyError{Key: "hotplug", Err: errors.New("needs the Kubernetes API as the source of pods")}
		}
		mux.hotplug = newHotplugger(mux, srv.Background, watcher, log)
		watcher.OnNetworksChange(mux.hotplug.Enqueue)
		mux.hotplug.Run(ctx, cfg.HotplugConcurrency)
		log.Info("hot-plug on: running pods follow their networks annotation")
	}
	if met != nil {
		registerGauges(met, srv, st, mux.hotplug, mux.statusW)
		met.Serve(ctx, cfg.MetricsBindAddress, cfg.MetricsPort, log)
	}
	l, err := server.Listen(cfg.SocketPath(), []uint32{0}, log)
	if err != nil {
		return err
	}
	if cfg.CNIConfigDir != "" {
		mux.cniconf = startCNIConf(ctx, cfg, flags.CNIConfFile, events, log)
	}
	log.Info("plexusd serving", "version", buildinfo.Version, "socket", cfg.SocketPath(), "clusterNetwork", cfg.ClusterNetwork, "manifestsDir", cfg.ManifestsDir, "node", flags.NodeName)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownGrace)
	defer cancel()
	log.Info("plexusd shutting down")
	err = srv.Shutdown(sctx)
	if mux.cniconf != nil {
		uninstallIfDeleted(sctx, cfg, flags, src, log)
	}
	return err
}

// uninstallIfDeleted removes the generated CNI config when plexusd stops
// because its DaemonSet is deleted (the node then starts pods on its
// primary network alone), and keeps it on a roll, a restart or a crash
// (pods wait for the next plexusd rather than start without their
// networks). The DaemonSet is asked for with one GET.
func uninstallIfDeleted(ctx context.Context, cfg config.Config, flags Flags, src Source, log *slog.Logger) {
	ns, name, ok := strings.Cut(flags.DaemonSet, "/")
	asker, isKube := src.(interface {
		DaemonSetGone(ctx context.Context, namespace, name string) (bool, error)
	})
	if !ok || !isKube {
		return
	}
	gone, err := asker.DaemonSetGone(ctx, ns, name)
	switch {
	case err != nil:
		log.Warn("cannot tell whether the DaemonSet is being deleted: keeping the generated CNI config", "daemonset", flags.DaemonSet, "err", err)
	case !gone:
		log.Info("DaemonSet still there (roll or restart): keeping the generated CNI config", "daemonset", flags.DaemonSet)
	default:
		if err := cniconf.Uninstall(cfg.CNIConfigDir, flags.CNIConfFile); err != nil {
			log.Error("DaemonSet deleted, but the generated CNI config could not be removed", "err", err)
			return
		}
		log.Info("DaemonSet deleted: generated CNI config removed; new pods get the primary network alone", "daemonset", flags.DaemonSet)
	}
}

// startCNIConf keeps the generated CNI config in cniConfigDir. The paths
// it carries are read by the shim on the host: host paths, found from the
// daemon's own (a Multus manifest mounts the host's /run at /host/run).
func startCNIConf(ctx context.Context, cfg config.Config, file string, events Recorder, log *slog.Logger) *cniconf.Manager {
	socketDir := hostroot.Of(cfg.ChrootDir, cfg.SocketDir)
	cniDir := hostroot.Of(cfg.ChrootDir, cfg.CNIDir)
	if socketDir != cfg.SocketDir || cniDir != cfg.CNIDir {
		log.Info("host paths for the shim", "socketDir", socketDir, "cniDir", cniDir)
	}
	mgr := cniconf.New(cniconf.Options{
		ConfDir: cfg.CNIConfigDir, AutoconfigDir: cfg.AutoconfigDir, Primary: cfg.PrimaryConfig, CNIVersion: cfg.CNIVersion,
		ReadinessFile: cfg.ReadinessIndicatorFile, SocketPath: filepath.Join(socketDir, config.SocketFileName), CNIDir: cniDir,
		FileName: file,
	}, nodeReporter{events}, log)
	go func() {
		if err := mgr.Run(ctx); err != nil {
			log.Error("CNI config manager stopped", "err", err)
		}
	}()
	return mgr
}

// outcome is a delegate's outcome label: "ok", or its CNI error code.
func outcome(err error) string {
	if err == nil {
		return "ok"
	}
	return strconv.FormatUint(uint64(server.ToCNIError(err).Code), 10)
}

// replayed counts (and logs) the DELs the shim replayed while plexusd was
// down, from the trail it leaves, and clears the trail.
func replayed(cfg config.Config, met *metrics.Metrics, log *slog.Logger) {
	n, err := store.TakeReplayed(cfg.CNIDir)
	if err != nil {
		log.Warn("read the shim's replay trail", "err", err)
	}
	if n > 0 {
		log.Info("the shim replayed DELs from their records while plexusd was down", "count", n)
		met.Replayed(n)
	}
}

// statusWorkers is how many asynchronous status writes run at once.
const statusWorkers = 4

// registerGauges adds the gauges read at scrape time: the queue, the
// records on disk, the hot-plug queue, the pending status writes.
func registerGauges(met *metrics.Metrics, srv *server.Server, st store.Store, hp *hotplugger, sw *statusWriter) {
	met.Gauge("queue_waiting", "CNI requests waiting for a worker slot now.", func() float64 { return float64(srv.Stats().Waiting) })
	met.Gauge("queue_running", "Operations holding a worker slot now (CNI requests and hot-plug changes).", func() float64 { return float64(srv.Stats().Running) })
	met.LabeledGauge("records", "Attachment records on disk, by state: complete, incomplete (an ADD running or interrupted), unreadable.", "state",
		[]string{"complete", "incomplete", "unreadable"}, func() map[string]float64 {
			out := map[string]float64{}
			ids, _ := st.List()
			for _, id := range ids {
				rec, err := st.Load(id)
				switch {
				case err != nil:
					out["unreadable"]++
				case rec.Complete:
					out["complete"]++
				default:
					out["incomplete"]++
				}
			}
			return out
		})
	if sw != nil {
		met.Gauge("status_writes_pending", "Sandboxes whose ADD answered and whose network-status is not written yet (statusWrite async; retries after backoff included once due).", func() float64 { return float64(sw.pending()) })
	}
	if hp != nil {
		met.Gauge("hotplug_queue_depth", "Pods waiting for a hot-plug pass (retries after backoff included once due).", func() float64 { return float64(hp.queue.Len()) })
	}
}

// tempMinAge: a temp file lives for milliseconds; one older than this is
// from a crash (and never one a running daemon is writing).
const tempMinAge = time.Minute

// sweepTemp removes the temp files a crash left in Plexus's own dirs.
func sweepTemp(log *slog.Logger, dirs ...string) {
	for _, d := range dirs {
		n, err := atomicfile.SweepTemp(d, tempMinAge)
		if err != nil {
			log.Warn("sweep temp files", "dir", d, "err", err)
		}
		if n > 0 {
			log.Info("removed temp files left by a crash", "dir", d, "count", n)
		}
	}
}

// newSource returns the manifest source when manifestsDir is set, else the
// Kubernetes source.
func newSource(ctx context.Context, cfg config.Config, flags Flags, log *slog.Logger, st store.Store, inv *delegate.Invoker, met *metrics.Metrics) (Source, Recorder, error) {
	if cfg.ManifestsDir == "" {
		c, err := k8sclient.New(k8sclient.Options{
			Kubeconfig: flags.Kubeconfig, NodeName: flags.NodeName, Metrics: met,
			QPS: float32(cfg.APIQPS), Burst: cfg.APIBurst, EventQPS: float32(cfg.EventQPS), PodWait: cfg.PodWaitTimeout,
		}, log)
		if err != nil {
			return nil, nil, err
		}
		c.Start(ctx)
		return c, c, nil
	}
	src, err := manifest.New(cfg.ManifestsDir, cfg.StatusDir, log)
	if err != nil {
		return nil, nil, err
	}
	if keep, known := recordedPods(st, inv, log); known {
		if err := src.SweepStatus(keep); err != nil {
			log.Warn("sweep status files", "err", err)
		}
	}
	go func() {
		if err := src.Watch(ctx); err != nil {
			log.Error("manifest watch stopped", "err", err)
		}
	}()
	return src, logRecorder{log}, nil
}

// recordedPods are the pods that still have an attachment record; false
// when that cannot be known (an unreadable record whose pod is not in
// libcni's cache either).
func recordedPods(st store.Store, inv *delegate.Invoker, log *slog.Logger) (map[podref.Ref]bool, bool) {
	keep := map[podref.Ref]bool{}
	ids, err := st.List()
	if err != nil {
		log.Warn("list attachment records", "err", err)
		return nil, false
	}
	for _, id := range ids {
		// An unreadable record's pod is in libcni's cache; without it,
		// no status file can be known to be stale.
		p, known := detach.PodOf(inv, st, id)
		if !known {
			log.Error("attachment record of unknown pod (unreadable, not in libcni's cache): no status file swept", "reason", "AttachmentRecordCorrupt", "container", id)
			return nil, false
		}
		keep[podref.Ref{Namespace: p.Namespace, Name: p.Name}] = true
	}
	return keep, true
}

// logRecorder is the manifest mode's recorder: there is no API to record
// Events in, and the multiplexer has already logged each one with the
// request's ID, so pod events need nothing more.
type logRecorder struct{ log *slog.Logger }

func (r logRecorder) Event(podref.Ref, bool, string, string) {}

// NodeRecorder reports events about this node (the generated CNI config).
type NodeRecorder interface {
	NodeEvent(warning bool, reason, msg string)
}

// nodeReporter sends node events to the source's recorder when it can take
// them (Kubernetes), else logs them.
type nodeReporter struct{ r Recorder }

func (n nodeReporter) NodeEvent(warning bool, reason, msg string) {
	if nr, ok := n.r.(NodeRecorder); ok {
		nr.NodeEvent(warning, reason, msg)
	}
}

// NodeEvent logs (manifest mode).
func (r logRecorder) NodeEvent(warning bool, reason, msg string) {
	if warning {
		r.log.Warn(msg, "reason", reason)
		return
	}
	r.log.Info(msg, "reason", reason)
}

// draSource is a source of pods that also knows the node's DRA devices
// and takes their network data (the Kubernetes source).
type draSource interface {
	devices.DeviceAttributes
	DRA() bool
}

// checkDelegates refuses an inline delegate (Multus's delegates) that is
// not a valid CNI config, at start rather than at every pod's ADD.
func checkDelegates(cfg config.Config) error {
	for i, d := range cfg.Delegates {
		if _, err := netselect.NormalizeHostConfList(d, fmt.Sprintf("delegates-%d", i)); err != nil {
			return &config.KeyError{Key: fmt.Sprintf("delegates[%d]", i), Err: err}
		}
	}
	return nil
}

// checkHostRoot refuses a chrootDir that is not a directory (delegates
// would fail one by one at pod start-up) and warns about a binDir missing
// below it.
func checkHostRoot(cfg config.Config, log *slog.Logger) error {
	if cfg.ChrootDir == "" {
		return nil
	}
	fi, err := os.Stat(cfg.ChrootDir)
	if err == nil && !fi.IsDir() {
		err = fmt.Errorf("%s is not a directory", cfg.ChrootDir)
	}
	if err != nil {
		return &config.KeyError{Key: "chrootDir", Err: fmt.Errorf("%w (mount the host's / there, with HostToContainer propagation)", err)}
	}
	for _, d := range cfg.BinDirs {
		if _, err := os.Stat(hostroot.Path(cfg.ChrootDir, d)); err != nil {
			log.Warn("binDir not found below chrootDir (binDir is a host path when chrootDir is set)", "binDir", d, "chrootDir", cfg.ChrootDir, "err", err)
		}
	}
	return nil
}
