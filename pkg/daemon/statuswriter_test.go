package daemon

import (
	"context"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/plexus-cni/plexus/internal/testutil"
	"github.com/plexus-cni/plexus/pkg/api"
)

// asyncWorld is a world with statusWrite async; the writer's workers start
// when run is called.
func asyncWorld(t *testing.T) (*world, func()) {
	t.Helper()
	w := newWorld(t)
	w.m.statusW = newStatusWriter(w.m, quiet)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return w, func() { w.m.statusW.Run(ctx, 2) }
}

func (s *fakeSource) statusOf(key string) (string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.status[key]), s.writes
}

// statusWrite async: the ADD answers without writing the status, even
// with the API refusing it; the record says it is pending; the writer
// retries until it lands, then clears the mark.
func TestAsyncStatusRetriedUntilWritten(t *testing.T) {
	w, run := asyncWorld(t)
	w.pod("p", "a")
	w.src.failSt = true
	if _, err := w.do(api.CmdAdd, "p"); err != nil {
		t.Fatalf("ADD with the status write failing: %v", err)
	}
	rec, err := w.st.Load("c-p")
	if err != nil || !rec.Complete || !rec.StatusPending || len(rec.Status) == 0 {
		t.Fatalf("record after ADD: %+v, %v; want complete with a pending status", rec, err)
	}
	run()
	testutil.Eventually(t, 5*time.Second, "a failed attempt", func() bool { _, n := w.src.statusOf("default/p"); return n >= 1 })
	w.src.mu.Lock()
	w.src.failSt = false
	w.src.mu.Unlock()
	testutil.Eventually(t, 10*time.Second, "status written", func() bool { st, _ := w.src.statusOf("default/p"); return st != "" })
	testutil.Eventually(t, 5*time.Second, "pending mark cleared", func() bool {
		r, err := w.st.Load("c-p")
		return err == nil && !r.StatusPending && r.Complete
	})
	if st, _ := w.src.statusOf("default/p"); st != string(rec.Status) {
		t.Errorf("written %s, recorded %s", st, rec.Status)
	}
}

// A DEL before the write: nothing is written and the record is not
// brought back.
func TestAsyncStatusDroppedAfterDel(t *testing.T) {
	w, run := asyncWorld(t)
	w.pod("p", "a")
	if _, err := w.do(api.CmdAdd, "p"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.do(api.CmdDel, "p"); err != nil {
		t.Fatal(err)
	}
	run()
	testutil.Eventually(t, 5*time.Second, "queue drained", func() bool { return w.m.statusW.pending() == 0 })
	time.Sleep(50 * time.Millisecond)
	if st, n := w.src.statusOf("default/p"); st != "" || n != 0 {
		t.Errorf("status %q written (%d writes) for a deleted sandbox", st, n)
	}
	w.wantRecord("p", false)
}

// A pod gone (404) or replaced (409 on the UID precondition) ends the
// write: one attempt, the mark cleared.
func TestAsyncStatusPodGone(t *testing.T) {
	for name, err := range map[string]error{
		"not found": apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, "p"),
		"replaced":  apierrors.NewConflict(schema.GroupResource{Resource: "pods"}, "p", nil),
	} {
		t.Run(name, func(t *testing.T) {
			w, run := asyncWorld(t)
			w.pod("p", "a")
			w.src.stErr = err
			if _, err := w.do(api.CmdAdd, "p"); err != nil {
				t.Fatal(err)
			}
			run()
			testutil.Eventually(t, 5*time.Second, "pending mark cleared", func() bool {
				rec, err := w.st.Load("c-p")
				return err == nil && !rec.StatusPending
			})
			time.Sleep(1500 * time.Millisecond) // past the first retry's backoff
			if _, n := w.src.statusOf("default/p"); n != 1 {
				t.Errorf("%d writes; want 1", n)
			}
		})
	}
}

// A record left pending by a previous run is written at start.
func TestAsyncStatusPendingAtStart(t *testing.T) {
	w, _ := asyncWorld(t)
	w.pod("p", "a")
	if _, err := w.do(api.CmdAdd, "p"); err != nil {
		t.Fatal(err)
	}
	// A new writer (plexusd restarted) over the same store.
	w.m.statusW = newStatusWriter(w.m, quiet)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.m.statusW.Run(ctx, 1)
	testutil.Eventually(t, 5*time.Second, "status written", func() bool { st, _ := w.src.statusOf("default/p"); return st != "" })
}
