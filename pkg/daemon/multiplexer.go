package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/plexus-cni/plexus/pkg/api"
	"github.com/plexus-cni/plexus/pkg/config"
	"github.com/plexus-cni/plexus/pkg/delegate"
	"github.com/plexus-cni/plexus/pkg/detach"
	"github.com/plexus-cni/plexus/pkg/metrics"
	"github.com/plexus-cni/plexus/pkg/netselect"
	"github.com/plexus-cni/plexus/pkg/podref"
	"github.com/plexus-cni/plexus/pkg/server"
	"github.com/plexus-cni/plexus/pkg/store"
)

// Recorder reports what happened to a pod (Kubernetes Events, or log lines
// in manifest mode). It must not block.
type Recorder interface {
	Event(ref podref.Ref, warning bool, reason, msg string)
}

// Multiplexer serves the CNI verbs.
type Multiplexer struct {
	cfg    config.Config
	src    Source
	store  store.Store
	inv    *delegate.Invoker
	events Recorder
	confs  netselect.ConfLoader
	// devices and routes are optional steps (nil: skipped).
	devices Devices
	routes  Routes
	// multusInv runs the DELs of sandboxes Multus attached (libcni's cache
	// in Multus's directory); nil: off.
	multusInv *delegate.Invoker
	// cniconf, when plexusd generates the CNI config, gates readiness
	// and supplies the primary config as the default cluster network.
	cniconf ClusterConfig
	// hotplug, when on, is asked for a pass over each pod whose ADD
	// finished (its annotation may have changed during the ADD).
	hotplug *hotplugger
	// locked runs a function holding a sandbox's request lock (the
	// server's); nil: unlocked (unit tests).
	locked lockedFunc
	// statusW writes network-status after the ADD answers (statusWrite
	// async, Kubernetes source); nil: written inside the ADD.
	statusW *statusWriter
	// claimW writes DRA devices' network data into their ResourceClaims;
	// nil without DRA (enqueue on nil does nothing).
	claimW *claimWriter
	// metrics is nil when metrics are off.
	metrics *metrics.Metrics
	// gc is held shared by ADD/DEL/CHECK and exclusively by GC (CNI spec:
	// no ADD or DEL may run while GC does).
	gc sync.RWMutex
}

var _ server.Handler = (*Multiplexer)(nil)

// NewMultiplexer wires the verbs to their dependencies.
func NewMultiplexer(cfg config.Config, src Source, st store.Store, inv *delegate.Invoker, ev Recorder, dev Devices, rt Routes) *Multiplexer {
	return &Multiplexer{cfg: cfg, src: src, store: st, inv: inv, events: ev, confs: fileConfs{}, devices: dev, routes: rt}
}

// withLock runs fn holding the request lock of containerID, then the GC
// lock shared, in the order ADD, DEL and CHECK take them: for work outside
// a CNI request (status writer, orphan sweeper).
func (m *Multiplexer) withLock(ctx context.Context, containerID string, fn func(context.Context) error) error {
	shared := func(ctx context.Context) error {
		m.gc.RLock()
		defer m.gc.RUnlock()
		return fn(ctx)
	}
	if m.locked == nil {
		return shared(ctx)
	}
	return m.locked(ctx, containerID, shared)
}

// Ready implements server.Handler.
func (m *Multiplexer) Ready() error {
	if f := m.cfg.ReadinessIndicatorFile; f != "" {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("readiness indicator file %s: %w", f, err)
		}
	}
	if m.cniconf != nil {
		if err := m.cniconf.Ready(); err != nil {
			return err
		}
	}
	return m.src.Ready()
}

// ClusterConfig is the generated CNI config's manager (pkg/cniconf).
type ClusterConfig interface {
	Ready() error
	// PrimaryPath is the primary CNI config file, the cluster network
	// when clusterNetwork is not set.
	PrimaryPath() string
}

// Handle implements server.Handler.
func (m *Multiplexer) Handle(ctx context.Context, log *slog.Logger, req *api.Request) ([]byte, error) {
	ctx = delegate.WithLogger(ctx, log)
	conf, err := parseNetConf(req.Config)
	if err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, err.Error(), "")
	}
	args, err := parseCNIArgs(req.Args)
	if err != nil {
		return nil, types.NewError(types.ErrInvalidEnvironmentVariables, err.Error(), "")
	}
	switch req.Command {
	case api.CmdAdd:
		return m.add(ctx, log, req, conf, args)
	case api.CmdDel:
		return nil, m.del(ctx, req)
	case api.CmdCheck:
		return nil, m.check(ctx, req)
	case api.CmdStatus:
		return nil, m.status(ctx, req)
	case api.CmdGC:
		return nil, m.collect(ctx, log, req, conf)
	}
	return nil, types.NewError(types.ErrInvalidEnvironmentVariables, fmt.Sprintf("unknown command %q", req.Command), "")
}

func (m *Multiplexer) options() netselect.Options {
	cluster := m.cfg.ClusterNetwork
	if cluster == "" && m.cniconf != nil {
		cluster = m.cniconf.PrimaryPath()
	}
	return netselect.Options{
		ClusterNetwork:      cluster,
		DefaultNetworks:     m.cfg.DefaultNetworks,
		Delegates:           m.cfg.Delegates,
		PlexusNamespace:     m.cfg.MultusNamespace,
		SystemNamespaces:    m.cfg.SystemNamespaces,
		NamespaceIsolation:  m.cfg.NamespaceIsolation,
		GlobalNamespaces:    m.cfg.EffectiveGlobalNamespaces(),
		ConfDir:             m.cfg.ConfDir,
		MaxAttachments:      m.cfg.MaxAttachments,
		AuxiliaryChain:      m.cfg.AuxiliaryCNIChainName,
		AuxiliaryCNIVersion: m.cfg.CNIVersion,
	}
}

// del tears down from the record; nothing else is consulted, but for a
// sandbox Plexus has no record of: Multus's plan, when Multus attached it
// before the switch.
func (m *Multiplexer) del(ctx context.Context, req *api.Request) error {
	m.gc.RLock()
	defer m.gc.RUnlock()
	rec, err := m.detach(ctx, req.ContainerID, req.Netns, req.Path)
	if rec != nil && err == nil && m.hotplug != nil {
		m.hotplug.deleted(rec.Pod, req.ContainerID)
	}
	if rec != nil && err == nil {
		m.claimW.enqueue(rec.Attachments) // its devices' network data goes
	}
	if err != nil || rec != nil {
		return err
	}
	if plan := m.multusPlan(ctx, req); plan != nil {
		return detach.DetachMultus(ctx, m.multusInv, plan, req.ContainerID, req.Netns, req.Path)
	}
	return nil
}

// multusPlan is Multus's plan for a sandbox Plexus has no record of.
func (m *Multiplexer) multusPlan(ctx context.Context, req *api.Request) *detach.MultusPlan {
	if m.multusInv == nil {
		return nil
	}
	args, _ := parseCNIArgs(req.Args)
	var k8s [][2]string
	for _, k := range []string{"K8S_POD_NAMESPACE", "K8S_POD_NAME", "K8S_POD_INFRA_CONTAINER_ID", "K8S_POD_UID"} {
		k8s = append(k8s, [2]string{k, args.get(k)})
	}
	plan, err := detach.FromMultus(m.multusInv.CacheDir, req.ContainerID, req.IfName, k8s)
	if err != nil {
		// Unreadable: nothing can be replayed; DEL must not be stuck on it.
		delegate.Logger(ctx).Error("sandbox attached by Multus: its delegate cache is unreadable; nothing deleted", "reason", "MultusCacheUnreadable", "err", err)
		return nil
	}
	return plan
}

// detach tears a sandbox down from its record and forgets its status. The
// record is nil when Plexus knew nothing of the sandbox.
func (m *Multiplexer) detach(ctx context.Context, containerID, netns, cniPath string) (*store.Record, error) {
	rec, err := detach.Detach(ctx, m.inv, m.store, containerID, netns, cniPath)
	if rec != nil && rec.Recovered && rec.Pod.Name != "" {
		m.events.Event(rec.Pod, true, "AttachmentRecordCorrupt", fmt.Sprintf("the attachment record of sandbox %s was unreadable; its networks were deleted from libcni's result cache", containerID))
	}
	if err != nil {
		return rec, err
	}
	if err := m.releaseDevices(ctx, delegate.Target{ContainerID: containerID, Netns: netns, CNIPath: cniPath}, rec); err != nil {
		return rec, fmt.Errorf("container %s: %w", containerID, err)
	}
	if rec != nil && m.cfg.WriteMultusCache && m.multusInv != nil {
		if err := detach.RemoveMultusPlan(m.multusInv.CacheDir, containerID); err != nil {
			return rec, fmt.Errorf("container %s: %w", containerID, err)
		}
	}
	switch {
	case rec == nil:
		return nil, nil
	case rec.Recovered:
		// The status written for this sandbox is unknown: it is this
		// sandbox's unless another sandbox of the pod has a record.
		if rec.Pod.Name == "" || m.podHasRecord(rec.Pod) {
			return rec, nil
		}
		if err := m.src.ClearStatus(rec.Pod, nil); err != nil {
			return rec, fmt.Errorf("pod %s: clear network-status: %w", rec.Pod, err)
		}
	case len(rec.Status) > 0:
		if err := m.src.ClearStatus(rec.Pod, rec.Status); err != nil {
			return rec, fmt.Errorf("pod %s: clear network-status: %w", rec.Pod, err)
		}
	}
	return rec, nil
}

// releaseDevices removes the sandbox's device-info files: those its record
// names, or, when there is no readable record (rebuilt from the cache, or
// gone after a DEL the shim replayed with the daemon down), every one named
// after the sandbox.
func (m *Multiplexer) releaseDevices(ctx context.Context, t delegate.Target, rec *store.Record) error {
	switch {
	case m.devices == nil:
		return nil
	case rec == nil || rec.Recovered:
		return m.devices.ReleaseSandbox(ctx, t)
	default:
		return m.devices.Release(ctx, t, rec.Attachments)
	}
}

// podHasRecord reports whether any sandbox of pod (by namespace and name)
// still has a record; an unreadable one counts as having it.
func (m *Multiplexer) podHasRecord(pod podref.Ref) bool {
	ids, err := m.store.List()
	if err != nil {
		return true
	}
	for _, id := range ids {
		p, known := detach.PodOf(m.inv, m.store, id)
		if !known || p.Namespace == pod.Namespace && p.Name == pod.Name {
			return true
		}
	}
	return false
}

// check runs CHECK over every attachment of the container.
func (m *Multiplexer) check(ctx context.Context, req *api.Request) error {
	m.gc.RLock()
	defer m.gc.RUnlock()
	rec, err := m.store.Load(req.ContainerID)
	t := delegate.Target{ContainerID: req.ContainerID, Netns: req.Netns, CNIPath: req.Path}
	if errors.Is(err, store.ErrNotFound) {
		if plan := m.multusPlan(ctx, req); plan != nil {
			// Attached by Multus before the switch: its delegates checked.
			return m.multusInv.Check(ctx, t, plan.Specs)
		}
	}
	if err != nil {
		return types.NewError(types.ErrUnknownContainer, fmt.Sprintf("container %s: no attachment record", req.ContainerID), err.Error())
	}
	var routesErr error
	if m.routes != nil {
		routesErr = m.routes.Check(ctx, t, rec.Attachments)
	}
	if err := errors.Join(m.inv.Check(ctx, t, rec.Attachments), routesErr); err != nil {
		return fmt.Errorf("pod %s: %w", rec.Pod, err)
	}
	return nil
}

// status reports daemon readiness, then forwards STATUS to the networks
// every pod gets (the cluster network and defaultNetworks).
func (m *Multiplexer) status(ctx context.Context, req *api.Request) error {
	if err := m.Ready(); err != nil {
		return types.NewError(api.CodeNotAvailable, api.MsgNotReady, err.Error())
	}
	specs, err := netselect.Resolve(m.options(), netselect.Request{RuntimeIfName: "eth0"}, m.src, m.confs)
	if err != nil {
		return types.NewError(api.CodeNotAvailable, "cannot resolve the cluster network", err.Error())
	}
	for _, s := range specs {
		if err := m.inv.Status(ctx, req.Path, s.ConfList); err != nil {
			return fmt.Errorf("network %q STATUS: %w", s.Network, err)
		}
	}
	return nil
}

func mergeCaps(base, over map[string]interface{}) map[string]interface{} {
	if len(base) == 0 {
		return over
	}
	out := make(map[string]interface{}, len(base)+len(over))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	return out
}

// warn logs a failure with the request's logger (so the line carries the
// request ID) and records it as a Warning Event on the pod.
func (m *Multiplexer) warn(log *slog.Logger, ref podref.Ref, hasPod bool, reason string, err error) {
	log.Warn(err.Error(), "reason", reason)
	if hasPod {
		m.events.Event(ref, true, reason, err.Error())
	}
}

func (m *Multiplexer) normal(log *slog.Logger, ref podref.Ref, hasPod bool, o delegate.Outcome) {
	if !hasPod {
		return
	}
	// Multus's format, which users grep for: "Add net1 [10.1.2.3/24] from ns/nad".
	ips := []string{}
	if res, err := delegate.AsCurrent(o.Result); err == nil {
		for _, ip := range res.IPs {
			ips = append(ips, ip.Address.String())
		}
	}
	msg := fmt.Sprintf("Add %s %v from %s", o.Spec.IfName, ips, o.Spec.Network)
	log.Info(msg, "reason", "AddedInterface")
	m.events.Event(ref, false, "AddedInterface", msg)
}
