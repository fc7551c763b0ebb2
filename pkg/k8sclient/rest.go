package k8sclient

import (
	"context"
	"encoding/json"
	"fmt"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	k8stypes "k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// plexusd talks to the API with client-go's REST client over a scheme of
// its own that holds only the core/v1 and NAD types it reads and writes.
// The generated clientset and kubernetes/scheme would link and initialise
// every API group (about 20 MiB of the daemon's resident memory for
// nothing).
var (
	scheme = runtime.NewScheme()
	codecs = serializer.NewCodecFactory(scheme)
)

func init() {
	utilruntime.Must(corev1.AddToScheme(scheme))
	utilruntime.Must(nadv1.AddToScheme(scheme))
	utilruntime.Must(resourcev1.AddToScheme(scheme))
}

// apiCalls is every request plexusd makes besides the informers' list and
// watch and the Events: one pod read, the status write (patch, or get +
// update under an RBAC without patch) and the one read of its DaemonSet at
// shutdown.
type apiCalls interface {
	getPod(ctx context.Context, namespace, name string) (*corev1.Pod, error)
	patchPodStatus(ctx context.Context, namespace, name string, patch []byte) error
	updatePodStatus(ctx context.Context, pod *corev1.Pod) error
	// daemonSetDeleting: the DaemonSet's deletionTimestamp is set; a
	// NotFound error when it does not exist.
	daemonSetDeleting(ctx context.Context, namespace, name string) (bool, error)
	// applyClaimStatus server-side-applies a ResourceClaim's status.
	applyClaimStatus(ctx context.Context, namespace, name string, body []byte) error
}

// sources are what the informers list and watch.
type sources struct {
	pods, nads cache.ListerWatcher
	// slices are the node's ResourceSlices; nil without DRA.
	slices cache.ListerWatcher
}

// restClients is the production apiCalls, plus the informers' sources and
// the Events sink, on REST clients.
type restClients struct {
	core   rest.Interface // core/v1, protobuf
	nads   rest.Interface // k8s.cni.cncf.io/v1, JSON (a CRD)
	events rest.Interface // core/v1 with its own rate limit
	// resource is resource.k8s.io/v1, protobuf; nil when the API server
	// does not serve it.
	resource rest.Interface
}

func restClientFor(base *rest.Config, apiPath string, gv *schema.GroupVersion, protobuf bool, qps float32, burst int) (rest.Interface, error) {
	cfg := rest.CopyConfig(base)
	cfg.APIPath = apiPath
	cfg.GroupVersion = gv
	cfg.NegotiatedSerializer = codecs.WithoutConversion()
	cfg.QPS, cfg.Burst = qps, burst
	if protobuf {
		cfg.ContentType = runtime.ContentTypeProtobuf
		cfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	} else {
		cfg.ContentType = runtime.ContentTypeJSON
	}
	return rest.RESTClientFor(cfg)
}

func newRESTClients(base *rest.Config, opts Options) (*restClients, error) {
	core, err := restClientFor(base, "/api", &corev1.SchemeGroupVersion, true, opts.QPS, opts.Burst)
	if err != nil {
		return nil, err
	}
	nads, err := restClientFor(base, "/apis", &nadv1.SchemeGroupVersion, false, opts.QPS, opts.Burst)
	if err != nil {
		return nil, err
	}
	events, err := restClientFor(base, "/api", &corev1.SchemeGroupVersion, true, opts.EventQPS, int(opts.EventQPS*2)+1)
	if err != nil {
		return nil, err
	}
	resource, err := restClientFor(base, "/apis", &resourcev1.SchemeGroupVersion, true, opts.QPS, opts.Burst)
	if err != nil {
		return nil, err
	}
	return &restClients{core: core, nads: nads, events: events, resource: resource}, nil
}

func (r *restClients) sources(node string) sources {
	onNode := func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", node).String()
	}
	return sources{
		pods: cache.NewFilteredListWatchFromClient(r.core, "pods", metav1.NamespaceAll, onNode),
		nads: cache.NewListWatchFromClient(r.nads, "network-attachment-definitions", metav1.NamespaceAll, fields.Everything()),
	}
}

func (r *restClients) getPod(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	p := &corev1.Pod{}
	err := r.core.Get().Namespace(namespace).Resource("pods").Name(name).Do(ctx).Into(p)
	return p, err
}

func (r *restClients) patchPodStatus(ctx context.Context, namespace, name string, patch []byte) error {
	return r.core.Patch(k8stypes.MergePatchType).Namespace(namespace).Resource("pods").Name(name).SubResource("status").
		Body(patch).Do(ctx).Error()
}

func (r *restClients) updatePodStatus(ctx context.Context, pod *corev1.Pod) error {
	return r.core.Put().Namespace(pod.Namespace).Resource("pods").Name(pod.Name).SubResource("status").
		Body(pod).Do(ctx).Error()
}

// daemonSetDeleting reads the DaemonSet's metadata only (as JSON into
// PartialObjectMetadata: no apps/v1 types linked).
func (r *restClients) daemonSetDeleting(ctx context.Context, namespace, name string) (bool, error) {
	raw, err := r.core.Get().AbsPath("/apis/apps/v1/namespaces", namespace, "daemonsets", name).
		SetHeader("Accept", runtime.ContentTypeJSON).Do(ctx).Raw()
	if err != nil {
		return false, err
	}
	var ds metav1.PartialObjectMetadata
	if err := json.Unmarshal(raw, &ds); err != nil {
		return false, fmt.Errorf("decode DaemonSet %s/%s: %w", namespace, name, err)
	}
	return ds.DeletionTimestamp != nil, nil
}

// restEvents is eventAPI on the Events REST client (its own rate limit).
type restEvents struct{ c rest.Interface }

func (r restEvents) createEvent(ctx context.Context, e *corev1.Event) (*corev1.Event, error) {
	out := &corev1.Event{}
	err := r.c.Post().Namespace(e.Namespace).Resource("events").Body(e).Do(ctx).Into(out)
	return out, err
}

func (r restEvents) patchEvent(ctx context.Context, namespace, name string, patch []byte) error {
	return r.c.Patch(k8stypes.MergePatchType).Namespace(namespace).Resource("events").Name(name).Body(patch).Do(ctx).Error()
}
