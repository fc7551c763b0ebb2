package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"golang.org/x/time/rate"
	"k8s.io/client-go/util/workqueue"

	"github.com/plexus-cni/plexus/pkg/delegate"
	"github.com/plexus-cni/plexus/pkg/devices"
	"github.com/plexus-cni/plexus/pkg/netselect"
	"github.com/plexus-cni/plexus/pkg/netstatus"
	"github.com/plexus-cni/plexus/pkg/podref"
	"github.com/plexus-cni/plexus/pkg/store"
)

// Hot-plug: a running pod's networks annotation is reconciled against its
// attachment record (docs/hotplug.md). The journey of one pass, for one
// pod, under its sandbox's lock and a low-priority worker slot:
//
//	recover  attachments a crashed pass left marked: "adding" ones are
//	         deleted (rolled back), "removing" ones are deleted (finished)
//	diff     netselect.Diff: what to remove and what to add, every new
//	         element checked as at ADD before anything changes
//	devices  new device attachments get an allocated device not in use
//	remove   each: marked "removing" (durable), delegate DEL, dropped
//	add      each: appended "adding" (durable), delegate ADD, routes,
//	         requested IPs/MAC verified; a failure is rolled back
//	status   one network-status PATCH (UID-preconditioned); then the
//	         adds are committed; if it fails they are rolled back
//
// A pass that fails is retried with backoff (level-triggered: the next
// pass diffs again from the record); bad input is not retried until the
// annotation changes again.

// BackgroundRunner runs fn serialized with the CNI requests of
// containerID, in the server's worker pool, after any CNI request that
// waits (server.Server.Background).
type BackgroundRunner func(ctx context.Context, containerID string, fn func(context.Context) error) error

// networksWatcher is the source's side of hot-plug (k8sclient.Client).
type networksWatcher interface {
	// OnNetworksChange registers fn for pods whose annotation changed.
	OnNetworksChange(fn func(podref.Ref))
	// Networks is the pod's networks annotation as known now.
	Networks(ref podref.Ref) (string, bool)
}

// hotplugger is the hot-plug controller.
type hotplugger struct {
	m     *Multiplexer
	run   BackgroundRunner
	src   networksWatcher
	log   *slog.Logger
	queue workqueue.TypedRateLimitingInterface[podref.Ref]
	// now is time.Now (tests may replace it).
	now func() time.Time
	// sandboxes remembers each pod's latest sandbox (a hint, checked
	// against the record), so a pass does not scan every record.
	mu        sync.Mutex
	sandboxes map[podref.Ref]string
}

// Retry backoff of a failed pass, per pod.
const (
	hotplugRetryMin = time.Second
	hotplugRetryMax = 5 * time.Minute
)

func newHotplugger(m *Multiplexer, run BackgroundRunner, src networksWatcher, log *slog.Logger) *hotplugger {
	limiter := workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[podref.Ref](hotplugRetryMin, hotplugRetryMax),
		&workqueue.TypedBucketRateLimiter[podref.Ref]{Limiter: rate.NewLimiter(rate.Limit(50), 100)},
	)
	return &hotplugger{m: m, run: run, src: src, log: log.With("component", "hotplug"), now: time.Now, sandboxes: map[podref.Ref]string{},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(limiter, workqueue.TypedRateLimitingQueueConfig[podref.Ref]{Name: "hotplug"})}
}

// Enqueue asks for a pass over the pod (by namespace and name).
func (h *hotplugger) Enqueue(ref podref.Ref) {
	h.queue.Add(podref.Ref{Namespace: ref.Namespace, Name: ref.Name})
}

// added is told of each finished ADD: the sandbox is remembered, and the
// pod gets a pass if its annotation changed while the ADD ran (the change
// event found no complete record then).
func (h *hotplugger) added(ref podref.Ref, containerID, networks string) {
	key := podref.Ref{Namespace: ref.Namespace, Name: ref.Name}
	h.mu.Lock()
	h.sandboxes[key] = containerID
	h.mu.Unlock()
	if now, ok := h.src.Networks(ref); ok && now != networks {
		h.queue.Add(key)
	}
}

// deleted forgets the sandbox after its DEL.
func (h *hotplugger) deleted(ref podref.Ref, containerID string) {
	key := podref.Ref{Namespace: ref.Namespace, Name: ref.Name}
	h.mu.Lock()
	if h.sandboxes[key] == containerID {
		delete(h.sandboxes, key)
	}
	h.mu.Unlock()
}

// Run processes the queue with workers goroutines until ctx ends. Once the
// source is ready it enqueues every pod that has a record (start-up pass:
// crashed changes converge, changes made while plexusd was down apply).
func (h *hotplugger) Run(ctx context.Context, workers int) {
	go h.startupPass(ctx)
	runQueue(ctx, h.queue, workers, h.process)
}

func (h *hotplugger) startupPass(ctx context.Context) {
	for h.m.src.Ready() != nil {
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	ids, err := h.m.store.List()
	if err != nil {
		h.log.Warn("list attachment records for the start-up pass", "err", err)
		return
	}
	n := 0
	for _, id := range ids {
		if rec, err := h.m.store.Load(id); err == nil && rec.Pod.Name != "" {
			h.Enqueue(rec.Pod)
			n++
		}
	}
	h.log.Info("start-up pass queued", "pods", n)
}

func (h *hotplugger) process(ctx context.Context, ref podref.Ref) {
	err := h.sync(ctx, ref)
	var perm *permanentError
	switch {
	case err == nil:
		h.queue.Forget(ref)
	case errors.As(err, &perm):
		h.m.metrics.Hotplug("refused")
		h.queue.Forget(ref)
	case ctx.Err() != nil:
	default:
		h.m.metrics.Hotplug("failed")
		h.log.Warn("hot-plug pass failed; retrying", "pod", ref.String(), "err", err, "retries", h.queue.NumRequeues(ref))
		h.queue.AddRateLimited(ref)
	}
}

// permanentError is a failure that retrying cannot fix (bad input): the
// pod waits for its annotation to change again.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// sync finds the pod's sandbox record and runs one pass under its lock.
func (h *hotplugger) sync(ctx context.Context, ref podref.Ref) error {
	id, err := h.sandboxOf(ref)
	if err != nil || id == "" {
		return err
	}
	ctx = delegate.WithBackground(delegate.WithLogger(ctx, h.log))
	return h.run(ctx, id, func(ctx context.Context) error {
		h.m.gc.RLock()
		defer h.m.gc.RUnlock()
		return h.pass(ctx, id)
	})
}

// sandboxOf is the container ID of the pod's newest complete record; ""
// when it has none (not started yet, or gone).
func (h *hotplugger) sandboxOf(ref podref.Ref) (string, error) {
	h.mu.Lock()
	hint, ok := h.sandboxes[ref]
	h.mu.Unlock()
	if ok {
		if rec, err := h.m.store.Load(hint); err == nil && rec.Complete && rec.Pod.Namespace == ref.Namespace && rec.Pod.Name == ref.Name {
			return hint, nil
		}
		h.mu.Lock()
		if h.sandboxes[ref] == hint {
			delete(h.sandboxes, ref)
		}
		h.mu.Unlock()
	}
	ids, err := h.m.store.List()
	if err != nil {
		return "", err
	}
	var best string
	var bestAt time.Time
	for _, id := range ids {
		rec, err := h.m.store.Load(id)
		if err != nil || !rec.Complete || rec.Pod.Namespace != ref.Namespace || rec.Pod.Name != ref.Name {
			continue
		}
		at, _ := h.m.store.Updated(id)
		if best == "" || at.After(bestAt) {
			best, bestAt = id, at
		}
	}
	return best, nil
}

// hpass is one pass in flight.
type hpass struct {
	h      *hotplugger
	rec    *store.Record
	target delegate.Target
	log    *slog.Logger
}

func (h *hotplugger) pass(ctx context.Context, id string) error {
	rec, err := h.m.store.Load(id)
	if errors.Is(err, store.ErrNotFound) {
		return nil // deleted while the pass waited
	}
	if err != nil {
		return err
	}
	if !rec.Complete {
		return nil // an ADD in progress, or a crashed one the runtime will DEL
	}
	p := &hpass{h: h, rec: rec, log: h.log.With("pod", rec.Pod.String(), "container", id),
		target: delegate.Target{ContainerID: id, Netns: rec.Netns, CNIPath: rec.CNIPath}}
	if err := p.recover(ctx); err != nil {
		return err
	}
	if exists, known := h.m.src.PodExists(rec.Pod); known && !exists {
		return nil // the runtime's DEL will come
	}
	pod, err := h.m.src.Pod(ctx, rec.Pod, nil)
	if errors.Is(err, podref.ErrUnknown) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pod %s: %w", rec.Pod, err)
	}
	ch, err := p.plan(ctx, pod)
	if err != nil {
		return err
	}
	if ch.Empty() && !rec.StatusStale {
		return nil
	}
	start := h.now()
	removed, err := p.remove(ctx, ch.Remove)
	if err != nil {
		return err
	}
	added, err := p.add(ctx, ch.Add)
	if err != nil {
		if serr := p.writeStatus(ctx, pod, nil); serr != nil {
			p.log.Warn("network-status after a failed hot-plug", "err", serr)
		}
		return err
	}
	if err := p.writeStatus(ctx, pod, added); err != nil {
		return errors.Join(err, p.rollback(ctx, added))
	}
	h.m.claimW.enqueue(removed)
	h.m.claimW.enqueue(p.rec.Attachments)
	for _, s := range removed {
		msg := fmt.Sprintf("Remove %s from %s", s.IfName, s.Network)
		p.log.Info(msg, "reason", "RemovedInterface")
		h.m.events.Event(rec.Pod, false, "RemovedInterface", msg)
	}
	for _, o := range added {
		h.m.normal(p.log, rec.Pod, true, o)
	}
	if len(removed)+len(added) > 0 {
		h.m.metrics.Hotplug("applied")
		p.log.Info("hot-plug change applied", "removed", len(removed), "added", len(added), "ms", h.now().Sub(start).Milliseconds())
	}
	return nil
}

// recover finishes what a crashed pass left: every attachment still marked
// is deleted (an unfinished add is rolled back, an unfinished removal
// finished); the next diff adds back what the annotation still asks for.
func (p *hpass) recover(ctx context.Context) error {
	for i := len(p.rec.Attachments) - 1; i >= 0; i-- {
		s := p.rec.Attachments[i]
		if s.Hotplug == "" {
			continue
		}
		p.log.Warn("finishing a hot-plug change a crash interrupted", "network", s.Network, "ifname", s.IfName, "state", s.Hotplug)
		if err := p.drop(ctx, i); err != nil {
			return err
		}
	}
	return nil
}

// plan diffs the annotation against the record (adopting a record from
// before hot-plug first) and stages the devices of new attachments.
func (p *hpass) plan(ctx context.Context, pod *podref.Pod) (netselect.Change, error) {
	m := p.h.m
	opts := m.options()
	if netselect.NeedsAdoption(opts, pod, p.rec.Attachments) {
		adopted, err := netselect.Adopt(opts, pod, p.rec.IfName, p.rec.Attachments, m.src, m.confs)
		if err != nil {
			p.fail(pod, "HotplugUnsupported", fmt.Errorf("pod %s: hot-plug: %w; delete and recreate the pod to change its networks", p.rec.Pod, err))
			return netselect.Change{}, &permanentError{err}
		}
		p.rec.Attachments = adopted
		if err := m.store.Commit(p.rec); err != nil {
			return netselect.Change{}, err
		}
	}
	ch, err := netselect.Diff(opts, pod, p.rec.IfName, p.rec.Attachments, m.src, m.confs)
	if err != nil {
		reason := "InvalidNetworkSelection"
		if errors.Is(err, podref.ErrNotFound) {
			reason = "NoNetworkFound"
		}
		err = fmt.Errorf("hot-plug: %w", err)
		p.fail(pod, reason, err)
		var coded interface{ CNICode() uint }
		if errors.As(err, &coded) && coded.CNICode() == 11 {
			return netselect.Change{}, err // API trouble: retried
		}
		return netselect.Change{}, &permanentError{err}
	}
	if devices.NeedsDevices(ch.Add) && m.devices != nil {
		staged, err := m.devices.StageMore(ctx, pod, p.target, p.rec.Attachments, ch.Add)
		if err != nil {
			err = fmt.Errorf("hot-plug: %w", err)
			p.fail(pod, "AddFailed", err)
			return netselect.Change{}, &permanentError{err}
		}
		ch.Add = staged
	}
	return ch, nil
}

// fail logs and records a Warning Event on the pod.
func (p *hpass) fail(pod *podref.Pod, reason string, err error) {
	ref := p.rec.Pod
	if pod.UID != "" {
		ref.UID = pod.UID
	}
	p.h.m.warn(p.log, ref, true, reason, err)
}

// remove deletes the attachments at idx (last first), each marked in the
// record before its DEL and dropped from it after.
func (p *hpass) remove(ctx context.Context, idx []int) ([]delegate.Spec, error) {
	var removed []delegate.Spec
	for _, i := range idx {
		s := p.rec.Attachments[i]
		p.rec.Attachments[i].Hotplug = delegate.HotplugRemoving
		if err := p.h.m.store.Save(p.rec); err != nil {
			return removed, fmt.Errorf("save attachment record: %w", err)
		}
		if err := p.drop(ctx, i); err != nil {
			err = fmt.Errorf("pod %s: hot-plug: remove %s (%s): %w", p.rec.Pod, s.Network, s.IfName, err)
			p.h.m.warn(p.log, p.rec.Pod, true, "RemoveInterfaceFailed", err)
			return removed, err
		}
		removed = append(removed, s)
	}
	return removed, nil
}

// drop runs the DEL of attachment i, removes its device-info file and
// takes it out of the record (saved).
func (p *hpass) drop(ctx context.Context, i int) error {
	m := p.h.m
	s := p.rec.Attachments[i]
	if err := m.inv.Del(ctx, p.target, []delegate.Spec{s}); err != nil {
		return err
	}
	if m.devices != nil {
		if err := m.devices.Release(ctx, p.target, []delegate.Spec{s}); err != nil {
			return err
		}
	}
	p.rec.Attachments = slices.Delete(p.rec.Attachments, i, i+1)
	p.rec.StatusStale = true
	if err := m.store.Save(p.rec); err != nil {
		return fmt.Errorf("save attachment record: %w", err)
	}
	return nil
}

// add runs each new attachment's ADD, appended to the record as "adding"
// first. A failed one is rolled back (with those added before it in this
// pass) and the error names it.
func (p *hpass) add(ctx context.Context, specs []delegate.Spec) ([]delegate.Outcome, error) {
	m := p.h.m
	var added []delegate.Outcome
	for _, s := range specs {
		s.Hotplug = delegate.HotplugAdding
		p.rec.Attachments = append(p.rec.Attachments, s)
		if err := m.store.Save(p.rec); err != nil {
			p.rec.Attachments = p.rec.Attachments[:len(p.rec.Attachments)-1]
			return nil, errors.Join(fmt.Errorf("save attachment record: %w", err), p.rollback(ctx, added))
		}
		o, err := p.addOne(ctx, s)
		if err != nil {
			err = fmt.Errorf("pod %s: hot-plug: %w", p.rec.Pod, err)
			p.h.m.warn(p.log, p.rec.Pod, true, "AddFailed", err)
			return nil, errors.Join(err, p.rollback(ctx, append(added, delegate.Outcome{Spec: s})))
		}
		added = append(added, o)
	}
	return added, nil
}

// addOne is the ADD of one attachment with the hooks of ADD.
func (p *hpass) addOne(ctx context.Context, s delegate.Spec) (delegate.Outcome, error) {
	m := p.h.m
	res, err := m.inv.AddOne(ctx, p.target, s)
	if err != nil {
		return delegate.Outcome{}, &delegate.PluginError{Network: s.Network, IfName: s.IfName, Op: "ADD", Err: err, Claim: s.Claim}
	}
	out := []delegate.Outcome{{Spec: s, Result: res}}
	if m.routes != nil {
		if out, err = m.routes.Apply(ctx, p.target, out); err != nil {
			return delegate.Outcome{}, err
		}
	}
	if err := delegate.VerifyRequested(out); err != nil {
		return delegate.Outcome{}, err
	}
	return out[0], nil
}

// rollback deletes the attachments this pass added (last first), on a
// fresh context bounded by the rollback budget.
func (p *hpass) rollback(ctx context.Context, added []delegate.Outcome) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.h.m.inv.RollbackTimeout)
	defer cancel()
	for j := len(added) - 1; j >= 0; j-- {
		i := slices.IndexFunc(p.rec.Attachments, func(s delegate.Spec) bool {
			return s.Hotplug == delegate.HotplugAdding && s.IfName == added[j].Spec.IfName
		})
		if i < 0 {
			continue
		}
		if err := p.drop(ctx, i); err != nil {
			// Left marked in the record: the next pass, or the sandbox's DEL, deletes it.
			return &delegate.RollbackError{Err: fmt.Errorf("DEL %s (%s): %w", added[j].Spec.Network, added[j].Spec.IfName, err)}
		}
	}
	return nil
}

// writeStatus patches the pod's network-status to match the record: the
// entries of attachments still held, then those of added; on success the
// added attachments are committed (their marks cleared). Without change
// since the last write it does nothing.
func (p *hpass) writeStatus(ctx context.Context, pod *podref.Pod, added []delegate.Outcome) error {
	if !p.rec.StatusStale && len(added) == 0 {
		return nil
	}
	var old []nadv1.NetworkStatus
	if len(p.rec.Status) > 0 {
		if err := json.Unmarshal(p.rec.Status, &old); err != nil {
			return fmt.Errorf("pod %s: the recorded network-status is unreadable: %w", p.rec.Pod, err)
		}
	}
	held := map[string]bool{}
	for _, s := range p.rec.Attachments {
		if s.Hotplug == "" {
			held[s.IfName] = true
		}
	}
	statuses := slices.DeleteFunc(old, func(st nadv1.NetworkStatus) bool { return st.Interface != "" && !held[st.Interface] })
	more, err := netstatus.Build(added, devices.ReadDeviceInfo)
	if err != nil {
		return fmt.Errorf("build network-status: %w", err)
	}
	statuses = append(statuses, more...)
	status, err := netstatus.Marshal(statuses)
	if err != nil {
		return err
	}
	obj := p.rec.Pod
	if pod.UID != "" {
		obj.UID = pod.UID
	}
	if err := p.h.m.src.WriteStatus(ctx, obj, status); err != nil {
		return fmt.Errorf("pod %s: hot-plug: write network-status: %w", p.rec.Pod, err)
	}
	for i, s := range p.rec.Attachments {
		if s.Hotplug == delegate.HotplugAdding && slices.ContainsFunc(added, func(o delegate.Outcome) bool { return o.Spec.IfName == s.IfName }) {
			p.rec.Attachments[i].Hotplug = ""
		}
	}
	claimNetworkData(p.rec.Attachments, added)
	p.rec.Status, p.rec.StatusStale, p.rec.StatusPending = status, false, false
	if err := p.h.m.store.Commit(p.rec); err != nil {
		return fmt.Errorf("save attachment record: %w", err)
	}
	return nil
}
