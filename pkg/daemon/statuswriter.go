package daemon

import (
	"context"
	"errors"
	"log/slog"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/workqueue"

	"github.com/plexus-cni/plexus/pkg/store"
)

// Retry bounds of an asynchronous status write (statusWrite async): the
// status lands at most statusRetryMax after the API server is back.
const (
	statusRetryMin = time.Second
	statusRetryMax = 20 * time.Second
	// statusAttempt bounds one attempt (WriteStatus retries inside it),
	// during which the sandbox's lock is held.
	statusAttempt = 5 * time.Second
)

// lockedFunc runs fn holding the lock of a container ID (server.Locked).
type lockedFunc func(ctx context.Context, containerID string, fn func(context.Context) error) error

// statusWriter writes the network-status of sandboxes whose ADD answered
// before it was written (statusWrite async). The record is the queue's
// truth: a sandbox is written while its record is complete and says
// StatusPending, with the record's Status (a hot-plug pass may have
// replaced it meanwhile, or written it itself), under the sandbox's lock
// (Multiplexer.withLock) so that a DEL, GC or the orphan sweeper never
// races a write or has its record brought back.
type statusWriter struct {
	m     *Multiplexer
	log   *slog.Logger
	queue workqueue.TypedRateLimitingInterface[string] // container IDs
}

func newStatusWriter(m *Multiplexer, log *slog.Logger) *statusWriter {
	return &statusWriter{m: m, log: log.With("component", "status-writer"),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](statusRetryMin, statusRetryMax),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "status"})}
}

// enqueue asks for the sandbox's status to be written.
func (w *statusWriter) enqueue(containerID string) { w.queue.Add(containerID) }

// pending is how many sandboxes wait for their status (retries included).
func (w *statusWriter) pending() int { return w.queue.Len() }

// Run writes statuses with workers goroutines until ctx ends, after
// queueing every record a previous run left pending.
func (w *statusWriter) Run(ctx context.Context, workers int) {
	if ids, err := w.m.store.List(); err != nil {
		w.log.Warn("list attachment records for pending statuses", "err", err)
	} else {
		for _, id := range ids {
			if rec, err := w.m.store.Load(id); err == nil && rec.Complete && rec.StatusPending {
				w.enqueue(id)
			}
		}
	}
	runQueue(ctx, w.queue, workers, w.process)
}

func (w *statusWriter) process(ctx context.Context, id string) {
	err := w.m.withLock(ctx, id, func(ctx context.Context) error { return w.write(ctx, id) })
	switch {
	case err == nil:
		w.queue.Forget(id)
	case ctx.Err() != nil:
	case retryStatus(err):
		w.log.Warn("network-status write failed; retrying", "container", id, "err", err, "retries", w.queue.NumRequeues(id))
		w.queue.AddRateLimited(id)
	default:
		w.log.Warn("network-status write refused; not retried", "container", id, "err", err)
		w.queue.Forget(id)
	}
}

// write sends the record's pending status and clears the mark. Nothing to
// do when the record is gone (DEL), unfinished or already written.
func (w *statusWriter) write(ctx context.Context, id string) error {
	rec, err := w.m.store.Load(id)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !rec.Complete || !rec.StatusPending {
		return nil
	}
	actx, cancel := context.WithTimeout(ctx, statusAttempt)
	defer cancel()
	if err := w.m.src.WriteStatus(actx, rec.StatusObject(), rec.Status); err != nil {
		if gone(err) {
			w.log.Info("pod gone or replaced before its network-status was written", "pod", rec.Pod.String(), "err", err)
			return w.clear(rec)
		}
		return err
	}
	return w.clear(rec)
}

// clear drops the pending mark (not forced to disk: a mark a crash brings
// back costs one more PATCH of the same content).
func (w *statusWriter) clear(rec *store.Record) error {
	rec.StatusPending = false
	return w.m.store.Commit(rec)
}

// gone: the pod no longer exists, or its UID precondition failed (another
// pod of that name): the status has nowhere to go.
func gone(err error) bool { return apierrors.IsNotFound(err) || apierrors.IsConflict(err) }

// retryStatus: anything but a refusal the API server will repeat
// (forbidden, invalid, bad request).
func retryStatus(err error) bool {
	return !apierrors.IsForbidden(err) && !apierrors.IsInvalid(err) && !apierrors.IsBadRequest(err)
}
