package daemon

import (
	"context"

	"github.com/plexus-cni/plexus/pkg/netselect"
	"github.com/plexus-cni/plexus/pkg/podref"
)

// Source is where pods and NADs come from and where network-status goes:
// the manifest directory or the Kubernetes API.
type Source interface {
	netselect.NADGetter
	// Pod returns the pod of ref (UID checked when both sides have one).
	// runtimeAnnotations, when the runtime passed the pod's annotations
	// (containerd's io.kubernetes.cri.pod-annotations), may be used as the
	// pod's annotations. podref.ErrUnknown: the API never knew it.
	Pod(ctx context.Context, ref podref.Ref, runtimeAnnotations map[string]string) (*podref.Pod, error)
	// WriteStatus stores the network-status JSON of the pod.
	WriteStatus(ctx context.Context, ref podref.Ref, status []byte) error
	// ClearStatus forgets status written for a sandbox being deleted, if
	// the source keeps it outside the pod object.
	ClearStatus(ref podref.Ref, status []byte) error
	// Ready returns nil when the source can answer ADD.
	Ready() error
	// PodExists reports whether the pod still exists on this node;
	// known is false when the source cannot tell now.
	PodExists(ref podref.Ref) (exists, known bool)
}
