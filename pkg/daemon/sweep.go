package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/plexus-cni/plexus/pkg/detach"
	"github.com/plexus-cni/plexus/pkg/hostroot"
)

// Sweeper finds the records of sandboxes that are gone without a DEL or a
// GC (containerd 1.x never sends CNI GC) and tears them down from the
// record. A record older than the grace period (no ADD or DEL in flight)
// is an orphan when
//   - the CRI runtime, where its socket is configured and it answers, does
//     not list the sandbox, and the record is complete (a sandbox whose ADD
//     runs may not be listed yet); or, without that answer,
//   - its network namespace no longer exists (the path is gone, or no
//     longer a namespace mount) and its pod is not on this node any more
//     (the source can tell, and says no; a pod recreated with another UID
//     counts as gone).
//
// A sandbox the runtime lists, and a record whose pod or netns cannot be
// known, are left alone.
type Sweeper struct {
	m     *Multiplexer
	log   *slog.Logger
	grace time.Duration
	now   func() time.Time
	// cri lists the runtime's sandboxes; nil when no CRI socket is set.
	cri SandboxLister
}

// SweepResult is what one sweep did.
type SweepResult struct {
	Records, Removed, Failed int
	Elapsed                  time.Duration
}

// NewSweeper returns a sweeper of m's records.
func NewSweeper(m *Multiplexer, grace time.Duration, cri SandboxLister, log *slog.Logger) *Sweeper {
	return &Sweeper{m: m, log: log, grace: grace, now: time.Now, cri: cri}
}

// Run sweeps at start, then every interval, until ctx ends.
func (s *Sweeper) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s.Sweep(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sweep runs once.
func (s *Sweeper) Sweep(ctx context.Context) SweepResult {
	start := time.Now()
	var res SweepResult
	ids, err := s.m.store.List()
	if err != nil {
		s.log.Warn("orphan sweep: list records", "err", err)
		return res
	}
	res.Records = len(ids)
	listed := s.runtimeSandboxes(ctx)
	for _, id := range ids {
		if ctx.Err() != nil {
			break
		}
		why, orphan := s.orphan(id, listed)
		if !orphan {
			continue
		}
		if err := s.remove(ctx, id); err != nil {
			res.Failed++
			s.log.Warn("orphan sweep: teardown failed; the record stays", "container", id, "err", err)
			continue
		}
		res.Removed++
		s.log.Info("orphan sweep: tore down a sandbox that is gone", "container", id, "why", why)
	}
	res.Elapsed = time.Since(start)
	if res.Removed > 0 || res.Failed > 0 {
		s.log.Info("orphan sweep done", "records", res.Records, "removed", res.Removed, "failed", res.Failed, "ms", res.Elapsed.Milliseconds())
		nodeReporter{s.m.events}.NodeEvent(res.Failed > 0, "OrphanSweep", fmt.Sprintf("removed %d attachment records of sandboxes that are gone (%d failed) out of %d", res.Removed, res.Failed, res.Records))
	}
	return res
}

func (s *Sweeper) remove(ctx context.Context, id string) error {
	return s.m.withLock(ctx, id, func(ctx context.Context) error {
		_, err := s.m.detach(ctx, id, "", "")
		return err
	})
}

// runtimeSandboxes is the CRI runtime's list, or nil (no socket set, or no
// answer: the netns and pod rule decides alone).
func (s *Sweeper) runtimeSandboxes(ctx context.Context) map[string]bool {
	if s.cri == nil {
		return nil
	}
	listed, err := s.cri.Sandboxes(ctx)
	if err != nil {
		s.log.Warn("orphan sweep: the CRI runtime did not answer; deciding by netns and pod only", "err", err)
		return nil
	}
	return listed
}

// orphan applies the rules above to one record.
func (s *Sweeper) orphan(id string, listed map[string]bool) (string, bool) {
	updated, err := s.m.store.Updated(id)
	if err != nil || s.now().Sub(updated) < s.grace {
		return "", false
	}
	rec, _ := detach.Read(s.m.inv, s.m.store, id)
	if rec == nil {
		return "", false // nothing known about it: never guess
	}
	if listed != nil {
		if listed[id] || !rec.Complete {
			return "", false
		}
		return "the CRI runtime does not list the sandbox", true
	}
	if rec.Pod.Name == "" || rec.Netns == "" || netnsExists(hostroot.Path(s.m.cfg.ChrootDir, rec.Netns)) {
		return "", false
	}
	exists, known := s.m.src.PodExists(rec.Pod)
	if !known || exists {
		return "", false
	}
	return fmt.Sprintf("netns %s gone and pod %s (uid %s) not on this node", rec.Netns, rec.Pod, rec.Pod.UID), true
}

// netnsExists: the path is still a network namespace (a bind mount of
// nsfs). Anything but "gone" or "a plain file now" counts as existing.
func netnsExists(path string) bool {
	var st unix.Statfs_t
	err := unix.Statfs(path, &st)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return false
	case err != nil:
		return true
	}
	return st.Type == unix.NSFS_MAGIC || st.Type == unix.PROC_SUPER_MAGIC
}
