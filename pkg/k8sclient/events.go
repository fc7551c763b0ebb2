package k8sclient

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"

	"github.com/plexus-cni/plexus/pkg/podref"
)

// Events are recorded by plexusd itself, not by client-go's tools/record:
// that package links strategic merge patch and the OpenAPI models (3 MB of
// binary, about 2 MiB of the daemon's resident memory) for what plexusd
// needs here, which is small: asynchronous sending through a bounded
// queue, client-go's spam filter (per object, a burst of 25, then one
// every 5 minutes) and its aggregation of repeats (the same event on the
// same object within 10 minutes raises the Event's count instead of
// creating another, as `kubectl describe` shows "x3").
const (
	eventQueue      = 1000
	eventBurst      = 25
	eventRefill     = 5 * time.Minute
	eventRepeatTTL  = 10 * time.Minute
	eventSeenMax    = 4096
	eventTries      = 3
	eventRetryPause = time.Second
	eventTimeout    = 10 * time.Second
)

// eventAPI creates and patches core/v1 Events.
type eventAPI interface {
	createEvent(ctx context.Context, e *corev1.Event) (*corev1.Event, error)
	patchEvent(ctx context.Context, namespace, name string, patch []byte) error
}

type eventKey struct {
	uid, kind, namespace, name, typ, reason, message string
}

type seenEvent struct {
	name  string // the Event object's name
	count int32
	first time.Time
	last  time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

type eventSink struct {
	api    eventAPI
	source corev1.EventSource
	log    *slog.Logger
	queue  chan eventKey
	now    func() time.Time

	mu      sync.Mutex
	seen    map[eventKey]*seenEvent
	buckets map[string]*bucket // by object
}

func newEventSink(api eventAPI, node string, log *slog.Logger) *eventSink {
	return &eventSink{api: api, source: corev1.EventSource{Component: "plexus", Host: node}, log: log,
		queue: make(chan eventKey, eventQueue), now: time.Now, seen: map[eventKey]*seenEvent{}, buckets: map[string]*bucket{}}
}

// start sends queued Events until ctx ends.
func (s *eventSink) start(ctx context.Context) {
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case k := <-s.queue:
				s.send(ctx, k)
			}
		}
	}()
}

// record queues an Event; it never blocks (a full queue drops it).
func (s *eventSink) record(ref *corev1.ObjectReference, typ, reason, msg string) {
	k := eventKey{uid: string(ref.UID), kind: ref.Kind, namespace: ref.Namespace, name: ref.Name, typ: typ, reason: reason, message: msg}
	select {
	case s.queue <- k:
	default:
		s.log.Debug("event queue full; event dropped", "reason", reason, "object", ref.Namespace+"/"+ref.Name)
	}
}

// allow is the spam filter: a token bucket per object.
func (s *eventSink) allow(k eventKey, now time.Time) bool {
	obj := k.kind + "/" + k.namespace + "/" + k.name + "/" + k.uid
	b, ok := s.buckets[obj]
	if !ok {
		if len(s.buckets) >= eventSeenMax {
			s.buckets = map[string]*bucket{}
		}
		b = &bucket{tokens: eventBurst, at: now}
		s.buckets[obj] = b
	}
	b.tokens = min(eventBurst, b.tokens+float64(now.Sub(b.at))/float64(eventRefill))
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func (s *eventSink) send(ctx context.Context, k eventKey) {
	now := s.now()
	s.mu.Lock()
	if !s.allow(k, now) {
		s.mu.Unlock()
		s.log.Debug("event dropped by the spam filter", "reason", k.reason, "object", k.namespace+"/"+k.name)
		return
	}
	prev, repeat := s.seen[k]
	if repeat && now.Sub(prev.last) > eventRepeatTTL {
		repeat = false
	}
	var st seenEvent
	if repeat {
		prev.count++
		prev.last = now
		st = *prev
	}
	s.mu.Unlock()

	if repeat {
		patch, _ := json.Marshal(map[string]any{"count": st.count, "lastTimestamp": metav1.NewTime(now)})
		err := s.try(ctx, func(ctx context.Context) error { return s.api.patchEvent(ctx, k.namespace, st.name, patch) })
		if err == nil {
			return
		}
		if !apierrors.IsNotFound(err) {
			s.log.Warn("could not update an Event", "reason", k.reason, "object", k.namespace+"/"+k.name, "err", err)
			return
		}
		// The Event expired on the server: create it afresh.
	}
	e := &corev1.Event{
		ObjectMeta:          metav1.ObjectMeta{Name: fmt.Sprintf("%s.%x", k.name, now.UnixNano()), Namespace: k.namespace},
		InvolvedObject:      corev1.ObjectReference{Kind: k.kind, Namespace: k.namespace, Name: k.name, UID: k8stypes.UID(k.uid), APIVersion: "v1"},
		Reason:              k.reason,
		Message:             k.message,
		Type:                k.typ,
		Source:              s.source,
		FirstTimestamp:      metav1.NewTime(now),
		LastTimestamp:       metav1.NewTime(now),
		Count:               1,
		ReportingController: "plexus",
		ReportingInstance:   s.source.Host,
	}
	if e.Namespace == "" {
		e.Namespace = metav1.NamespaceDefault // a Node's Events, as the kubelet's
	}
	if err := s.try(ctx, func(ctx context.Context) error { _, err := s.api.createEvent(ctx, e); return err }); err != nil {
		s.log.Warn("could not record an Event", "reason", k.reason, "object", k.namespace+"/"+k.name, "err", err)
		return
	}
	s.mu.Lock()
	if len(s.seen) >= eventSeenMax {
		for key, v := range s.seen { // drop the expired, else everything
			if now.Sub(v.last) > eventRepeatTTL {
				delete(s.seen, key)
			}
		}
		if len(s.seen) >= eventSeenMax {
			s.seen = map[eventKey]*seenEvent{}
		}
	}
	s.seen[k] = &seenEvent{name: e.Name, count: 1, first: now, last: now}
	s.mu.Unlock()
}

// try runs fn up to eventTries times, pausing between tries; an error the
// server will repeat (invalid, forbidden, already exists, not found) is
// returned at once.
func (s *eventSink) try(ctx context.Context, fn func(context.Context) error) error {
	var err error
	for i := 0; i < eventTries; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return err
			case <-time.After(eventRetryPause):
			}
		}
		cctx, cancel := context.WithTimeout(ctx, eventTimeout)
		err = fn(cctx)
		cancel()
		if err == nil || apierrors.IsInvalid(err) || apierrors.IsForbidden(err) || apierrors.IsAlreadyExists(err) || apierrors.IsNotFound(err) {
			return err
		}
	}
	return err
}

// Event implements daemon.Recorder.
func (c *Client) Event(ref podref.Ref, warning bool, reason, msg string) {
	c.events.record(objectRef(ref), eventType(warning), reason, msg)
}

// NodeEvent records an Event on this node (the kubelet's convention: the
// node's UID is its name).
func (c *Client) NodeEvent(warning bool, reason, msg string) {
	c.events.record(&corev1.ObjectReference{Kind: "Node", Name: c.opts.NodeName, UID: k8stypes.UID(c.opts.NodeName)}, eventType(warning), reason, msg)
}

func eventType(warning bool) string {
	if warning {
		return corev1.EventTypeWarning
	}
	return corev1.EventTypeNormal
}
