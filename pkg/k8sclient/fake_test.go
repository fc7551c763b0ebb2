package k8sclient

import (
	"context"

	nadfake "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/clientset/versioned/fake"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
)

// fakeAPI is apiCalls, the informers' sources and the Events sink on
// client-go's fake clientsets (unit tests of the lookup rules; the real
// REST path runs in e2e against a real API server).
type fakeAPI struct {
	kube *fake.Clientset
	nads *nadfake.Clientset
}

func (f fakeAPI) getPod(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	return f.kube.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
}

func (f fakeAPI) patchPodStatus(ctx context.Context, namespace, name string, patch []byte) error {
	_, err := f.kube.CoreV1().Pods(namespace).Patch(ctx, name, k8stypes.MergePatchType, patch, metav1.PatchOptions{}, "status")
	return err
}

func (f fakeAPI) updatePodStatus(ctx context.Context, pod *corev1.Pod) error {
	_, err := f.kube.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
	return err
}

func (f fakeAPI) daemonSetDeleting(ctx context.Context, namespace, name string) (bool, error) {
	ds, err := f.kube.AppsV1().DaemonSets(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false, err
	}
	return ds.DeletionTimestamp != nil, nil
}

func (f fakeAPI) applyClaimStatus(ctx context.Context, namespace, name string, body []byte) error {
	force := true
	_, err := f.kube.ResourceV1().ResourceClaims(namespace).Patch(ctx, name, k8stypes.ApplyPatchType, body, metav1.PatchOptions{FieldManager: fieldManager, Force: &force}, "status")
	return err
}

func (f fakeAPI) sources() sources {
	return sources{
		pods: &cache.ListWatch{
			ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return f.kube.CoreV1().Pods("").List(ctx, o)
			},
			WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				return f.kube.CoreV1().Pods("").Watch(ctx, o)
			},
		},
		nads: &cache.ListWatch{
			ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return f.nads.K8sCniCncfIoV1().NetworkAttachmentDefinitions("").List(ctx, o)
			},
			WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				return f.nads.K8sCniCncfIoV1().NetworkAttachmentDefinitions("").Watch(ctx, o)
			},
		},
		slices: &cache.ListWatch{
			ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return f.kube.ResourceV1().ResourceSlices().List(ctx, o)
			},
			WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				return f.kube.ResourceV1().ResourceSlices().Watch(ctx, o)
			},
		},
	}
}

func (f fakeAPI) events() fakeEvents {
	return fakeEvents{fake.NewClientset()}
}

// fakeEvents is eventAPI on a fake clientset.
type fakeEvents struct{ kube *fake.Clientset }

func (f fakeEvents) createEvent(ctx context.Context, e *corev1.Event) (*corev1.Event, error) {
	return f.kube.CoreV1().Events(e.Namespace).Create(ctx, e, metav1.CreateOptions{})
}

func (f fakeEvents) patchEvent(ctx context.Context, namespace, name string, patch []byte) error {
	_, err := f.kube.CoreV1().Events(namespace).Patch(ctx, name, k8stypes.MergePatchType, patch, metav1.PatchOptions{})
	return err
}
