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
	"github.com/plexus-cni/plexus/pkg/devices"
	"github.com/plexus-cni/plexus/pkg/netselect"
	"github.com/plexus-cni/plexus/pkg/netstatus"
	"github.com/plexus-cni/plexus/pkg/server"
	"github.com/plexus-cni/plexus/pkg/store"
)

// Recorder reports what happened to a pod (Kubernetes Events, or log lines
// in manifest mode). It must not block.
type Recorder interface {
	Event(ref store.PodRef, warning bool, reason, msg string)
}

// Multiplexer serves the CNI verbs.
type Multiplexer struct {
	cfg    config.Config
	src    Source
	store  store.Store
	inv    *delegate.Invoker
	events Recorder
	confs  netselect.ConfLoader
	hooks  []AttachHook
	// cniconf, when plexusd generates the CNI config, gates readiness
	// and supplies the primary config as the default cluster network.
	cniconf ClusterConfig
	// gc is held shared by ADD/DEL/CHECK and exclusively by GC (CNI spec:
	// no ADD or DEL may run while GC does).
	gc sync.RWMutex
}

var _ server.Handler = (*Multiplexer)(nil)

// NewMultiplexer wires the verbs to their dependencies.
func NewMultiplexer(cfg config.Config, src Source, st store.Store, inv *delegate.Invoker, ev Recorder, hooks ...AttachHook) *Multiplexer {
	return &Multiplexer{cfg: cfg, src: src, store: st, inv: inv, events: ev, confs: fileConfs{}, hooks: hooks}
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
		ClusterNetwork:     cluster,
		DefaultNetworks:    m.cfg.DefaultNetworks,
		PlexusNamespace:    m.cfg.MultusNamespace,
		SystemNamespaces:   m.cfg.SystemNamespaces,
		NamespaceIsolation: m.cfg.NamespaceIsolation,
		GlobalNamespaces:   m.cfg.EffectiveGlobalNamespaces(),
		ConfDir:            m.cfg.ConfDir,
		MaxAttachments:     m.cfg.MaxAttachments,
	}
}

// add: look up the pod, resolve its networks, record the plan, run the
// delegates, build and write network-status; undo everything on failure.
func (m *Multiplexer) add(ctx context.Context, log *slog.Logger, req *api.Request, conf *netConf, args cniArgs) ([]byte, error) {
	m.gc.RLock()
	defer m.gc.RUnlock()
	if err := m.Ready(); err != nil {
		return nil, types.NewError(types.ErrTryAgainLater, api.MsgNotReady, err.Error())
	}
	// The ADD must be done in time to leave the undo its own budget
	// inside the request's (the undo runs on a fresh context).
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-m.inv.RollbackTimeout))
		defer cancel()
	}
	ref, hasPod := args.podRef()
	pod, err := m.lookupPod(ctx, log, ref, hasPod, conf.podAnnotations())
	if errors.Is(err, netselect.ErrPodUnknown) {
		log.Info("pod unknown to the API: empty result", "pod", ref.String())
		return delegate.EmptyResult(conf.CNIVersion, req.IfName)
	}
	if err != nil {
		return nil, err
	}
	specs, err := m.resolve(log, ref, pod, req, conf, args)
	if err != nil {
		return nil, err
	}
	if err := m.reclaim(ctx, log, req); err != nil {
		return nil, err
	}
	target := delegate.Target{ContainerID: req.ContainerID, Netns: req.Netns, CNIPath: req.Path}
	if specs, err = m.beforeAdd(ctx, pod, target, specs); err != nil {
		m.warn(log, ref, hasPod, "AddFailed", err)
		return nil, fmt.Errorf("pod %s: %w", ref, errors.Join(err, m.undoHooks(ctx, target, specs)))
	}
	rec := &store.Record{ContainerID: req.ContainerID, Netns: req.Netns, IfName: req.IfName, Pod: ref, Attachments: specs}
	if err := m.store.Save(rec); err != nil {
		return nil, fmt.Errorf("pod %s: save attachment record: %w", ref, errors.Join(err, m.undoHooks(ctx, target, specs)))
	}
	outcomes, err := m.inv.Add(ctx, target, specs)
	if err != nil {
		m.forget(ctx, log, target, specs, err)
		m.warn(log, ref, hasPod, "AddFailed", err)
		return nil, fmt.Errorf("pod %s: %w", ref, err)
	}
	result, err := m.finish(ctx, ref, hasPod, rec, target, outcomes, conf.CNIVersion)
	if err != nil {
		rbErr := m.inv.Rollback(ctx, target, specs)
		if rbErr == nil {
			m.forget(ctx, log, target, specs, nil)
		}
		m.warn(log, ref, hasPod, "AddFailed", err)
		return nil, errors.Join(fmt.Errorf("pod %s: %w", ref, err), rbErr)
	}
	for _, o := range outcomes {
		m.normal(log, ref, hasPod, o)
	}
	return result, nil
}

// lookupPod returns nil (and no error) for a request without K8S_* args.
func (m *Multiplexer) lookupPod(ctx context.Context, log *slog.Logger, ref store.PodRef, hasPod bool, runtimeAnnotations map[string]string) (*netselect.Pod, error) {
	if !hasPod {
		return nil, nil
	}
	pod, err := m.src.Pod(ctx, ref, runtimeAnnotations)
	if errors.Is(err, netselect.ErrPodUnknown) {
		return nil, err
	}
	if err != nil {
		m.warn(log, ref, true, "PodLookupFailed", err)
		return nil, types.NewError(types.ErrTryAgainLater, "pod lookup failed: "+err.Error(), "")
	}
	return pod, nil
}

// resolve turns the pod and config into the delegate plan, with the
// runtime's CNI_ARGS and (for the default network only) runtimeConfig.
func (m *Multiplexer) resolve(log *slog.Logger, ref store.PodRef, pod *netselect.Pod, req *api.Request, conf *netConf, args cniArgs) ([]delegate.Spec, error) {
	specs, err := netselect.Resolve(m.options(), netselect.Request{Pod: pod, RuntimeIfName: req.IfName}, m.src, m.confs)
	if err != nil {
		m.warn(log, ref, pod != nil, "InvalidNetworkSelection", err)
		return nil, err
	}
	for i := range specs {
		specs[i].Args = args.delegateArgs(specs[i].Args)
		if specs[i].Default {
			specs[i].CapabilityArgs = mergeCaps(conf.runtimeCapabilities(), specs[i].CapabilityArgs)
		}
	}
	return specs, nil
}

// reclaim handles an ADD for a container that already has a record: a
// complete one is an error (the runtime must DEL first); an incomplete one
// (a daemon crash mid-ADD) is torn down first.
func (m *Multiplexer) reclaim(ctx context.Context, log *slog.Logger, req *api.Request) error {
	old, err := m.store.Load(req.ContainerID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err == nil && old.Complete {
		return types.NewError(types.ErrInvalidEnvironmentVariables, fmt.Sprintf("container %s is already attached; DEL it first", req.ContainerID), "")
	}
	log.Warn("tearing down an unfinished earlier ADD", "err", err)
	if _, err := detach.Detach(ctx, m.inv, m.store, req.ContainerID, req.Netns, req.Path); err != nil {
		return fmt.Errorf("clean up unfinished earlier ADD: %w", err)
	}
	return nil
}

// finish builds the runtime's result and network-status, writes the
// status and marks the record complete.
func (m *Multiplexer) finish(ctx context.Context, ref store.PodRef, hasPod bool, rec *store.Record, t delegate.Target, outcomes []delegate.Outcome, cniVersion string) ([]byte, error) {
	outcomes, err := m.afterAdd(ctx, t, outcomes)
	if err != nil {
		return nil, err
	}
	if err := delegate.VerifyRequested(outcomes); err != nil {
		return nil, err
	}
	result, err := delegate.DefaultResult(outcomes, cniVersion)
	if err != nil {
		return nil, err
	}
	statuses, err := netstatus.Build(outcomes, devices.ReadDeviceInfo)
	if err != nil {
		return nil, fmt.Errorf("build network-status: %w", err)
	}
	if hasPod {
		status, err := netstatus.Marshal(statuses)
		if err != nil {
			return nil, err
		}
		if err := m.src.WriteStatus(ctx, ref, status); err != nil {
			return nil, fmt.Errorf("write network-status: %w", err)
		}
		rec.Status = status
	}
	rec.Complete = true
	if err := m.store.Commit(rec); err != nil {
		return nil, fmt.Errorf("save attachment record: %w", err)
	}
	return result, nil
}

// forget drops the record after a fully rolled-back ADD. If the rollback
// failed (cause is a RollbackError) the record stays for the runtime's DEL.
func (m *Multiplexer) forget(ctx context.Context, log *slog.Logger, t delegate.Target, specs []delegate.Spec, cause error) {
	var rb *delegate.RollbackError
	if errors.As(cause, &rb) {
		log.Warn("rollback incomplete; keeping the attachment record for DEL", "err", cause)
		return
	}
	if err := m.undoHooks(ctx, t, specs); err != nil {
		log.Warn("rollback incomplete; keeping the attachment record for DEL", "err", err)
		return
	}
	if err := m.store.Delete(t.ContainerID); err != nil {
		log.Error("delete attachment record", "err", err)
	}
}

// undoHooks runs the hooks' AfterDel for an ADD being undone, on a fresh
// context bounded by the rollback budget (the ADD's may have expired).
func (m *Multiplexer) undoHooks(ctx context.Context, t delegate.Target, specs []delegate.Spec) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.inv.RollbackTimeout)
	defer cancel()
	return m.afterDel(ctx, t, specs)
}

// del tears down from the record; nothing else is consulted.
func (m *Multiplexer) del(ctx context.Context, req *api.Request) error {
	m.gc.RLock()
	defer m.gc.RUnlock()
	return m.detach(ctx, req.ContainerID, req.Netns, req.Path)
}

// detach tears a sandbox down from its record and forgets its status.
func (m *Multiplexer) detach(ctx context.Context, containerID, netns, cniPath string) error {
	rec, err := detach.Detach(ctx, m.inv, m.store, containerID, netns, cniPath)
	if rec != nil && rec.Recovered && rec.Pod.Name != "" {
		m.events.Event(rec.Pod, true, "AttachmentRecordCorrupt", fmt.Sprintf("the attachment record of sandbox %s was unreadable; its networks were deleted from libcni's result cache", containerID))
	}
	if err != nil {
		return err
	}
	if rec != nil && rec.Recovered {
		// The status written for this sandbox is unknown: it is this
		// sandbox's unless another sandbox of the pod has a record.
		if rec.Pod.Name == "" || m.podHasRecord(rec.Pod) {
			return nil
		}
		if err := m.src.ClearStatus(rec.Pod, nil); err != nil {
			return fmt.Errorf("pod %s: clear network-status: %w", rec.Pod, err)
		}
	}
	if rec != nil {
		if err := m.afterDel(ctx, delegate.Target{ContainerID: containerID, Netns: netns, CNIPath: cniPath}, rec.Attachments); err != nil {
			return fmt.Errorf("pod %s: %w", rec.Pod, err)
		}
	}
	if rec != nil && len(rec.Status) > 0 {
		if err := m.src.ClearStatus(rec.Pod, rec.Status); err != nil {
			return fmt.Errorf("pod %s: clear network-status: %w", rec.Pod, err)
		}
	}
	return nil
}

// podHasRecord reports whether any sandbox of pod (by namespace and name)
// still has a record; an unreadable one counts as having it.
func (m *Multiplexer) podHasRecord(pod store.PodRef) bool {
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
	if err != nil {
		return types.NewError(types.ErrUnknownContainer, fmt.Sprintf("container %s: no attachment record", req.ContainerID), err.Error())
	}
	t := delegate.Target{ContainerID: req.ContainerID, Netns: req.Netns, CNIPath: req.Path}
	if err := errors.Join(m.inv.Check(ctx, t, rec.Attachments), m.checkHooks(ctx, t, rec.Attachments)); err != nil {
		return fmt.Errorf("pod %s: %w", rec.Pod, err)
	}
	return nil
}

// status reports daemon readiness, then forwards STATUS to the networks
// every pod gets (the cluster network and defaultNetworks).
func (m *Multiplexer) status(ctx context.Context, req *api.Request) error {
	if err := m.Ready(); err != nil {
		return types.NewError(statusNotAvailable, api.MsgNotReady, err.Error())
	}
	specs, err := netselect.Resolve(m.options(), netselect.Request{RuntimeIfName: "eth0"}, m.src, m.confs)
	if err != nil {
		return types.NewError(statusNotAvailable, "cannot resolve the cluster network", err.Error())
	}
	for _, s := range specs {
		if err := m.inv.Status(ctx, req.Path, s.ConfList); err != nil {
			return fmt.Errorf("network %q STATUS: %w", s.Network, err)
		}
	}
	return nil
}

// statusNotAvailable is CNI STATUS code 50: cannot service ADD.
const statusNotAvailable uint = 50

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
func (m *Multiplexer) warn(log *slog.Logger, ref store.PodRef, hasPod bool, reason string, err error) {
	log.Warn(err.Error(), "reason", reason)
	if hasPod {
		m.events.Event(ref, true, reason, err.Error())
	}
}

func (m *Multiplexer) normal(log *slog.Logger, ref store.PodRef, hasPod bool, o delegate.Outcome) {
	if !hasPod {
		return
	}
	msg := fmt.Sprintf("Add %s from %s", o.Spec.IfName, o.Spec.Network)
	if res, err := delegate.AsCurrent(o.Result); err == nil {
		for _, ip := range res.IPs {
			msg += " " + ip.Address.String()
		}
	}
	log.Info(msg, "reason", "AddedInterface")
	m.events.Event(ref, false, "AddedInterface", msg)
}
