package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/plexus-cni/plexus/pkg/api"
	"github.com/plexus-cni/plexus/pkg/delegate"
	"github.com/plexus-cni/plexus/pkg/detach"
	"github.com/plexus-cni/plexus/pkg/devices"
	"github.com/plexus-cni/plexus/pkg/netselect"
	"github.com/plexus-cni/plexus/pkg/netstatus"
	"github.com/plexus-cni/plexus/pkg/podref"
	"github.com/plexus-cni/plexus/pkg/store"
)

// addOp is one ADD in flight: the request, what the steps found, what
// they did, and how to undo it.
type addOp struct {
	req    *api.Request
	conf   *netConf
	args   cniArgs
	log    *slog.Logger
	ref    podref.Ref
	hasPod bool
	pod    *podref.Pod
	target delegate.Target
	// specs is the plan: resolved, then completed by the devices step.
	specs    []delegate.Spec
	rec      *store.Record
	outcomes []delegate.Outcome
	result   []byte
	undos    []undo
}

// undo reverses one thing a step did.
type undo struct {
	what string
	fn   func(ctx context.Context) error
}

// onUndo pushes what reverses the step's work; undos run in reverse.
func (op *addOp) onUndo(what string, fn func(context.Context) error) {
	op.undos = append(op.undos, undo{what, fn})
}

// addStep is one named step of ADD. reason is the pod Event's reason when
// the step fails; named says its errors already name the pod (the others
// get "pod <ns>/<name>: " in front).
type addStep struct {
	name   string
	reason string
	run    func(ctx context.Context, op *addOp) error
	named  bool
}

// eventReason is the step's reason, except Multus's NoNetworkFound for a
// network that does not exist (the reason Multus users alert on).
func (s addStep) eventReason(err error) string {
	if s.name == "resolve" && errors.Is(err, podref.ErrNotFound) {
		return "NoNetworkFound"
	}
	return s.reason
}

// errAddDone ends an ADD early with op.result (a pod the API never knew).
var errAddDone = errors.New("add done")

// addSteps is the journey of an ADD, in order. A step that changes the
// node pushes its undo first; a failing step's error unwinds the stack.
func (m *Multiplexer) addSteps() []addStep {
	return []addStep{
		{"lookup", "PodLookupFailed", m.lookupStep, true},           // the pod, from the source
		{"resolve", "InvalidNetworkSelection", m.resolveStep, true}, // its networks → the plan
		{"reclaim", "AddFailed", m.reclaimStep, false},              // an earlier unfinished ADD of this sandbox torn down
		{"devices", "AddFailed", m.devicesStep, true},               // device IDs into the plan, device-info staged
		{"save plan", "AddFailed", m.saveStep, false},               // the durable record: DEL can always find what ADD does next
		{"delegates", "AddFailed", m.delegatesStep, false},          // each delegate ADD, in order
		{"routes", "AddFailed", m.routesStep, false},                // default-route moved
		{"verify", "AddFailed", m.verifyStep, false},                // requested IPs/MACs honoured; the runtime's result
		{"status", "AddFailed", m.statusStep, false},                // network-status written
		{"commit", "AddFailed", m.commitStep, false},                // the record marked complete
	}
}

// add runs the ADD steps; on a failure it undoes what was done, in reverse.
func (m *Multiplexer) add(ctx context.Context, log *slog.Logger, req *api.Request, conf *netConf, args cniArgs) ([]byte, error) {
	m.gc.RLock()
	defer m.gc.RUnlock()
	if err := m.Ready(); err != nil {
		return nil, types.NewError(types.ErrTryAgainLater, api.MsgNotReady, err.Error())
	}
	// The steps must be done in time to leave the undo its own budget
	// inside the request's (the undo runs on a fresh context).
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-m.inv.RollbackTimeout))
		defer cancel()
	}
	op := &addOp{req: req, conf: conf, args: args, log: log}
	op.ref, op.hasPod = args.podRef()
	op.target = delegate.Target{ContainerID: req.ContainerID, Netns: req.Netns, CNIPath: req.Path}
	for _, s := range m.addSteps() {
		start := time.Now()
		err := s.run(ctx, op)
		m.metrics.AddStep(s.name, time.Since(start))
		if errors.Is(err, errAddDone) {
			return op.result, nil
		}
		if err != nil {
			if !s.named {
				err = fmt.Errorf("pod %s: %w", op.ref, err)
			}
			m.warn(log.With("step", s.name), op.ref, op.hasPod, s.eventReason(err), err)
			return nil, errors.Join(err, m.unwind(ctx, op))
		}
	}
	if m.statusW != nil && op.rec != nil && op.rec.StatusPending {
		m.statusW.enqueue(op.req.ContainerID) // runs once this ADD releases the sandbox
	}
	if op.rec != nil {
		m.claimW.enqueue(op.rec.Attachments)
	}
	for _, o := range op.outcomes {
		m.normal(log, op.ref, op.hasPod, o)
	}
	if m.hotplug != nil && op.pod != nil {
		m.hotplug.added(op.ref, op.req.ContainerID, op.pod.Annotations[netselect.NetworksAnnotation])
	}
	return op.result, nil
}

// unwind runs the undo stack in reverse on a fresh context bounded by the
// rollback budget. It stops at the first failure: what is left (the record
// above all) stays for the runtime's DEL, which finishes the job.
func (m *Multiplexer) unwind(ctx context.Context, op *addOp) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.inv.RollbackTimeout)
	defer cancel()
	for i := len(op.undos) - 1; i >= 0; i-- {
		u := op.undos[i]
		if err := u.fn(ctx); err != nil {
			op.log.Warn("rollback incomplete; keeping the attachment record for DEL", "undo", u.what, "err", err)
			m.metrics.Rollback(false)
			return &delegate.RollbackError{Err: fmt.Errorf("%s: %w", u.what, err)}
		}
	}
	if len(op.undos) > 0 {
		m.metrics.Rollback(true)
	}
	return nil
}

func (m *Multiplexer) lookupStep(ctx context.Context, op *addOp) error {
	if !op.hasPod {
		return nil
	}
	pod, err := m.src.Pod(ctx, op.ref, op.conf.podAnnotations())
	switch {
	case errors.Is(err, podref.ErrUnknown):
		op.log.Info("pod unknown to the API: empty result", "pod", op.ref.String())
		if op.result, err = delegate.EmptyResult(op.conf.CNIVersion, op.req.IfName); err != nil {
			return err
		}
		return errAddDone
	case err != nil:
		return types.NewError(types.ErrTryAgainLater, "pod lookup failed: "+err.Error(), "")
	}
	op.pod = pod
	return nil
}

// resolveStep turns the pod and config into the plan, with the runtime's
// CNI_ARGS and (for the default network only) runtimeConfig.
func (m *Multiplexer) resolveStep(_ context.Context, op *addOp) error {
	specs, err := netselect.Resolve(m.options(), netselect.Request{Pod: op.pod, RuntimeIfName: op.req.IfName}, m.src, m.confs)
	if err != nil {
		return err
	}
	for i := range specs {
		specs[i].Args = op.args.delegateArgs(specs[i].Args)
		if specs[i].Default {
			specs[i].CapabilityArgs = mergeCaps(op.conf.runtimeCapabilities(), specs[i].CapabilityArgs)
		}
	}
	op.specs = specs
	return nil
}

// reclaimStep handles an ADD for a sandbox that already has a record: a
// complete one is an error (the runtime must DEL first); an unfinished one
// (a daemon crash mid-ADD) is torn down first.
func (m *Multiplexer) reclaimStep(ctx context.Context, op *addOp) error {
	old, err := m.store.Load(op.req.ContainerID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err == nil && old.Complete {
		return types.NewError(types.ErrInvalidEnvironmentVariables, fmt.Sprintf("container %s is already attached; DEL it first", op.req.ContainerID), "")
	}
	op.log.Warn("tearing down an unfinished earlier ADD", "err", err)
	if _, err := m.detach(ctx, op.req.ContainerID, op.req.Netns, op.req.Path); err != nil {
		return fmt.Errorf("clean up unfinished earlier ADD: %w", err)
	}
	return nil
}

func (m *Multiplexer) devicesStep(ctx context.Context, op *addOp) error {
	if m.devices == nil {
		return nil
	}
	specs, err := m.devices.Stage(ctx, op.pod, op.target, op.specs)
	if err != nil {
		return err
	}
	op.specs = specs
	op.onUndo("remove device-info files", func(ctx context.Context) error { return m.devices.Release(ctx, op.target, specs) })
	return nil
}

func (m *Multiplexer) saveStep(_ context.Context, op *addOp) error {
	op.rec = &store.Record{ContainerID: op.req.ContainerID, Netns: op.req.Netns, IfName: op.req.IfName, Pod: op.ref, Attachments: op.specs, CNIPath: op.req.Path}
	if err := m.store.Save(op.rec); err != nil {
		return fmt.Errorf("save attachment record: %w", err)
	}
	op.onUndo("delete attachment record", func(context.Context) error { return m.store.Delete(op.req.ContainerID) })
	if m.cfg.WriteMultusCache && m.multusInv != nil {
		dir := m.multusInv.CacheDir
		if err := detach.WriteMultusPlan(dir, op.req.ContainerID, op.specs); err != nil {
			return fmt.Errorf("write the plan in Multus's format: %w", err)
		}
		op.onUndo("delete the plan in Multus's format", func(context.Context) error { return detach.RemoveMultusPlan(dir, op.req.ContainerID) })
	}
	return nil
}

// delegatesStep runs each delegate's ADD in order. Each DEL is pushed
// before its ADD runs: a delegate that fails is deleted too (CNI spec).
func (m *Multiplexer) delegatesStep(ctx context.Context, op *addOp) error {
	for i := range op.specs {
		s := op.specs[i]
		op.onUndo(fmt.Sprintf("DEL %s (%s)", s.Network, s.IfName), func(ctx context.Context) error {
			return m.inv.Del(ctx, op.target, []delegate.Spec{s})
		})
		res, err := m.inv.AddOne(ctx, op.target, s)
		if err != nil {
			return &delegate.PluginError{Network: s.Network, IfName: s.IfName, Op: "ADD", Err: err, Claim: s.Claim}
		}
		op.outcomes = append(op.outcomes, delegate.Outcome{Spec: s, Result: res})
	}
	return nil
}

func (m *Multiplexer) routesStep(ctx context.Context, op *addOp) error {
	if m.routes == nil {
		return nil
	}
	outcomes, err := m.routes.Apply(ctx, op.target, op.outcomes)
	if err != nil {
		return err
	}
	op.outcomes = outcomes
	return nil
}

func (m *Multiplexer) verifyStep(_ context.Context, op *addOp) error {
	if err := delegate.VerifyRequested(op.outcomes); err != nil {
		return err
	}
	result, err := delegate.DefaultResult(op.outcomes, op.conf.CNIVersion)
	if err != nil {
		return err
	}
	op.result = result
	return nil
}

func (m *Multiplexer) statusStep(ctx context.Context, op *addOp) error {
	statuses, err := netstatus.Build(op.outcomes, devices.ReadDeviceInfo)
	if err != nil {
		return fmt.Errorf("build network-status: %w", err)
	}
	claimNetworkData(op.rec.Attachments, op.outcomes)
	if !op.hasPod {
		return nil
	}
	status, err := netstatus.Marshal(statuses)
	if err != nil {
		return err
	}
	// The API object's UID (a static pod's mirror's), as the lookup found it.
	if op.pod.UID != "" && op.pod.UID != op.ref.UID {
		op.rec.StatusUID = op.pod.UID
	}
	obj := op.rec.StatusObject()
	if m.statusW != nil {
		// statusWrite async: written once the ADD answers (see add).
		op.rec.Status, op.rec.StatusPending = status, true
		return nil
	}
	if err := m.src.WriteStatus(ctx, obj, status); err != nil {
		return fmt.Errorf("write network-status: %w", err)
	}
	op.rec.Status = status
	op.onUndo("clear network-status", func(context.Context) error { return m.src.ClearStatus(obj, status) })
	return nil
}

func (m *Multiplexer) commitStep(_ context.Context, op *addOp) error {
	op.rec.Complete = true
	if err := m.store.Commit(op.rec); err != nil {
		return fmt.Errorf("save attachment record: %w", err)
	}
	return nil
}
