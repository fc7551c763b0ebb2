package k8sclient

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nadfake "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/clientset/versioned/fake"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/plexus-cni/plexus/internal/testutil"
	"github.com/plexus-cni/plexus/pkg/podref"
)

// The pod lookup rules, on client-go's fake clientset and real informers:
// the logic is pure, the API server's behaviour is tested in e2e.

const node = "n1"

func apiPod(name, uid string, ann map[string]string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID(uid), Annotations: ann},
		Spec: corev1.PodSpec{NodeName: node}}
}

// source starts a Client on a fake clientset holding pods.
func source(t *testing.T, wait time.Duration, pods ...*corev1.Pod) (*Client, *fake.Clientset) {
	t.Helper()
	kube := fake.NewClientset()
	for _, p := range pods {
		if _, err := kube.CoreV1().Pods(p.Namespace).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	f := fakeAPI{kube: kube, nads: nadfake.NewSimpleClientset()}
	c, err := newWithClients(Options{NodeName: node, PodWait: wait}, slog.New(slog.NewTextHandler(io.Discard, nil)), f, f.sources(), f.events())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c.Start(ctx)
	testutil.Eventually(t, 5*time.Second, "informers synced", func() bool { return c.Ready() == nil })
	kube.ClearActions()
	return c, kube
}

func gets(kube *fake.Clientset) int {
	n := 0
	for _, a := range kube.Actions() {
		if a.GetVerb() == "get" && a.GetResource().Resource == "pods" {
			n++
		}
	}
	return n
}

func ref(name, uid string) podref.Ref { return podref.Ref{Namespace: "default", Name: name, UID: uid} }

func TestPodFromCacheWithoutAPIRequest(t *testing.T) {
	c, kube := source(t, time.Second, apiPod("a", "u1", map[string]string{"k": "v"}))
	p, err := c.Pod(context.Background(), ref("a", "u1"), nil)
	if err != nil || p.UID != "u1" || p.Annotations["k"] != "v" {
		t.Fatalf("Pod = %+v, %v", p, err)
	}
	if n := gets(kube); n != 0 {
		t.Errorf("%d GETs for a cached pod", n)
	}
}

// The cache lags behind a pod just created: the lookup waits for the
// informer rather than asking the API.
func TestPodWaitsForTheInformer(t *testing.T) {
	c, kube := source(t, 5*time.Second)
	go func() {
		time.Sleep(100 * time.Millisecond)
		_, _ = kube.CoreV1().Pods("default").Create(context.Background(), apiPod("late", "u2", nil), metav1.CreateOptions{})
	}()
	p, err := c.Pod(context.Background(), ref("late", "u2"), nil)
	if err != nil || p.UID != "u2" {
		t.Fatalf("Pod = %+v, %v", p, err)
	}
	if n := gets(kube); n != 0 {
		t.Errorf("%d GETs; the informer had it", n)
	}
}

// The cache holds an older pod of that name and the API the same: the
// sandbox is for another UID, which is an error naming both.
func TestPodUIDMismatch(t *testing.T) {
	c, kube := source(t, 50*time.Millisecond, apiPod("sts-0", "old", nil))
	_, err := c.Pod(context.Background(), ref("sts-0", "new"), nil)
	if err == nil || !strings.Contains(err.Error(), "old") || !strings.Contains(err.Error(), "new") {
		t.Fatalf("Pod: %v; want a UID mismatch naming both", err)
	}
	if n := gets(kube); n != 1 {
		t.Errorf("%d GETs; want exactly one live GET after the wait", n)
	}
}

// A pod the API never had gets ErrUnknown (an empty result); one the
// informer saw deleted gets an error.
func TestPodUnknownVersusDeleted(t *testing.T) {
	c, kube := source(t, 50*time.Millisecond, apiPod("gone", "u3", nil))
	if _, err := c.Pod(context.Background(), ref("ghost", "u9"), nil); !errors.Is(err, podref.ErrUnknown) {
		t.Errorf("never-known pod: %v; want ErrUnknown", err)
	}
	if err := kube.CoreV1().Pods("default").Delete(context.Background(), "gone", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "delete seen", func() bool { return c.deleted.has("u3") })
	_, err := c.Pod(context.Background(), ref("gone", "u3"), nil)
	if err == nil || errors.Is(err, podref.ErrUnknown) || !strings.Contains(err.Error(), "deleted") {
		t.Errorf("deleted pod: %v; want an error saying so", err)
	}
}

// A static pod's sandbox carries the static pod's UID; the API has the
// mirror, whose config.mirror annotation names it. That mirror (and no
// other pod of the name) is the pod, and its UID is the one statuses are
// preconditioned on.
func TestStaticPodMirror(t *testing.T) {
	mirror := apiPod("static-n1", "mirror-uid", map[string]string{mirrorAnnotation: "hash-1", configSourceAnnotation: "file"})
	c, kube := source(t, 50*time.Millisecond, mirror)
	p, err := c.Pod(context.Background(), ref("static-n1", "hash-1"), nil)
	if err != nil || p.UID != "mirror-uid" {
		t.Fatalf("Pod = %+v, %v", p, err)
	}
	if n := gets(kube); n != 0 {
		t.Errorf("%d GETs for a cached mirror pod", n)
	}
	// A sandbox of another static pod config (another hash) is not this
	// mirror's.
	if _, err := c.Pod(context.Background(), ref("static-n1", "hash-2"), nil); err == nil {
		t.Error("a mirror of another static pod accepted")
	}
}

// With the runtime's copy of the annotations (containerd), the lookup does
// not wait or GET; the informer's pod, when present, must still match.
func TestPodRuntimeAnnotations(t *testing.T) {
	c, kube := source(t, time.Second, apiPod("a", "u1", nil))
	rt := map[string]string{"k8s.v1.cni.cncf.io/networks": "x"}
	mirror := apiPod("static-n1", "mirror-uid", map[string]string{mirrorAnnotation: "hash-1"})
	if _, err := kube.CoreV1().Pods("default").Create(context.Background(), mirror, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "mirror cached", func() bool { _, err := c.pods.Pods("default").Get("static-n1"); return err == nil })
	kube.ClearActions()
	if p, err := c.Pod(context.Background(), ref("static-n1", "hash-1"), rt); err != nil || p.UID != "mirror-uid" {
		t.Errorf("static pod with runtime annotations: %+v, %v; want the mirror's UID", p, err)
	}
	// A static pod (its own annotations say so) whose mirror the informer
	// may not have yet: the UID is the mirror's either way (from the
	// informer, or one GET of the API).
	static := map[string]string{"k8s.v1.cni.cncf.io/networks": "x", configSourceAnnotation: "file"}
	lagging := apiPod("static2-n1", "mirror-uid-2", map[string]string{mirrorAnnotation: "hash-2"})
	if _, err := kube.CoreV1().Pods("default").Create(context.Background(), lagging, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if p, err := c.Pod(context.Background(), ref("static2-n1", "hash-2"), static); err != nil || p.UID != "mirror-uid-2" {
		t.Errorf("static pod: %+v, %v; want the mirror's UID", p, err)
	}
	if uid := c.mirrorUID(context.Background(), ref("static2-n1", "hash-2")); uid != "mirror-uid-2" {
		t.Errorf("mirrorUID = %q, want the mirror's", uid)
	}
	if uid := c.mirrorUID(context.Background(), ref("static2-n1", "hash-9")); uid != "hash-9" {
		t.Errorf("mirrorUID of another static pod = %q, want its own", uid)
	}
	kube.ClearActions()
	p, err := c.Pod(context.Background(), ref("a", "u1"), rt)
	if err != nil || p.Annotations["k8s.v1.cni.cncf.io/networks"] != "x" {
		t.Fatalf("Pod = %+v, %v", p, err)
	}
	if p, err := c.Pod(context.Background(), ref("unseen", "u5"), rt); err != nil || p.UID != "u5" {
		t.Errorf("pod not in the informer with runtime annotations: %+v, %v", p, err)
	}
	if n := gets(kube); n != 0 {
		t.Errorf("%d GETs with runtime annotations", n)
	}
}

// The informers keep what Plexus reads and drop kubectl's copy of the
// object.
func TestTrimDropsLastApplied(t *testing.T) {
	p := apiPod("a", "u1", map[string]string{"k8s.v1.cni.cncf.io/networks": "x", lastApplied: "{...}"})
	p.Spec.Containers = []corev1.Container{{Name: "c", Image: "i"}}
	out, _ := trimPod(p)
	tp := out.(*corev1.Pod)
	if _, ok := tp.Annotations[lastApplied]; ok || tp.Annotations["k8s.v1.cni.cncf.io/networks"] != "x" || len(tp.Spec.Containers) != 0 || tp.UID != "u1" {
		t.Errorf("trimmed pod %+v", tp)
	}
	n := &nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Name: "n", Namespace: "d", Labels: map[string]string{"a": "b"},
		Annotations: map[string]string{"k8s.v1.cni.cncf.io/resourceName": "r", lastApplied: "{...}"}},
		Spec: nadv1.NetworkAttachmentDefinitionSpec{Config: "{}"}}
	out, _ = trimNAD(n)
	tn := out.(*nadv1.NetworkAttachmentDefinition)
	if _, ok := tn.Annotations[lastApplied]; ok || tn.Annotations["k8s.v1.cni.cncf.io/resourceName"] != "r" || tn.Spec.Config != "{}" || tn.Labels != nil {
		t.Errorf("trimmed NAD %+v", tn)
	}
}
