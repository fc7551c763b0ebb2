package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nadclient "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"

	"github.com/plexus-cni/plexus/e2e/kubeharness"
)

var kubeBinDir = filepath.Join(root, ".cache", "kube", "v1.33.13", "bin")

var shared struct {
	once    sync.Once
	cluster *kubeharness.Cluster
	err     error
}

// cluster returns the suite's API server, started on first use and stopped
// by TestMain.
func cluster(t *testing.T) *kubeharness.Cluster {
	t.Helper()
	requireRoot(t)
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		start := time.Now()
		shared.cluster, shared.err = kubeharness.Start(ctx, kubeharness.Options{BinDir: kubeBinDir})
		if shared.err == nil {
			_, shared.err = shared.cluster.Kubectl(ctx, "apply", "-f", filepath.Join(root, "deployments", "crd.yaml"))
		}
		if shared.err == nil {
			_, shared.err = shared.cluster.Kubectl(ctx, "wait", "--for", "condition=established", "--timeout=30s", "crd/network-attachment-definitions.k8s.cni.cncf.io")
		}
		fmt.Fprintf(os.Stderr, "kube-apiserver + etcd ready in %s\n", time.Since(start).Round(time.Millisecond))
	})
	if shared.err != nil {
		t.Fatalf("control plane: %v", shared.err)
	}
	return shared.cluster
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.cluster != nil {
		shared.cluster.Stop()
	}
	os.Exit(code)
}

// kubeEnv is the Kubernetes side of an env: a namespace of its own (which
// is also the Plexus namespace holding the cluster network), a node name,
// clients, and the kubeconfig the daemon uses.
type kubeEnv struct {
	c           *kubeharness.Cluster
	kube        kubernetes.Interface
	nads        nadclient.Interface
	ns          string
	node        string
	kubeconfig  string
	noWaitReady bool
	pods        []*pod
}

type kubeOpt func(*kubeEnv)

func withKube(t *testing.T, opts ...kubeOpt) envOpt {
	t.Helper()
	c := cluster(t)
	cfg := c.RESTConfig()
	k := &kubeEnv{c: c, kube: kubernetes.NewForConfigOrDie(cfg), nads: nadclient.NewForConfigOrDie(cfg),
		ns: "plexus-" + rand.String(6), node: "node-" + rand.String(6), kubeconfig: c.Kubeconfig}
	for _, o := range opts {
		o(k)
	}
	return func(e *env) {
		e.kube = k
		e.extraCfg["multusNamespace"] = k.ns
		e.extraCfg["podWaitTimeout"] = "1s"
	}
}

func (k *kubeEnv) setup(e *env) {
	ctx := context.Background()
	if _, err := k.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: k.ns}}, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	k.createNAD(e.t, k.ns, "cluster-net", clusterNADConfig(e.ipamDir))
	k.forward(e)
	e.t.Cleanup(func() {
		for _, p := range k.pods {
			zero := int64(0)
			_ = k.kube.CoreV1().Pods(p.ns).Delete(context.Background(), p.name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
		}
	})
}

// forward makes the API server reachable from the env's host netns, where
// plexusd runs: a listener on the same loopback address and port, created
// inside that netns, relays each connection to the real API server in the
// test's netns (a socket stays in the netns it was created in).
func (k *kubeEnv) forward(e *env) {
	u, err := url.Parse(k.c.URL)
	if err != nil {
		e.t.Fatal(err)
	}
	var l net.Listener
	if err := e.host.Do(func(ns.NetNS) error {
		var lerr error
		l, lerr = net.Listen("tcp", u.Host)
		return lerr
	}); err != nil {
		e.t.Fatalf("API relay in host netns: %v", err)
	}
	e.t.Cleanup(func() { l.Close() })
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			go relay(in, u.Host)
		}
	}()
}

func relay(in net.Conn, addr string) {
	defer in.Close()
	out, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return
	}
	defer out.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(out, in); done <- struct{}{} }()
	go func() { _, _ = io.Copy(in, out); done <- struct{}{} }()
	<-done
}

func (k *kubeEnv) createNAD(t *testing.T, ns, name, config string) {
	t.Helper()
	nad := &nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: nadv1.NetworkAttachmentDefinitionSpec{Config: config}}
	if _, err := k.nads.K8sCniCncfIoV1().NetworkAttachmentDefinitions(ns).Create(context.Background(), nad, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create NAD %s/%s: %v", ns, name, err)
	}
}

func (k *kubeEnv) ensureNamespace(t *testing.T, ns string) {
	t.Helper()
	_, _ = k.kube.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
}

// createPod creates the pod in the API (bound to the env's node) and its
// sandbox netns.
func (e *env) createPod(ns, name string, annotations map[string]string) *pod {
	e.t.Helper()
	p := e.createPodObject(ns, name, annotations)
	n := e.newPod(ns, name)
	p.netns = n.netns
	return p
}

// createPodObject creates the pod in the API; the sandbox has no netns yet.
func (e *env) createPodObject(ns, name string, annotations map[string]string) *pod {
	e.t.Helper()
	k := e.kube
	obj := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: annotations},
		Spec: corev1.PodSpec{NodeName: k.node, Containers: []corev1.Container{{Name: "app", Image: "example.invalid/app"}},
			AutomountServiceAccountToken: new(bool)},
	}
	created, err := k.kube.CoreV1().Pods(ns).Create(context.Background(), obj, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("create pod %s/%s: %v", ns, name, err)
	}
	p := newPodIdentity(ns, name)
	p.uid = string(created.UID)
	k.pods = append(k.pods, p)
	return p
}

// apiStatus is the pod's network-status on the API object, waited for up
// to 10 s: with statusWrite async (the default) it lands just after the
// ADD answers.
func (e *env) apiStatus(p *pod) []nadv1.NetworkStatus {
	e.t.Helper()
	var raw string
	deadline := time.Now().Add(10 * time.Second)
	for raw == "" && time.Now().Before(deadline) {
		if raw = e.apiStatusRaw(p); raw == "" {
			time.Sleep(20 * time.Millisecond)
		}
	}
	return e.decodeStatus(raw)
}

// rawStatus reads the pod's network-status; an API error is returned.
func (k *kubeEnv) rawStatus(p *pod) (string, error) {
	obj, err := k.kube.CoreV1().Pods(p.ns).Get(context.Background(), p.name, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	return obj.Annotations[nadv1.NetworkStatusAnnot], nil
}

// apiStatusNow is the network-status as the API object has it now.
func (e *env) apiStatusNow(p *pod) []nadv1.NetworkStatus {
	e.t.Helper()
	return e.decodeStatus(e.apiStatusRaw(p))
}

func (e *env) apiStatusRaw(p *pod) string {
	e.t.Helper()
	obj, err := e.kube.kube.CoreV1().Pods(p.ns).Get(context.Background(), p.name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return obj.Annotations[nadv1.NetworkStatusAnnot]
}

func (e *env) decodeStatus(raw string) []nadv1.NetworkStatus {
	e.t.Helper()
	if raw == "" {
		return nil
	}
	var st []nadv1.NetworkStatus
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		e.t.Fatalf("network-status %q: %v", raw, err)
	}
	return st
}

// waitEvent waits up to 5 s for an Event of the pod with reason and
// returns "type reason: message".
func (e *env) waitEvent(p *pod, reason string) string {
	e.t.Helper()
	return e.waitEventWith(p, reason, "")
}

func clusterNADConfig(ipamDir string) string {
	return fmt.Sprintf(`{"cniVersion":"1.0.0","name":"cluster-net","plugins":[{"type":"bridge","bridge":"plexus-br0","isGateway":true,"ipam":{"type":"host-local","dataDir":%q,"ranges":[[{"subnet":"10.88.0.0/16"}]],"routes":[{"dst":"0.0.0.0/0"}]}}]}`, ipamDir)
}

// apiRequests is the API server's request count by "VERB resource".
func apiRequests(t *testing.T, c *kubeharness.Cluster) map[string]float64 {
	t.Helper()
	out, err := c.RequestCounts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func delta(after, before map[string]float64) map[string]float64 {
	d := map[string]float64{}
	for k, v := range after {
		if v-before[k] > 0 {
			d[k] = v - before[k]
		}
	}
	return d
}
