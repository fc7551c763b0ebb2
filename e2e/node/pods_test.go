package node

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/plexus-cni/plexus/internal/testutil"
)

const (
	networksKey = "k8s.v1.cni.cncf.io/networks"
	statusKey   = "k8s.v1.cni.cncf.io/network-status"
	mirrorKey   = "kubernetes.io/config.mirror" // on mirror pods: the static pod's config hash
)

// Namespace creates a namespace for one test, waits for its default
// service account (ServiceAccount admission), and deletes it at the end.
func (n *Node) Namespace(t *testing.T, name string) string {
	t.Helper()
	ctx := context.Background()
	if _, err := n.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("namespace %s: %v", name, err)
	}
	if err := testutil.WaitFor(ctx, 60*time.Second, func() (bool, string) {
		_, err := n.Kube.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, fmt.Sprint(err)
	}); err != nil {
		t.Fatalf("sa/default in %s: %v", name, err)
	}
	return name
}

// NAD creates a NetworkAttachmentDefinition.
func (n *Node) NAD(t *testing.T, ns, name, config string) {
	t.Helper()
	nad := &nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: nadv1.NetworkAttachmentDefinitionSpec{Config: config}}
	if _, err := n.NADs.K8sCniCncfIoV1().NetworkAttachmentDefinitions(ns).Create(context.Background(), nad, metav1.CreateOptions{}); err != nil {
		t.Fatalf("NAD %s/%s: %v", ns, name, err)
	}
}

// macvlanNAD is a macvlan config on parent with host-local in subnet
// (gateway .1), or static IPAM when subnet is "".
func (n *Node) macvlanNAD(name, parent, subnet string) string {
	if subnet == "" {
		return fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"type":"macvlan","master":%q,"mode":"bridge","capabilities":{"ips":true},"ipam":{"type":"static"}}`, name, parent)
	}
	gw := strings.TrimSuffix(subnet, "0/24") + "1"
	return fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"type":"macvlan","master":%q,"mode":"bridge","ipam":{"type":"host-local","ranges":[[{"subnet":%q,"gateway":%q}]],"dataDir":%q}}`,
		name, parent, subnet, gw, n.ipamDir())
}

// podSpec is a pause pod on this node, never pulled.
func podSpec() corev1.PodSpec {
	zero := int64(0)
	no := false
	return corev1.PodSpec{
		NodeName:                      nodeName,
		TerminationGracePeriodSeconds: &zero,
		AutomountServiceAccountToken:  &no,
		Containers:                    []corev1.Container{{Name: "app", Image: pauseImage, ImagePullPolicy: corev1.PullNever}},
	}
}

// Pod creates a pod (networks: the annotation, "" for none).
func (n *Node) Pod(t *testing.T, ns, name, networks string) *corev1.Pod {
	t.Helper()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: podSpec()}
	if networks != "" {
		p.Annotations = map[string]string{networksKey: networks}
	}
	out, err := n.Kube.CoreV1().Pods(ns).Create(context.Background(), p, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("pod %s/%s: %v", ns, name, err)
	}
	return out
}

// WaitRunning waits for a pod to be Running (and its container ready).
func (n *Node) WaitRunning(t *testing.T, ns, name string, timeout time.Duration) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	var pod *corev1.Pod
	err := testutil.WaitFor(ctx, timeout, func() (bool, string) {
		p, err := n.Kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		pod = p
		return p.Status.Phase == corev1.PodRunning && podReady(p), string(p.Status.Phase) + " " + n.podEvents(ns, name)
	})
	if err != nil {
		t.Fatalf("pod %s/%s not Running: %v", ns, name, err)
	}
	return pod
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// podEvents summarises the pod's Events (for failure messages).
func (n *Node) podEvents(ns, name string) string {
	evs, err := n.Kube.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
	if err != nil {
		return ""
	}
	var s []string
	for _, e := range evs.Items {
		s = append(s, fmt.Sprintf("[%s %s x%d: %.300s]", e.Type, e.Reason, e.Count, e.Message))
	}
	return strings.Join(s, " ")
}

// DeletePod deletes a pod and waits until it is gone (kubelet tore it down).
func (n *Node) DeletePod(t *testing.T, ns, name string) {
	t.Helper()
	ctx := context.Background()
	if err := n.Kube.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatalf("delete pod %s/%s: %v", ns, name, err)
	}
	if err := testutil.WaitFor(ctx, 90*time.Second, func() (bool, string) {
		_, err := n.Kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	}); err != nil {
		t.Fatalf("pod %s/%s not gone: %v", ns, name, err)
	}
}

// Sandbox is a pod's ready sandbox as CRI shows it (crictl inspectp).
type Sandbox struct {
	ID    string
	NetNS string
	Info  string // containerd's verbose info (cniResult, runtimeSpec...)
}

// sandboxUID is the UID the runtime knows the pod by: for a mirror pod, the
// static pod's (its config hash), not the API object's.
func sandboxUID(p *corev1.Pod) string {
	if h := p.Annotations[mirrorKey]; h != "" {
		return h
	}
	return string(p.UID)
}

// SandboxOf finds the pod's ready sandbox.
func (n *Node) SandboxOf(t *testing.T, pod *corev1.Pod) Sandbox {
	t.Helper()
	ctx := context.Background()
	resp, err := n.CRI.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{
		State:         &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY},
		LabelSelector: map[string]string{"io.kubernetes.pod.uid": sandboxUID(pod)},
	}})
	if err != nil || len(resp.Items) != 1 {
		t.Fatalf("sandbox of %s/%s: %v (%d ready)", pod.Namespace, pod.Name, err, len(resp.GetItems()))
	}
	id := resp.Items[0].Id
	st, err := n.CRI.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id, Verbose: true})
	if err != nil {
		t.Fatalf("inspect sandbox %s: %v", id, err)
	}
	var info struct {
		RuntimeSpec struct {
			Linux struct {
				Namespaces []struct{ Type, Path string }
			}
		}
	}
	if err := json.Unmarshal([]byte(st.Info["info"]), &info); err != nil {
		t.Fatalf("sandbox %s info: %v", id, err)
	}
	sb := Sandbox{ID: id, Info: st.Info["info"]}
	for _, ns := range info.RuntimeSpec.Linux.Namespaces {
		if ns.Type == "network" {
			sb.NetNS = ns.Path
		}
	}
	if sb.NetNS == "" {
		t.Fatalf("sandbox %s has no netns path", id)
	}
	return sb
}

// Link is an interface inside a pod as `ip -j addr` shows it.
type Link struct {
	Name string
	MAC  string
	IPs  []string // CIDR
}

// Links lists the pod's interfaces (without lo).
func Links(t *testing.T, netns string) map[string]Link {
	t.Helper()
	out, err := exec.Command("nsenter", "--net="+netns, "ip", "-j", "addr", "show").Output()
	if err != nil {
		t.Fatalf("ip addr in %s: %v", netns, err)
	}
	var ls []struct {
		Ifname   string `json:"ifname"`
		Address  string `json:"address"`
		AddrInfo []struct {
			Family    string `json:"family"`
			Local     string `json:"local"`
			Prefixlen int    `json:"prefixlen"`
			Scope     string `json:"scope"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal(out, &ls); err != nil {
		t.Fatalf("ip -j addr: %v: %s", err, out)
	}
	m := map[string]Link{}
	for _, l := range ls {
		if l.Ifname == "lo" {
			continue
		}
		k := Link{Name: l.Ifname, MAC: strings.ToLower(l.Address)}
		for _, a := range l.AddrInfo {
			if a.Scope == "link" {
				continue
			}
			k.IPs = append(k.IPs, fmt.Sprintf("%s/%d", a.Local, a.Prefixlen))
		}
		m[l.Ifname] = k
	}
	return m
}

// DefaultRoutes lists "via GW dev DEV" for the IPv4 default routes.
func DefaultRoutes(t *testing.T, netns string) []string {
	t.Helper()
	out, err := exec.Command("nsenter", "--net="+netns, "ip", "-4", "-j", "route", "show", "table", "main").Output()
	if err != nil {
		t.Fatalf("ip route in %s: %v", netns, err)
	}
	var rs []struct{ Dst, Gateway, Dev string }
	if err := json.Unmarshal(out, &rs); err != nil {
		t.Fatalf("ip -j route: %v: %s", err, out)
	}
	var d []string
	for _, r := range rs {
		if r.Dst == "default" || r.Dst == "0.0.0.0/0" {
			d = append(d, "via "+r.Gateway+" dev "+r.Dev)
		}
	}
	sort.Strings(d)
	return d
}

// NetStatus is one network-status element.
type NetStatus struct {
	Name      string   `json:"name"`
	Interface string   `json:"interface"`
	IPs       []string `json:"ips"`
	MAC       string   `json:"mac"`
	Default   bool     `json:"default"`
}

func networkStatus(t *testing.T, p *corev1.Pod) []NetStatus {
	t.Helper()
	raw, ok := p.Annotations[statusKey]
	if !ok {
		t.Fatalf("%s/%s has no %s", p.Namespace, p.Name, statusKey)
	}
	var st []NetStatus
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		t.Fatalf("%s/%s %s: %v: %s", p.Namespace, p.Name, statusKey, err, raw)
	}
	return st
}

// CheckStatusMatchesNetns compares the pod's network-status with what is in
// its netns: the same interfaces, MACs and IPs. It returns both.
func (n *Node) CheckStatusMatchesNetns(t *testing.T, p *corev1.Pod) ([]NetStatus, map[string]Link) {
	t.Helper()
	p, err := n.Kube.CoreV1().Pods(p.Namespace).Get(context.Background(), p.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st := networkStatus(t, p)
	links := Links(t, n.SandboxOf(t, p).NetNS)
	seen := map[string]bool{}
	for _, s := range st {
		seen[s.Interface] = true
		l, ok := links[s.Interface]
		if !ok {
			t.Errorf("%s/%s: network-status has %s (%s), the netns has no such link (has %v)", p.Namespace, p.Name, s.Interface, s.Name, keys(links))
			continue
		}
		if s.MAC != "" && !strings.EqualFold(s.MAC, l.MAC) {
			t.Errorf("%s/%s %s: status mac %s, netns %s", p.Namespace, p.Name, s.Interface, s.MAC, l.MAC)
		}
		for _, ip := range s.IPs {
			if !hasIP(l.IPs, ip) {
				t.Errorf("%s/%s %s: status ip %s not in netns %v", p.Namespace, p.Name, s.Interface, ip, l.IPs)
			}
		}
		for _, ip := range l.IPs {
			if !hasIP(s.IPs, ip) {
				t.Errorf("%s/%s %s: netns ip %s not in status %v", p.Namespace, p.Name, s.Interface, ip, s.IPs)
			}
		}
	}
	for name := range links {
		if !seen[name] {
			t.Errorf("%s/%s: netns has %s, network-status does not", p.Namespace, p.Name, name)
		}
	}
	return st, links
}

func hasIP(list []string, ip string) bool {
	bare := strings.Split(ip, "/")[0]
	for _, x := range list {
		if x == ip || strings.Split(x, "/")[0] == bare {
			return true
		}
	}
	return false
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Deployment creates a Deployment of pause pods (scheduled by the
// scheduler, not by nodeName) with the networks annotation.
func (n *Node) Deployment(t *testing.T, ns, name string, replicas int32, networks string) {
	t.Helper()
	spec := podSpec()
	spec.NodeName = ""
	tmpl := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}}, Spec: spec}
	if networks != "" {
		tmpl.Annotations = map[string]string{networksKey: networks}
	}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: tmpl,
		},
	}
	if _, err := n.Kube.AppsV1().Deployments(ns).Create(context.Background(), d, metav1.CreateOptions{}); err != nil {
		t.Fatalf("deployment %s/%s: %v", ns, name, err)
	}
}

// StartupWatch records, for every pod of a namespace, when the watch first
// saw it and when it first saw it Running with its container ready.
type StartupWatch struct {
	mu      sync.Mutex
	created map[string]time.Time
	running map[string]time.Time
	// withStatus: the first version of the pod that showed it Running
	// already carried network-status (what a watcher can see with
	// statusWrite async).
	withStatus map[string]bool
	stop       context.CancelFunc
	done       chan struct{}
}

func (n *Node) WatchStartup(t *testing.T, ns string) *StartupWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &StartupWatch{created: map[string]time.Time{}, running: map[string]time.Time{}, withStatus: map[string]bool{}, stop: cancel, done: make(chan struct{})}
	see := func(p *corev1.Pod) {
		now := time.Now()
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, ok := s.created[p.Name]; !ok {
			s.created[p.Name] = now
		}
		if _, ok := s.running[p.Name]; !ok && p.Status.Phase == corev1.PodRunning && podReady(p) {
			s.running[p.Name] = now
			s.withStatus[p.Name] = p.Annotations[statusKey] != ""
		}
	}
	// A list, then a watch from its resourceVersion, again whenever the
	// watch ends: a watch the API server closes with an error (1.34 on
	// Debian's etcd 3.4, which has no progress notifications, answers a
	// watch of a quiet namespace "Too large resource version" at first)
	// must not leave the count stuck.
	first, err := n.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		cancel()
		t.Fatalf("list pods in %s: %v", ns, err)
	}
	go func() {
		defer close(s.done)
		list := first
		for ctx.Err() == nil {
			if list == nil {
				if list, err = n.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); err != nil {
					time.Sleep(100 * time.Millisecond)
					continue
				}
			}
			for i := range list.Items {
				see(&list.Items[i])
			}
			w, err := n.Kube.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
			list = nil
			if err != nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			for ev := range w.ResultChan() {
				if p, ok := ev.Object.(*corev1.Pod); ok && ev.Type != watch.Deleted {
					see(p)
				}
			}
			w.Stop()
		}
	}()
	t.Cleanup(s.Stop)
	return s
}

func (s *StartupWatch) Stop() { s.stop(); <-s.done }

// Running is how many pods were seen Running.
func (s *StartupWatch) Running() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.running)
}

// RunningWithStatus is how many pods carried network-status in the first
// version that showed them Running.
func (s *StartupWatch) RunningWithStatus() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, ok := range s.withStatus {
		if ok {
			n++
		}
	}
	return n
}

// Latencies are creation→Running of every pod seen Running, sorted. A pod
// whose first event already showed it Running (the watch stream lagged:
// under heavy load the API server can deliver a pod's events in one burst)
// has no usable creation time: it is left out and counted in skipped.
func (s *StartupWatch) Latencies() (ds []time.Duration, skipped int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, r := range s.running {
		d := r.Sub(s.created[name])
		if d < time.Millisecond {
			skipped++
			continue
		}
		ds = append(ds, d)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds, skipped
}

// SandboxTimes are containerd's RunPodSandbox durations (CNI ADD
// included) for the pods of ns whose name starts with prefix, from its log.
func (n *Node) SandboxTimes(ns, prefix string) []time.Duration {
	b, _ := os.ReadFile(n.p("logs", "containerd.log"))
	re := regexp.MustCompile(`^time="([^"]+)".*msg="RunPodSandbox for &PodSandboxMetadata\{Name:([^,]+),Uid:[^,]+,Namespace:([^,]+),Attempt:(\d+),\}(.*)`)
	starts := map[string]time.Time{}
	var ds []time.Duration
	for _, line := range strings.Split(string(b), "\n") {
		m := re.FindStringSubmatch(line)
		if m == nil || m[3] != ns || !strings.HasPrefix(m[2], prefix) {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			continue
		}
		key := m[2] + "/" + m[4]
		switch {
		case strings.Contains(m[5], "returns sandbox id"):
			if st, ok := starts[key]; ok {
				ds = append(ds, t.Sub(st))
			}
		case strings.Contains(m[5], "failed"):
		default:
			starts[key] = t
		}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds
}

// Percentile of sorted durations (nearest rank).
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := int(float64(len(ds))*p/100+0.999999) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(ds) {
		i = len(ds) - 1
	}
	return ds[i]
}

// RecordIDs lists the container IDs that have an attachment record.
func (n *Node) RecordIDs() map[string]bool {
	ids := map[string]bool{}
	ents, _ := os.ReadDir(filepath.Join(n.plexusCNIDir(), "attachments"))
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".json") {
			ids[strings.TrimSuffix(e.Name(), ".json")] = true
		}
	}
	return ids
}

// Allocations maps host-local IP files (network/ip) to the container ID
// holding them.
func (n *Node) Allocations() map[string]string {
	out := map[string]string{}
	nets, _ := os.ReadDir(n.ipamDir())
	for _, d := range nets {
		files, _ := os.ReadDir(filepath.Join(n.ipamDir(), d.Name()))
		for _, f := range files {
			if f.Name() == "lock" || strings.HasPrefix(f.Name(), "last_reserved_ip") {
				continue
			}
			b, _ := os.ReadFile(filepath.Join(n.ipamDir(), d.Name(), f.Name()))
			id := "" // a file being written may still be empty
			if fs := strings.Fields(string(b)); len(fs) > 0 {
				id = fs[0]
			}
			out[d.Name()+"/"+f.Name()] = id
		}
	}
	return out
}

// BridgePorts lists the host-side veths on the primary bridge.
func BridgePorts() []string {
	ents, _ := os.ReadDir("/sys/class/net/" + bridgeName + "/brif")
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}
