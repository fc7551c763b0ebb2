package k8sclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/plexus-cni/plexus/pkg/podref"
)

// WriteStatus sets the network-status annotation with one merge patch of
// pods/status that carries only that annotation (no full-object update, no
// read first). The pod's UID rides in the patch as a precondition, so a
// status can never land on a newer pod with the same name. Transient
// errors are retried with backoff until ctx ends.
// ref.UID is the API object's UID as Pod returned it (for a static pod,
// its mirror's).
func (c *Client) WriteStatus(ctx context.Context, ref podref.Ref, status []byte) error {
	meta := map[string]interface{}{"annotations": map[string]string{nadv1.NetworkStatusAnnot: string(status)}}
	if ref.UID != "" {
		meta["uid"] = ref.UID
	}
	patch, err := json.Marshal(map[string]interface{}{"metadata": meta})
	if err != nil {
		return err
	}
	backoff := wait.Backoff{Duration: 50 * time.Millisecond, Factor: 2, Jitter: 0.2, Steps: 6, Cap: 2 * time.Second}
	var last error
	tries := 0
	err = wait.ExponentialBackoffWithContext(ctx, backoff, func(ctx context.Context) (bool, error) {
		if tries++; tries > 1 {
			c.opts.Metrics.StatusRetry()
		}
		if c.updateStatus.Load() {
			last = c.updateAnnotation(ctx, ref, string(status))
		} else {
			last = c.api.patchPodStatus(ctx, ref.Namespace, ref.Name, patch)
			if apierrors.IsForbidden(last) {
				c.log.Warn("patch of pods/status is forbidden (Multus's ClusterRole grants update only): writing network-status with get + update; deployments/rbac.yaml allows the one-request patch", "err", last)
				c.updateStatus.Store(true)
				last = c.updateAnnotation(ctx, ref, string(status))
			}
		}
		switch {
		case last == nil:
			return true, nil
		case retriable(last):
			return false, nil
		default:
			return false, last
		}
	})
	if err == nil {
		return nil
	}
	c.opts.Metrics.StatusFailure()
	if last == nil {
		last = err
	}
	if retriable(last) || errors.Is(err, context.DeadlineExceeded) || wait.Interrupted(err) {
		return &TransientError{Err: fmt.Errorf("patch network-status of pod %s: %w", ref, last)}
	}
	return fmt.Errorf("patch network-status of pod %s: %w", ref, last)
}

// updateAnnotation is the write for an RBAC without patch: the pod read
// from the API, its UID checked, the annotation set, pods/status updated
// (a conflict re-reads).
func (c *Client) updateAnnotation(ctx context.Context, ref podref.Ref, status string) error {
	for {
		pod, err := c.api.getPod(ctx, ref.Namespace, ref.Name)
		if err != nil {
			return err
		}
		if ref.UID != "" && string(pod.UID) != ref.UID {
			return apierrors.NewConflict(podResource, ref.Name, fmt.Errorf("the pod was replaced (uid %s, want %s)", pod.UID, ref.UID))
		}
		if pod.Annotations == nil {
			pod.Annotations = map[string]string{}
		}
		pod.Annotations[nadv1.NetworkStatusAnnot] = status
		err = c.api.updatePodStatus(ctx, pod)
		if !apierrors.IsConflict(err) || ctx.Err() != nil {
			return err
		}
	}
}

var podResource = schema.GroupResource{Resource: "pods"}

// retriable: server-side trouble, and any failure to get an answer. A conflict is
// not retried: a merge patch without a resourceVersion conflicts only on
// the UID precondition (the pod was replaced), which retrying cannot fix.
// Six backoff steps bound the whole write to about 3 s.
func retriable(err error) bool {
	var st apierrors.APIStatus
	if !errors.As(err, &st) {
		return true // no answer from the API server at all: transport trouble
	}
	return apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) ||
		apierrors.IsInternalError(err) || apierrors.IsServiceUnavailable(err) || apierrors.IsUnexpectedServerError(err)
}

// TransientError is API trouble that retrying later may fix: CNI code 11.
type TransientError struct{ Err error }

func (e *TransientError) Error() string { return e.Err.Error() }
func (e *TransientError) Unwrap() error { return e.Err }

// CNICode is 11, "try again later".
func (e *TransientError) CNICode() uint { return 11 } // types.ErrTryAgainLater; k8sclient links no CNI package

// ClearStatus is a no-op: the status lives on the pod object, which goes
// away with the pod (Multus never rewrites it on DEL either).
func (c *Client) ClearStatus(podref.Ref, []byte) error { return nil }
