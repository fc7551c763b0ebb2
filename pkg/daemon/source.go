package daemon

import (
	"context"

	"github.com/plexus-cni/plexus/pkg/netselect"
	"github.com/plexus-cni/plexus/pkg/store"
)

// Source is where pods and NADs come from and where network-status goes:
// the manifest directory or the Kubernetes API.
type Source interface {
	netselect.NADGetter
	// Pod returns the pod of ref (UID checked when both sides have one).
	// runtimeAnnotations, when the runtime passed the pod's annotations
	// (containerd's io.kubernetes.cri.pod-annotations), may be used as the
	// pod's annotations. netselect.ErrPodUnknown: the API never knew it.
	Pod(ctx context.Context, ref store.PodRef, runtimeAnnotations map[string]string) (*netselect.Pod, error)
	// WriteStatus stores the network-status JSON of the pod.
	WriteStatus(ctx context.Context, ref store.PodRef, status []byte) error
	// ClearStatus forgets status written for a sandbox being deleted, if
	// the source keeps it outside the pod object.
	ClearStatus(ref store.PodRef, status []byte) error
	// Ready returns nil when the source can answer ADD.
	Ready() error
	// PodExists reports whether the pod still exists on this node;
	// known is false when the source cannot tell now.
	PodExists(ref store.PodRef) (exists, known bool)
}
