package k8sclient

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/plexus-cni/plexus/internal/testutil"
	"github.com/plexus-cni/plexus/pkg/podref"
)

// recordingEvents is an eventAPI that keeps what it was sent.
type recordingEvents struct {
	mu      sync.Mutex
	created []*corev1.Event
	patches map[string][]string
	failing int // the next failing calls fail (transiently)
	gone    bool
}

func (r *recordingEvents) createEvent(_ context.Context, e *corev1.Event) (*corev1.Event, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failing > 0 {
		r.failing--
		return nil, errors.New("connection refused")
	}
	r.created = append(r.created, e)
	return e, nil
}

func (r *recordingEvents) patchEvent(_ context.Context, _, name string, patch []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gone {
		return apierrors.NewNotFound(schema.GroupResource{Resource: "events"}, name)
	}
	if r.patches == nil {
		r.patches = map[string][]string{}
	}
	r.patches[name] = append(r.patches[name], string(patch))
	return nil
}

func (r *recordingEvents) counts() (created, patched int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.patches {
		patched += len(p)
	}
	return len(r.created), patched
}

func eventWorld(t *testing.T) (*Client, *recordingEvents, *time.Time) {
	t.Helper()
	rec := &recordingEvents{}
	c := &Client{opts: Options{NodeName: "n1"}}
	c.events = newEventSink(rec, "n1", slog.New(slog.NewTextHandler(io.Discard, nil)))
	now := time.Unix(1_700_000_000, 0)
	c.events.now = func() time.Time { return now }
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c.events.start(ctx)
	return c, rec, &now
}

// An Event names the pod, its type, reason and message, plexus as its
// source; a repeat within 10 minutes raises its count; after that it is
// a new Event. A Node's Events go to the default namespace.
func TestEventsAggregate(t *testing.T) {
	c, rec, now := eventWorld(t)
	pod := podref.Ref{Namespace: "ns", Name: "p", UID: "u1"}
	c.Event(pod, true, "AddFailed", "boom")
	testutil.Eventually(t, 5*time.Second, "created", func() bool { n, _ := rec.counts(); return n == 1 })
	e := rec.created[0]
	if e.InvolvedObject.Name != "p" || e.InvolvedObject.UID != "u1" || e.Type != corev1.EventTypeWarning || e.Reason != "AddFailed" ||
		e.Message != "boom" || e.Source.Component != "plexus" || e.Source.Host != "n1" || e.Count != 1 || e.Namespace != "ns" {
		t.Errorf("event %+v", e)
	}
	c.Event(pod, true, "AddFailed", "boom")
	c.Event(pod, true, "AddFailed", "boom")
	testutil.Eventually(t, 5*time.Second, "counted", func() bool { _, p := rec.counts(); return p == 2 })
	if got := rec.patches[e.Name][1]; got != `{"count":3,"lastTimestamp":"2023-11-14T22:13:20Z"}` {
		t.Errorf("second repeat patch %s", got)
	}
	*now = now.Add(11 * time.Minute) // the eventSink reads now on its goroutine after the queue hands over
	c.Event(pod, true, "AddFailed", "boom")
	c.NodeEvent(false, "MultusConfigReplaced", "x")
	testutil.Eventually(t, 5*time.Second, "a new event after 10 minutes, and the node's", func() bool { n, _ := rec.counts(); return n == 3 })
	if n := rec.created[2]; n.InvolvedObject.Kind != "Node" || n.Namespace != "default" || n.Type != corev1.EventTypeNormal {
		t.Errorf("node event %+v", n)
	}
}

// The spam filter: 25 Events per object at once, then one per 5 minutes;
// another object is not affected. A transient failure is retried; an
// Event whose object expired on the server is created again.
func TestEventsSpamFilterAndRetry(t *testing.T) {
	c, rec, _ := eventWorld(t)
	for i := 0; i < 30; i++ {
		c.Event(podref.Ref{Namespace: "ns", Name: "loud", UID: "u1"}, true, "AddFailed", "attempt "+string(rune('a'+i)))
	}
	c.Event(podref.Ref{Namespace: "ns", Name: "quiet", UID: "u2"}, false, "AddedInterface", "ok")
	testutil.Eventually(t, 5*time.Second, "26 created", func() bool { n, _ := rec.counts(); return n == 26 })
	time.Sleep(100 * time.Millisecond)
	if n, _ := rec.counts(); n != 26 {
		t.Errorf("%d events created; want 25 of the loud pod and 1 of the quiet", n)
	}
	rec.mu.Lock()
	rec.failing = 1
	rec.gone = true
	rec.mu.Unlock()
	c.Event(podref.Ref{Namespace: "ns", Name: "quiet", UID: "u2"}, false, "AddedInterface", "ok") // a repeat: its patch finds nothing
	testutil.Eventually(t, 5*time.Second, "created again after a retry", func() bool { n, _ := rec.counts(); return n == 27 })
}
