package k8sclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nadlisters "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/listers/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stypes "k8s.io/apimachinery/pkg/types"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/plexus-cni/plexus/pkg/metrics"
	"github.com/plexus-cni/plexus/pkg/podref"
)

// Options configure the Kubernetes source.
type Options struct {
	Kubeconfig string // empty: in-cluster config
	NodeName   string // pods are watched on this node only
	QPS        float32
	Burst      int
	// PodWait bounds how long an ADD waits for the pod informer to catch
	// up before one live GET.
	PodWait time.Duration
	// EventQPS is the separate rate limit of the Events client, so Events
	// never take client rate from the status patch.
	EventQPS float32
	// Metrics, when set, receives the status-write counts, the informer
	// gauges and client-go's request metrics.
	Metrics *metrics.Metrics
}

// Client is the Kubernetes source of pods and NADs and the sink of
// network-status and Events.
type Client struct {
	opts    Options
	log     *slog.Logger
	api     apiCalls
	pods    corelisters.PodLister
	nadList nadlisters.NetworkAttachmentDefinitionLister
	synced  []cache.InformerSynced
	// slices is the cache of the node's ResourceSlices; nil without DRA.
	slices  cache.Store
	events  *eventSink
	deleted *recentUIDs
	start   func(ctx context.Context)
	// updateStatus: the RBAC grants update but not patch on pods/status
	// (Multus's ClusterRole), so the status is written with get + update.
	updateStatus atomic.Bool
	// onNetworks is told of every change of a pod's networks annotation
	// (hot-plug); nil: nobody listens.
	onNetworks atomic.Pointer[func(podref.Ref)]
}

// OnNetworksChange makes fn be called (from the informer's goroutine: it
// must not block) with each pod on this node whose networks annotation
// changed.
func (c *Client) OnNetworksChange(fn func(podref.Ref)) { c.onNetworks.Store(&fn) }

// Networks is the networks annotation of the pod as the informer has it
// now (no API request); false when the informer does not have the pod.
func (c *Client) Networks(ref podref.Ref) (string, bool) {
	p, err := c.pods.Pods(ref.Namespace).Get(ref.Name)
	if err != nil || !uidMatches(p, ref.UID) {
		return "", false
	}
	return p.Annotations[nadv1.NetworkAttachmentAnnot], true
}

func (c *Client) onPodUpdate(oldObj, newObj interface{}) {
	fn := c.onNetworks.Load()
	if fn == nil {
		return
	}
	o, ok1 := oldObj.(*corev1.Pod)
	n, ok2 := newObj.(*corev1.Pod)
	if !ok1 || !ok2 || o.Annotations[nadv1.NetworkAttachmentAnnot] == n.Annotations[nadv1.NetworkAttachmentAnnot] {
		return
	}
	(*fn)(podref.Ref{Namespace: n.Namespace, Name: n.Name, UID: string(n.UID)})
}

// DaemonSetGone reports whether the DaemonSet namespace/name is deleted or
// being deleted (an uninstall), as opposed to rolled or restarted. Any
// doubt (the API unreachable, the answer forbidden) is false: the caller
// then keeps what it would have removed.
func (c *Client) DaemonSetGone(ctx context.Context, namespace, name string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, liveGetTimeout)
	defer cancel()
	deleting, err := c.api.daemonSetDeleting(ctx, namespace, name)
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	return deleting, err
}

// routeKlog makes client-go's klog output go through plexusd's slog
// handler (its level, format, file and rotation), tagged
// component=client-go.
func routeKlog(log *slog.Logger) { klog.SetSlogLogger(log.With("component", "client-go")) }

// RESTConfig returns the in-cluster config or the kubeconfig's.
func RESTConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		return rest.InClusterConfig()
	}
	return clientcmd.BuildConfigFromFlags("", kubeconfig)
}

// New builds the clients and informers (not started; see Start).
func New(opts Options, log *slog.Logger) (*Client, error) {
	if opts.NodeName == "" {
		return nil, errors.New("node name is required (--node-name or NODE_NAME)")
	}
	base, err := RESTConfig(opts.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client config: %w", err)
	}
	base.UserAgent = "plexusd/" + opts.NodeName
	routeKlog(log)
	if opts.Metrics != nil {
		registerClientMetrics(opts.Metrics)
	}
	r, err := newRESTClients(base, opts)
	if err != nil {
		return nil, err
	}
	src := r.sources(opts.NodeName)
	switch state, err := probeDRA(context.Background(), r.resource, opts.NodeName); state {
	case draOn:
		src.slices = sliceSource(r.resource, opts.NodeName)
		if err != nil {
			log.Warn("could not tell whether resource.k8s.io/v1 is served; watching ResourceSlices anyway", "err", err)
		}
	case draNotServed:
		r.resource = nil
		log.Info("resource.k8s.io/v1 is not served (Kubernetes before 1.34): DRA-backed networks are off")
	case draForbidden:
		r.resource = nil
		log.Warn("the RBAC does not let plexusd list ResourceSlices: DRA-backed networks are off (apply deployments/rbac.yaml)", "err", err)
	}
	return newWithClients(opts, log, r, src, restEvents{r.events})
}

// newWithClients wires the informers, the lookups and the event sink to
// the given API (REST clients from New, client-go's fakes in unit tests).
func newWithClients(opts Options, log *slog.Logger, api apiCalls, src sources, events eventAPI) (*Client, error) {
	c := &Client{opts: opts, log: log, api: api, deleted: newRecentUIDs(4096, 10*time.Minute)}
	c.events = newEventSink(events, opts.NodeName, log)

	podInf, err := newInformer(src.pods, &corev1.Pod{}, trimPod)
	if err != nil {
		return nil, err
	}
	if _, err := podInf.AddEventHandler(cache.ResourceEventHandlerFuncs{UpdateFunc: c.onPodUpdate, DeleteFunc: c.onPodDelete}); err != nil {
		return nil, err
	}
	c.pods = corelisters.NewPodLister(podInf.GetIndexer())
	nadInf, err := newInformer(src.nads, &nadv1.NetworkAttachmentDefinition{}, trimNAD)
	if err != nil {
		return nil, err
	}
	c.nadList = nadlisters.NewNetworkAttachmentDefinitionLister(nadInf.GetIndexer())
	c.synced = []cache.InformerSynced{podInf.HasSynced, nadInf.HasSynced}
	var sliceInf cache.SharedIndexInformer
	if src.slices != nil {
		if sliceInf, err = newInformer(src.slices, &resourcev1.ResourceSlice{}, trimSlice); err != nil {
			return nil, err
		}
		c.slices = sliceInf.GetStore()
		c.synced = append(c.synced, sliceInf.HasSynced)
	}
	if m := opts.Metrics; m != nil {
		informers := map[string]cache.SharedIndexInformer{"pods": podInf, "nads": nadInf}
		names := []string{"pods", "nads"}
		m.LabeledGauge("informer_synced", "1 once the informer (pods of this node, NADs) has synced, else 0.", "informer", names, func() map[string]float64 {
			out := map[string]float64{}
			for n, inf := range informers {
				if inf.HasSynced() {
					out[n] = 1
				}
			}
			return out
		})
		m.LabeledGauge("informer_objects", "Objects in the informer's cache (pods of this node, NADs of the cluster).", "informer", names, func() map[string]float64 {
			out := map[string]float64{}
			for n, inf := range informers {
				out[n] = float64(len(inf.GetStore().ListKeys()))
			}
			return out
		})
	}
	c.start = func(ctx context.Context) {
		go podInf.RunWithContext(ctx)
		go nadInf.RunWithContext(ctx)
		if sliceInf != nil {
			go sliceInf.RunWithContext(ctx)
		}
	}
	return c, nil
}

// newInformer is a namespace-indexed informer without resync whose objects
// go through trim before they are cached.
func newInformer(lw cache.ListerWatcher, obj runtime.Object, trim cache.TransformFunc) (cache.SharedIndexInformer, error) {
	inf := cache.NewSharedIndexInformerWithOptions(lw, obj, cache.SharedIndexInformerOptions{
		Indexers: cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc}})
	return inf, inf.SetTransform(trim)
}

// Start runs the informers and the event sink until ctx ends.
func (c *Client) Start(ctx context.Context) {
	c.start(ctx)
	c.events.start(ctx)
	go func() {
		if cache.WaitForCacheSync(ctx.Done(), c.synced...) {
			c.log.Info("informers synced")
		}
	}()
}

// Ready is nil once the pod and NAD informers have synced.
func (c *Client) Ready() error {
	for _, s := range c.synced {
		if !s() {
			return errors.New("pod and NAD informers not synced yet")
		}
	}
	return nil
}

// GetNAD implements netselect.NADGetter from the informer cache.
func (c *Client) GetNAD(namespace, name string) (*nadv1.NetworkAttachmentDefinition, error) {
	nad, err := c.nadList.NetworkAttachmentDefinitions(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("NetworkAttachmentDefinition %s/%s: %w", namespace, name, podref.ErrNotFound)
	}
	return nad, err
}

func (c *Client) onPodDelete(obj interface{}) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if p, ok := obj.(*corev1.Pod); ok {
		c.deleted.add(string(p.UID))
	}
}

// trimPod keeps only what Plexus reads, so memory does not grow with pod
// size: identity, annotations, node, deletion mark.
func trimPod(obj interface{}) (interface{}, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	return &corev1.Pod{
		TypeMeta:   p.TypeMeta,
		ObjectMeta: trimMeta(p.ObjectMeta),
		Spec:       corev1.PodSpec{NodeName: p.Spec.NodeName, HostNetwork: p.Spec.HostNetwork, ResourceClaims: p.Spec.ResourceClaims},
		Status:     corev1.PodStatus{Phase: p.Status.Phase, ResourceClaimStatuses: p.Status.ResourceClaimStatuses},
	}, nil
}

// lastApplied is kubectl apply's copy of the whole object, which would
// double what the cache holds for nothing.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// trimMeta keeps the identity, the annotations (but kubectl's copy) and
// the deletion mark.
func trimMeta(m metav1.ObjectMeta) metav1.ObjectMeta {
	ann := m.Annotations
	if _, ok := ann[lastApplied]; ok {
		ann = maps.Clone(ann)
		delete(ann, lastApplied)
	}
	return metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
		Annotations: ann, DeletionTimestamp: m.DeletionTimestamp}
}

// trimNAD keeps only what Plexus reads of a NAD: identity, annotations
// (the device resource name) and the config.
func trimNAD(obj interface{}) (interface{}, error) {
	n, ok := obj.(*nadv1.NetworkAttachmentDefinition)
	if !ok {
		return obj, nil
	}
	return &nadv1.NetworkAttachmentDefinition{TypeMeta: n.TypeMeta, ObjectMeta: trimMeta(n.ObjectMeta), Spec: n.Spec}, nil
}

// recentUIDs remembers pods deleted lately: a sandbox whose pod is gone but
// was known gets an error, one the API never knew an empty result.
type recentUIDs struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration
	seen  map[string]time.Time
	order []string
}

func newRecentUIDs(max int, ttl time.Duration) *recentUIDs {
	return &recentUIDs{max: max, ttl: ttl, seen: map[string]time.Time{}}
}

func (r *recentUIDs) add(uid string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.seen[uid]; !ok {
		r.order = append(r.order, uid)
	}
	r.seen[uid] = time.Now()
	for len(r.order) > r.max {
		delete(r.seen, r.order[0])
		r.order = r.order[1:]
	}
}

func (r *recentUIDs) has(uid string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.seen[uid]
	return ok && time.Since(t) < r.ttl
}

// podRef helper for events.
func objectRef(ref podref.Ref) *corev1.ObjectReference {
	return &corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: ref.Namespace, Name: ref.Name, UID: k8stypes.UID(ref.UID)}
}
