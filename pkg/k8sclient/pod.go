package k8sclient

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/plexus-cni/plexus/pkg/podref"
)

// mirrorAnnotation holds, on a mirror pod, the UID of the static pod it
// mirrors (set by the kubelet).
const mirrorAnnotation = "kubernetes.io/config.mirror"

// configSourceAnnotation is set by the kubelet on mirror pods of static
// pods; their API UID differs from the sandbox's (Multus #773).
const configSourceAnnotation = "kubernetes.io/config.source"

// Pod returns the pod of ref, from the informer cache in the steady state
// (no API request). When the cache lags (pod missing, or an older pod of
// the same name), it waits on the informer up to PodWait, then does one
// live GET. The UID must match K8S_POD_UID, except for static pods.
//
// With runtimeAnnotations (containerd's io.kubernetes.cri.pod-annotations)
// the networks request is taken from them without waiting; the UID is still
// checked against the informer when it has the pod.
//
// The returned UID is the API object's: for a static pod, its mirror's,
// which network-status writes are preconditioned on.
//
// A pod the API does not have gets podref.ErrUnknown if it was never
// seen deleted (the sandbox gets an empty result, as in Multus); a pod
// deleted while its sandbox starts gets an error.
func (c *Client) Pod(ctx context.Context, ref podref.Ref, runtimeAnnotations map[string]string) (*podref.Pod, error) {
	if runtimeAnnotations != nil {
		cached, err := c.pods.Pods(ref.Namespace).Get(ref.Name)
		switch {
		case err != nil && isStatic(runtimeAnnotations):
			return &podref.Pod{Namespace: ref.Namespace, Name: ref.Name, UID: c.mirrorUID(ctx, ref), Annotations: runtimeAnnotations}, nil
		case err != nil:
			return &podref.Pod{Namespace: ref.Namespace, Name: ref.Name, UID: ref.UID, Annotations: runtimeAnnotations}, nil
		case uidMatches(cached, ref.UID):
			return &podref.Pod{Namespace: ref.Namespace, Name: ref.Name, UID: string(cached.UID), Annotations: runtimeAnnotations, ResourceClaims: claimsOf(cached)}, nil
		}
	}
	var found *corev1.Pod
	lookup := func(context.Context) (bool, error) {
		p, err := c.pods.Pods(ref.Namespace).Get(ref.Name)
		if err == nil && uidMatches(p, ref.UID) {
			found = p
			return true, nil
		}
		return false, nil
	}
	if ok, _ := lookup(ctx); !ok && c.opts.PodWait > 0 {
		_ = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, c.opts.PodWait, false, lookup) // a timeout falls through to the live GET
	}
	if found == nil {
		p, err := c.livePod(ctx, ref)
		if err != nil {
			return nil, err
		}
		found = p
	}
	ann := found.Annotations
	if runtimeAnnotations != nil {
		ann = runtimeAnnotations
	}
	return &podref.Pod{Namespace: found.Namespace, Name: found.Name, UID: string(found.UID), Annotations: ann, ResourceClaims: claimsOf(found)}, nil
}

// claimsOf maps the pod's resource claim names to their ResourceClaim
// objects: a claim named in the spec directly, or the one generated from a
// template (status.resourceClaimStatuses; "" until generated). nil for a
// pod without claims.
func claimsOf(p *corev1.Pod) map[string]string {
	if len(p.Spec.ResourceClaims) == 0 {
		return nil
	}
	out := make(map[string]string, len(p.Spec.ResourceClaims))
	for _, c := range p.Spec.ResourceClaims {
		name := ""
		if c.ResourceClaimName != nil {
			name = *c.ResourceClaimName
		}
		out[c.Name] = name
	}
	for _, st := range p.Status.ResourceClaimStatuses {
		if _, ok := out[st.Name]; ok && st.ResourceClaimName != nil {
			out[st.Name] = *st.ResourceClaimName
		}
	}
	return out
}

// isStatic: the pod's own annotations say the kubelet read it from a file
// or URL (a static pod), not from the API.
func isStatic(ann map[string]string) bool {
	src, ok := ann[configSourceAnnotation]
	return ok && src != "api"
}

// mirrorUID is the UID of the mirror pod of the static pod ref, asked of
// the API (the informer does not have it yet); ref's own UID when there is
// no such mirror. Only static pods pay this GET.
func (c *Client) mirrorUID(ctx context.Context, ref podref.Ref) string {
	gctx, cancel := context.WithTimeout(ctx, liveGetTimeout)
	defer cancel()
	p, err := c.api.getPod(gctx, ref.Namespace, ref.Name)
	if err != nil || p.Annotations[mirrorAnnotation] != ref.UID {
		return ref.UID
	}
	return string(p.UID)
}

// liveGetTimeout bounds the one live GET (client-go retries inside it),
// so an ADD with the API server down fails within seconds.
const liveGetTimeout = 5 * time.Second

func (c *Client) livePod(ctx context.Context, ref podref.Ref) (*corev1.Pod, error) {
	gctx, cancel := context.WithTimeout(ctx, liveGetTimeout)
	defer cancel()
	p, err := c.api.getPod(gctx, ref.Namespace, ref.Name)
	switch {
	case apierrors.IsNotFound(err):
		if ref.UID != "" && c.deleted.has(ref.UID) {
			return nil, fmt.Errorf("pod %s (uid %s) was deleted", ref, ref.UID)
		}
		return nil, fmt.Errorf("pod %s: %w", ref, podref.ErrUnknown)
	case err != nil:
		return nil, fmt.Errorf("get pod %s from the API: %w", ref, err)
	case !uidMatches(p, ref.UID):
		return nil, fmt.Errorf("pod %s: API object has uid %s, the sandbox is for uid %s (pod deleted and recreated?)", ref, p.UID, ref.UID)
	}
	return p, nil
}

// PodExists reports whether the informer has the pod (UID checked, a
// static pod's mirror accepted); known is false until the informers synced.
func (c *Client) PodExists(ref podref.Ref) (exists, known bool) {
	if c.Ready() != nil {
		return false, false
	}
	p, err := c.pods.Pods(ref.Namespace).Get(ref.Name)
	return err == nil && uidMatches(p, ref.UID), true
}

func uidMatches(p *corev1.Pod, uid string) bool {
	if uid == "" || string(p.UID) == uid {
		return true
	}
	// A static pod's mirror: the sandbox has the static pod's UID, which
	// the mirror names. A mirror without that annotation is from an older
	// kubelet: accept it by its config source, as before.
	if m, ok := p.Annotations[mirrorAnnotation]; ok && m != "" {
		return m == uid
	}
	src, ok := p.Annotations[configSourceAnnotation]
	return ok && src != "api"
}
