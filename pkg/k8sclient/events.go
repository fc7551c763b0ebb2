package k8sclient

import (
	"context"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"

	"github.com/plexus-cni/plexus/pkg/podref"
)

// eventSink records pod Events asynchronously through client-go's
// broadcaster (a bounded queue that drops when full, plus its spam filter),
// on a client with its own rate limit: an ADD never waits on an Event.
type eventSink struct {
	sink        record.EventSink
	broadcaster record.EventBroadcaster
	recorder    record.EventRecorder
	log         *slog.Logger
}

func newEventSink(sink record.EventSink, node string, log *slog.Logger) *eventSink {
	b := record.NewBroadcaster()
	return &eventSink{sink: sink, broadcaster: b, log: log,
		recorder: b.NewRecorder(scheme, corev1.EventSource{Component: "plexus", Host: node})}
}

func (s *eventSink) start(ctx context.Context) {
	s.broadcaster.StartRecordingToSink(s.sink)
	go func() {
		<-ctx.Done()
		s.broadcaster.Shutdown()
	}()
}

// Event implements daemon.Recorder.
func (c *Client) Event(ref podref.Ref, warning bool, reason, msg string) {
	typ := corev1.EventTypeNormal
	if warning {
		typ = corev1.EventTypeWarning
	}
	c.events.recorder.Event(objectRef(ref), typ, reason, msg)
}

// NodeEvent records an Event on this node (the kubelet's convention: the
// node's UID is its name).
func (c *Client) NodeEvent(warning bool, reason, msg string) {
	typ := corev1.EventTypeNormal
	if warning {
		typ = corev1.EventTypeWarning
	}
	ref := &corev1.ObjectReference{Kind: "Node", Name: c.opts.NodeName, UID: k8stypes.UID(c.opts.NodeName)}
	c.events.recorder.Event(ref, typ, reason, msg)
}
