package k8sclient

import (
	"context"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"

	"github.com/plexus-cni/plexus/pkg/podref"
)

// Under Multus's ClusterRole (update, no patch, on pods/status) the
// network-status is still written: the first patch is forbidden, then
// get + update, and only that from then on.
func TestWriteStatusWithoutPatchRBAC(t *testing.T) {
	c, kube := source(t, 0, apiPod("a", "uid-a", nil), apiPod("b", "uid-b", nil))
	kube.PrependReactor("patch", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "a", nil)
	})
	ctx := context.Background()
	for _, name := range []string{"a", "b"} {
		if err := c.WriteStatus(ctx, podref.Ref{Namespace: "default", Name: name, UID: "uid-" + name}, []byte(`[{"name":"x"}]`)); err != nil {
			t.Fatalf("WriteStatus %s: %v", name, err)
		}
		p, _ := kube.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if p.Annotations[nadv1.NetworkStatusAnnot] != `[{"name":"x"}]` {
			t.Errorf("pod %s annotations %v", name, p.Annotations)
		}
	}
	patches := 0
	for _, a := range kube.Actions() {
		if a.GetVerb() == "patch" {
			patches++
		}
	}
	if patches != 1 {
		t.Errorf("%d patches tried, want 1 (then update only)", patches)
	}
	// A replaced pod (another UID) is not written.
	if err := c.WriteStatus(ctx, podref.Ref{Namespace: "default", Name: "a", UID: "uid-old"}, []byte(`[]`)); err == nil {
		t.Error("status written over a pod with another UID")
	}
}
