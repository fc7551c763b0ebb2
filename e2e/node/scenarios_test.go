package node

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"sigs.k8s.io/yaml"

	"github.com/plexus-cni/plexus/internal/chart"
	"github.com/plexus-cni/plexus/internal/testutil"
)

// rounds is how often each startup measurement is repeated
// (PLEXUS_E2E_NODE_ROUNDS, default 1); the samples are pooled.
func rounds() int {
	if r, err := strconv.Atoi(os.Getenv("PLEXUS_E2E_NODE_ROUNDS")); err == nil && r > 0 {
		return r
	}
	return 1
}

// measureDeployment creates a 20-replica Deployment, records each pod's
// creation→Running, deletes it and waits for its pods to be gone; rounds()
// times.
func (n *Node) measureDeployment(t *testing.T, ns, what, networks string) {
	t.Helper()
	var all, sbx []time.Duration
	for r := 0; r < rounds(); r++ {
		name := fmt.Sprintf("lat%d", r)
		ds, _ := n.deploy20(t, ns, name, what, networks)
		all = append(all, ds...)
		n.deleteDeployment(t, ns, name)
		sbx = append(sbx, n.SandboxTimes(ns, name+"-")...)
	}
	n.addLatency(what, all)
	n.addLatency("RunPodSandbox "+what, sbx)
}

func (n *Node) addLatency(what string, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	n.Latency = append(n.Latency, latency{Name: what, N: len(ds), P50: Percentile(ds, 50), P99: Percentile(ds, 99), Max: ds[len(ds)-1]})
}

// deploy20 creates a 20-replica Deployment and waits until every pod was
// seen Running; it returns each pod's creation→Running.
func (n *Node) deploy20(t *testing.T, ns, name, what, networks string) ([]time.Duration, time.Duration) {
	t.Helper()
	const replicas = 20
	w := n.WatchStartup(t, ns)
	defer w.Stop()
	start := time.Now()
	n.Deployment(t, ns, name, replicas, networks)
	if err := testutil.WaitFor(context.Background(), 5*time.Minute, func() (bool, string) {
		return w.Running() >= replicas, fmt.Sprintf("%d/%d Running", w.Running(), replicas)
	}); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	took := time.Since(start)
	ds, skipped := w.Latencies()
	t.Logf("%s: %d pods Running in %s; creation→Running p50 %s p99 %s (%d without a usable creation time)", what, replicas, took.Round(time.Millisecond),
		Percentile(ds, 50).Round(time.Millisecond), Percentile(ds, 99).Round(time.Millisecond), skipped)
	if strings.HasPrefix(what, "with Plexus") {
		// statusWrite async allows a Running pod without network-status
		// for the time of one PATCH: how often a watcher saw that.
		t.Logf("%s: %d/%d pods carried network-status in the first version that showed them Running", what, w.RunningWithStatus(), replicas)
	}
	return ds, took
}

// deleteDeployment deletes a Deployment (foreground) and waits until no pod
// of it is left.
func (n *Node) deleteDeployment(t *testing.T, ns, name string) {
	t.Helper()
	ctx := context.Background()
	fg := metav1.DeletePropagationForeground
	if err := n.Kube.AppsV1().Deployments(ns).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &fg}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatalf("delete deployment: %v", err)
	}
	if err := testutil.WaitFor(ctx, 3*time.Minute, func() (bool, string) {
		pods, err := n.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
		if err != nil {
			return false, err.Error()
		}
		return len(pods.Items) == 0, fmt.Sprintf("%d pods left", len(pods.Items))
	}); err != nil {
		t.Fatalf("deployment %s/%s pods not gone: %v", ns, name, err)
	}
}

// keepPlexusLog copies a plexusd pod's container log into the run's logs
// (the kubelet removes a deleted pod's logs), for the figures afterwards.
func (n *Node) keepPlexusLog(p *corev1.Pod) {
	logs, _ := filepath.Glob(filepath.Join(n.podLogs(), "kube-system_"+p.Name+"_*", "plexusd", "*.log"))
	for i, l := range logs {
		_ = copyFile(l, n.p("logs", fmt.Sprintf("plexusd-%s-%d.log", p.Name, i)), 0o644)
	}
}

// dumpOnFailure logs what helps to see why a phase failed.
func (n *Node) dumpOnFailure(t *testing.T, phase string) {
	t.Logf("--- %s failed; kubelet log tail:\n%s", phase, n.Tail("kubelet", 3000))
	t.Logf("--- containerd log tail:\n%s", n.Tail("containerd", 3000))
	if logs, _ := filepath.Glob(filepath.Join(n.podLogs(), "kube-system_plexus-*", "plexusd", "*.log")); len(logs) > 0 {
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			t.Logf("--- %s:\n%s", strings.TrimPrefix(l, n.Root), b)
		}
	}
}

// deployDir is the repo's deployments/.
// deployFile is one file of the Helm chart's default render (`helm
// template plexus -n kube-system`, made with Helm's library): Plexus is
// installed on the node from the chart. (e2e's TestHelmChart... checks the
// render equals the plain manifests in deployments/.)
func (n *Node) deployFile(name string) string {
	dir := n.p("helm-render")
	n.renderOnce.Do(func() { n.renderErr = chart.WriteRender(filepath.Join(n.Repo, chart.Dir), "kube-system", nil, dir) })
	if n.renderErr != nil {
		panic(fmt.Sprintf("render the Helm chart: %v", n.renderErr))
	}
	return filepath.Join(dir, name)
}

// testConfig is the shipped plexusd.json with the paths of this node. The
// shipped values are checked first, so a change of configmap.yaml fails
// loudly. Paths plexusd reaches through the host root stay below
// /hostroot, now naming this node's private directories there; binDir is
// a host path (delegates run chrooted); the socket, cniDir and the
// device-info dir move to private paths, mounted at the same path inside
// the pod, since the shim (run by containerd on the host) and the plugins
// read them too.
func (n *Node) testConfig(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(n.deployFile("configmap.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	if err := yaml.Unmarshal(b, &cm); err != nil {
		t.Fatalf("configmap.yaml: %v", err)
	}
	cfg := map[string]any{}
	if err := json.Unmarshal([]byte(cm.Data["plexusd.json"]), &cfg); err != nil {
		t.Fatalf("configmap.yaml plexusd.json: %v", err)
	}
	const hr = "/hostroot"
	set := func(key string, shipped, val any) {
		if cfg[key] != shipped {
			t.Fatalf("configmap.yaml: %s %v, want %v", key, cfg[key], shipped)
		}
		cfg[key] = val
	}
	set("chrootDir", hr, hr)
	set("binDir", "/opt/cni/bin", n.binDir())
	set("cniConfigDir", hr+"/etc/cni/net.d", hr+n.confDir())
	set("confDir", hr+"/etc/cni/plexus/net.d", hr+n.p("etc/cni/plexus/net.d"))
	set("criSocket", hr+"/run/containerd/containerd.sock", hr+n.ctrdSock())
	set("podResourcesSocket", hr+"/var/lib/kubelet/pod-resources/kubelet.sock", hr+n.p("kubelet/pod-resources/kubelet.sock"))
	set("cniDir", "/var/lib/cni/plexus", n.plexusCNIDir())
	set("socketDir", "/run/plexus", n.runPlexus())
	set("deviceInfoDir", "/var/run/k8s.cni.cncf.io/devinfo", n.devInfoDir())
	// Every scenario runs with the orphan sweep active and the runtime
	// asked: it must never touch a live pod.
	cfg["orphanSweepInterval"] = "2s"
	// And with hot-plug on: it must never change a pod whose networks
	// annotation did not change (step Hotplug changes one).
	cfg["hotplug"] = true
	out, _ := json.MarshalIndent(cfg, "", "  ")
	return string(out)
}

// daemonSetPatch is the JSON patch that points the shipped DaemonSet's
// hostPaths at this node's private directories. Every replaced value is
// tested first, so a change of deployments/daemonset.yaml fails loudly.
func (n *Node) daemonSetPatch(t *testing.T, image string) string {
	t.Helper()
	b, err := os.ReadFile(n.deployFile("daemonset.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var ds appsv1.DaemonSet
	if err := yaml.Unmarshal(b, &ds); err != nil {
		t.Fatalf("daemonset.yaml: %v", err)
	}
	var ops []map[string]any
	repl := func(path string, old, val any) {
		ops = append(ops, map[string]any{"op": "test", "path": path, "value": old}, map[string]any{"op": "replace", "path": path, "value": val})
	}
	spec := ds.Spec.Template.Spec
	hostPaths := map[string]string{
		"cni-bin": n.binDir(), "hostroot": n.hostRoot(), "run-plexus": n.runPlexus(),
		"cni-plexus": n.plexusCNIDir(), "devinfo": n.devInfoDir(),
	}
	for i, v := range spec.Volumes {
		if to, ok := hostPaths[v.Name]; ok && v.HostPath != nil {
			repl(fmt.Sprintf("/spec/template/spec/volumes/%d/hostPath/path", i), v.HostPath.Path, to)
			delete(hostPaths, v.Name)
		}
	}
	if len(hostPaths) > 0 {
		t.Fatalf("daemonset.yaml has no hostPath volumes %v", keys(hostPaths))
	}
	samePath := map[string]string{"run-plexus": n.runPlexus(), "cni-plexus": n.plexusCNIDir(), "devinfo": n.devInfoDir()}
	found := false
	for ci, c := range spec.Containers {
		if c.Name != "plexusd" {
			continue
		}
		found = true
		base := fmt.Sprintf("/spec/template/spec/containers/%d", ci)
		for mi, m := range c.VolumeMounts {
			if to, ok := samePath[m.Name]; ok {
				repl(fmt.Sprintf("%s/volumeMounts/%d/mountPath", base, mi), m.MountPath, to)
			}
		}
		if c.ReadinessProbe == nil || c.ReadinessProbe.Exec == nil {
			t.Fatal("daemonset.yaml: plexusd has no exec readiness probe")
		}
		for ai, a := range c.ReadinessProbe.Exec.Command {
			if strings.HasSuffix(a, "/plexus.sock") {
				repl(fmt.Sprintf("%s/readinessProbe/exec/command/%d", base, ai), a, n.runPlexus()+"/plexus.sock")
			}
		}
		// No kube-proxy here: the kubernetes Service's ClusterIP leads
		// nowhere, so the in-cluster config is pointed at the API server
		// directly (as kube-proxy-free clusters do).
		for _, e := range []corev1.EnvVar{{Name: "KUBERNETES_SERVICE_HOST", Value: "127.0.0.1"}, {Name: "KUBERNETES_SERVICE_PORT", Value: n.APIPort}} {
			ops = append(ops, map[string]any{"op": "add", "path": base + "/env/-", "value": e})
		}
	}
	if !found {
		t.Fatal("daemonset.yaml: no plexusd container")
	}
	if image != "" {
		for ci := range spec.InitContainers {
			ops = append(ops, map[string]any{"op": "replace", "path": fmt.Sprintf("/spec/template/spec/initContainers/%d/image", ci), "value": image})
		}
		for ci := range spec.Containers {
			ops = append(ops, map[string]any{"op": "replace", "path": fmt.Sprintf("/spec/template/spec/containers/%d/image", ci), "value": image})
		}
	}
	out, _ := json.Marshal(ops)
	return string(out)
}

// plexusPod is the DaemonSet's pod on the node.
func (n *Node) plexusPod(ctx context.Context) (*corev1.Pod, error) {
	pods, err := n.Kube.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "app=plexus"})
	if err != nil {
		return nil, err
	}
	var live []corev1.Pod
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			live = append(live, p)
		}
	}
	if len(live) != 1 {
		return nil, fmt.Errorf("%d live plexus pods", len(live))
	}
	return &live[0], nil
}

// waitPlexusReady waits for a Ready plexus pod other than notUID.
func (n *Node) waitPlexusReady(t *testing.T, notUID string, timeout time.Duration) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	var pod *corev1.Pod
	if err := testutil.WaitFor(ctx, timeout, func() (bool, string) {
		p, err := n.plexusPod(ctx)
		if err != nil {
			return false, err.Error()
		}
		pod = p
		return string(p.UID) != notUID && podReady(p), fmt.Sprintf("%s %s ready=%v %s", p.Name, p.Status.Phase, podReady(p), n.podEvents("kube-system", p.Name))
	}); err != nil {
		t.Fatalf("plexusd pod not Ready: %v", err)
	}
	return pod
}

func (n *Node) generatedPath() string { return filepath.Join(n.confDir(), "00-plexus.conflist") }

// waitRuntimeUses waits until containerd's CNI config is the network name.
func (n *Node) waitRuntimeUses(t *testing.T, network string) {
	t.Helper()
	ctx := context.Background()
	if err := testutil.WaitFor(ctx, 30*time.Second, func() (bool, string) {
		st, err := n.CRI.Status(ctx, &runtimeapi.StatusRequest{Verbose: true})
		if err != nil {
			return false, err.Error()
		}
		var info struct {
			Networks []struct {
				Config struct{ Name string }
			}
		}
		_ = json.Unmarshal([]byte(st.Info["cniconfig"]), &info)
		var names []string
		for _, nw := range info.Networks {
			names = append(names, nw.Config.Name)
		}
		return len(names) > 0 && names[len(names)-1] == network, fmt.Sprintf("runtime networks %v", names)
	}); err != nil {
		t.Fatalf("containerd does not use %s: %v", network, err)
	}
}

// testDeployPlexus applies deployments/ as a user would (CRD, RBAC,
// ConfigMap, DaemonSet), with the ConfigMap and the DaemonSet's hostPaths
// patched for this node's private directories, and waits for the plexusd
// pod to be Ready and for 00-plexus.conflist to be written and used.
func testDeployPlexus(t *testing.T, n *Node) {
	ctx := context.Background()
	for _, f := range []string{"crd.yaml", "rbac.yaml", "configmap.yaml"} {
		if _, err := n.Kubectl(ctx, nil, "apply", "-f", n.deployFile(f)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := n.Kubectl(ctx, nil, "wait", "--for", "condition=established", "--timeout=30s", "crd/network-attachment-definitions.k8s.cni.cncf.io"); err != nil {
		t.Fatal(err)
	}
	// The short names Multus users type.
	for _, short := range []string{"nad", "net-attach-def"} {
		if _, err := n.Kubectl(ctx, nil, "get", short, "-A"); err != nil {
			t.Errorf("kubectl get %s: %v", short, err)
		}
	}
	patch, _ := json.Marshal(map[string]any{"data": map[string]string{"plexusd.json": n.testConfig(t)}})
	if _, err := n.Kubectl(ctx, nil, "-n", "kube-system", "patch", "configmap", "plexusd-config", "--type", "merge", "-p", string(patch)); err != nil {
		t.Fatal(err)
	}
	// The DaemonSet is patched before it reaches the API server: as
	// shipped it would install the shim into the machine's /opt/cni/bin.
	ds, err := n.Kubectl(ctx, nil, "patch", "--local", "-f", n.deployFile("daemonset.yaml"), "--type", "json", "-p", n.daemonSetPatch(t, ""), "-o", "yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Kubectl(ctx, []byte(ds), "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	pod := n.waitPlexusReady(t, "", 2*time.Minute)
	t.Logf("plexusd pod %s Ready %s after the DaemonSet was applied", pod.Name, time.Since(start).Round(time.Millisecond))
	if err := testutil.WaitFor(ctx, 30*time.Second, func() (bool, string) {
		return fileExists(n.generatedPath()), "no " + n.generatedPath()
	}); err != nil {
		t.Fatal(err)
	}
	gen, _ := os.ReadFile(n.generatedPath())
	var conf struct {
		CNIVersion string `json:"cniVersion"`
		Name       string `json:"name"`
		Plugins    []map[string]any
	}
	if err := json.Unmarshal(gen, &conf); err != nil || len(conf.Plugins) != 1 {
		t.Fatalf("generated config: %v: %s", err, gen)
	}
	if conf.CNIVersion != "1.0.0" || conf.Plugins[0]["type"] != "plexus" || conf.Plugins[0]["socketPath"] != n.runPlexus()+"/plexus.sock" {
		t.Errorf("generated config %s", gen)
	}
	for _, bin := range []string{"plexus", "plexus-replay"} {
		if !fileExists(filepath.Join(n.binDir(), bin)) {
			t.Errorf("the init container did not install %s into %s", bin, n.binDir())
		}
	}
	n.waitRuntimeUses(t, conf.Name)
	n.Stages = append(n.Stages, stage{"Plexus deployed (apply → plexusd Ready → conflist used)", time.Since(start)})
}

// Network configs shared by the scenarios.
func (n *Node) attachNADs(t *testing.T, ns string) {
	t.Helper()
	n.NAD(t, ns, "mv-a", n.macvlanNAD("mv-a", parentA, "10.248.1.0/24"))
	n.NAD(t, ns, "mv-b", n.macvlanNAD("mv-b", parentB, "10.248.2.0/24"))
	n.NAD(t, ns, "mv-static", n.macvlanNAD("mv-static", parentA, ""))
}

// testAttachments: a pod without annotation gets only eth0; a pod with two
// macvlan NADs, one with a requested static IP, gets eth0, net1, net2 with
// the IPs, and its network-status is what its netns holds.
func testAttachments(t *testing.T, n *Node) {
	ns := n.Namespace(t, "node-attach")
	n.attachNADs(t, ns)
	plain := n.Pod(t, ns, "plain", "")
	multi := n.Pod(t, ns, "multi", `[{"name":"mv-a"},{"name":"mv-static","ips":["10.248.3.10/24"]}]`)
	n.WaitRunning(t, ns, plain.Name, 90*time.Second)
	n.WaitRunning(t, ns, multi.Name, 90*time.Second)

	st, links := n.CheckStatusMatchesNetns(t, plain)
	if len(links) != 1 || len(st) != 1 || st[0].Interface != "eth0" {
		t.Errorf("plain pod: links %v status %+v, want eth0 only", keys(links), st)
	}
	st, links = n.CheckStatusMatchesNetns(t, multi)
	if got := strings.Join(keys(links), ","); got != "eth0,net1,net2" {
		t.Fatalf("multi pod links %s, want eth0,net1,net2", got)
	}
	want := map[string]string{"eth0": "10.247.0.", "net1": "10.248.1.", "net2": "10.248.3.10/24"}
	for ifc, prefix := range want {
		if l := links[ifc]; len(l.IPs) != 1 || !strings.HasPrefix(l.IPs[0], prefix) {
			t.Errorf("multi pod %s IPs %v, want %s", ifc, l.IPs, prefix)
		}
	}
	names := map[string]string{}
	for _, s := range st {
		names[s.Interface] = s.Name
	}
	if !strings.HasSuffix(names["net1"], "mv-a") || !strings.HasSuffix(names["net2"], "mv-static") {
		t.Errorf("network-status names %v", names)
	}
	if ev := n.podEvents(ns, multi.Name); !strings.Contains(ev, "AddedInterface") {
		t.Logf("no AddedInterface Event on the pod (Events: %s)", ev)
	}
}

// testDefaultRoute: default-route on a secondary network moves the pod's
// default route there; another pod keeps the cluster gateway.
func testDefaultRoute(t *testing.T, n *Node) {
	ns := n.Namespace(t, "node-route")
	n.attachNADs(t, ns)
	moved := n.Pod(t, ns, "moved", `[{"name":"mv-a","default-route":["10.248.1.1"]}]`)
	kept := n.Pod(t, ns, "kept", `[{"name":"mv-a"}]`)
	moved = n.WaitRunning(t, ns, moved.Name, 90*time.Second)
	kept = n.WaitRunning(t, ns, kept.Name, 90*time.Second)
	if got := DefaultRoutes(t, n.SandboxOf(t, moved).NetNS); strings.Join(got, "|") != "via 10.248.1.1 dev net1" {
		t.Errorf("default-route pod: default routes %q, want [via 10.248.1.1 dev net1]", got)
	}
	if got := DefaultRoutes(t, n.SandboxOf(t, kept).NetNS); strings.Join(got, "|") != "via 10.247.0.1 dev eth0" {
		t.Errorf("other pod: default routes %q, want [via 10.247.0.1 dev eth0]", got)
	}
	n.CheckStatusMatchesNetns(t, moved)
}

// writeStaticPod writes a pause pod's manifest (namespace default, with the
// networks annotation) into the kubelet's staticPodPath; it is removed at
// the end of the test if still there.
func (n *Node) writeStaticPod(t *testing.T, name, networks string) string {
	t.Helper()
	p := corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Annotations: map[string]string{networksKey: networks}},
		Spec:       podSpec(),
	}
	b, err := yaml.Marshal(p)
	if err != nil {
		t.Fatalf("static pod %s: %v", name, err)
	}
	path := filepath.Join(n.staticPodDir(), name+".yaml")
	tmp := filepath.Join(n.staticPodDir(), "."+name+".tmp") // the kubelet skips dot files
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(path) })
	return path
}

// testStaticPodWithNetworks: a static pod (manifest in staticPodPath) with
// a networks annotation gets its network; the network-status lands on its
// mirror pod, whose API UID is not the sandbox's K8S_POD_UID (the config
// hash). Removing the manifest tears it all down.
func testStaticPodWithNetworks(t *testing.T, n *Node) {
	ctx := context.Background()
	const ns = "default"
	n.NAD(t, ns, "mv-a", n.macvlanNAD("mv-a", parentA, "10.248.1.0/24"))
	t.Cleanup(func() {
		_ = n.NADs.K8sCniCncfIoV1().NetworkAttachmentDefinitions(ns).Delete(ctx, "mv-a", metav1.DeleteOptions{})
	})
	ports := len(BridgePorts())
	manifest := n.writeStaticPod(t, "static-nets", "mv-a")
	mirror := "static-nets-" + nodeName
	p := n.WaitRunning(t, ns, mirror, 2*time.Minute)
	if h := p.Annotations[mirrorKey]; h == "" || h == string(p.UID) || p.Annotations["kubernetes.io/config.source"] != "file" {
		t.Fatalf("%s is not a mirror pod of a file static pod: uid %s, annotations %v", mirror, p.UID, p.Annotations)
	}
	st, links := n.CheckStatusMatchesNetns(t, p)
	if got := strings.Join(keys(links), ","); got != "eth0,net1" {
		t.Errorf("static pod links %s, want eth0,net1", got)
	}
	byIfc := map[string]NetStatus{}
	for _, s := range st {
		byIfc[s.Interface] = s
	}
	if s := byIfc["eth0"]; !s.Default || len(s.IPs) == 0 {
		t.Errorf("network-status has no default cluster network with IPs on eth0: %+v", st)
	}
	if s := byIfc["net1"]; !strings.HasSuffix(s.Name, "mv-a") || s.Default || len(s.IPs) != 1 || !strings.HasPrefix(s.IPs[0], "10.248.1.") {
		t.Errorf("network-status net1 %+v, want mv-a with an IP in 10.248.1.0/24", s)
	}
	sb := n.SandboxOf(t, p)
	if err := os.Remove(manifest); err != nil {
		t.Fatal(err)
	}
	if err := testutil.WaitFor(ctx, 90*time.Second, func() (bool, string) {
		_, err := n.Kube.CoreV1().Pods(ns).Get(ctx, mirror, metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	}); err != nil {
		t.Fatalf("mirror pod %s/%s not gone after the manifest was removed: %v", ns, mirror, err)
	}
	n.checkGone(t, map[string]Sandbox{mirror: sb}, ports)
}

// podSandboxes maps the namespace's pods to their ready sandboxes.
func (n *Node) podSandboxes(t *testing.T, ns string) map[string]Sandbox {
	t.Helper()
	pods, err := n.Kube.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]Sandbox{}
	for i := range pods.Items {
		out[pods.Items[i].Name] = n.SandboxOf(t, &pods.Items[i])
	}
	return out
}

// leftovers lists what is left of these sandboxes: attachment records, IP
// allocations, netns, libcni cache entries, plexus cniDir files, bridge
// ports beyond portsBefore.
func (n *Node) leftovers(sbs map[string]Sandbox, portsBefore int) []string {
	var left []string
	recs := n.RecordIDs()
	allocs := n.Allocations()
	for pod, sb := range sbs {
		if recs[sb.ID] {
			left = append(left, fmt.Sprintf("%s: attachment record %s", pod, sb.ID[:12]))
		}
		for f, id := range allocs {
			if id == sb.ID {
				left = append(left, fmt.Sprintf("%s: IP allocation %s", pod, f))
			}
		}
		if fileExists(sb.NetNS) {
			left = append(left, fmt.Sprintf("%s: netns %s", pod, sb.NetNS))
		}
		if m, _ := filepath.Glob("/var/lib/cni/results/*" + sb.ID + "*"); len(m) > 0 {
			var kept []string
			for _, f := range m {
				if n.ignoreRuntimeCache == "" || !strings.HasPrefix(filepath.Base(f), n.ignoreRuntimeCache) {
					kept = append(kept, f)
				}
			}
			if len(kept) > 0 {
				left = append(left, fmt.Sprintf("%s: libcni cache %v", pod, kept))
			}
		}
		if m, _ := filepath.Glob(filepath.Join(n.plexusCNIDir(), "*", "*"+sb.ID+"*")); len(m) > 0 {
			left = append(left, fmt.Sprintf("%s: plexus cniDir files %v", pod, m))
		}
	}
	if got := len(BridgePorts()); got > portsBefore {
		left = append(left, fmt.Sprintf("bridge %s has %d ports, %d before", bridgeName, got, portsBefore))
	}
	return left
}

// checkGone waits until nothing of these sandboxes is left. The API object
// of a deleted pod can be gone before the kubelet has stopped its sandbox
// (the CNI DEL), so this polls.
func (n *Node) checkGone(t *testing.T, sbs map[string]Sandbox, portsBefore int) {
	t.Helper()
	start := time.Now()
	var left []string
	err := testutil.WaitFor(context.Background(), 90*time.Second, func() (bool, string) {
		left = n.leftovers(sbs, portsBefore)
		return len(left) == 0, fmt.Sprintf("%d leftovers", len(left))
	})
	if err != nil {
		for _, l := range left {
			t.Errorf("left behind: %s", l)
		}
		return
	}
	t.Logf("%d deleted pods cleaned up (DEL done) %s after their API objects were gone", len(sbs), time.Since(start).Round(time.Millisecond))
}

// testDeployment20: 20 replicas over two networks become Ready; deleting
// the Deployment leaves no link, IP allocation or attachment record.
func testDeployment20(t *testing.T, n *Node) {
	ns := n.Namespace(t, "node-deploy")
	n.NAD(t, ns, "dep-a", n.macvlanNAD("dep-a", parentA, "10.248.11.0/24"))
	n.NAD(t, ns, "dep-b", n.macvlanNAD("dep-b", parentB, "10.248.12.0/24"))
	n.measureDeployment(t, ns, "with Plexus, eth0 only", "")

	// Rounds before the last only measure; the last is checked too.
	const what = "with Plexus, eth0 + 2 macvlan"
	var all, sbx []time.Duration
	for r := 1; r < rounds(); r++ {
		name := fmt.Sprintf("two%d", r)
		ds, _ := n.deploy20(t, ns, name, what, "dep-a,dep-b")
		all = append(all, ds...)
		n.deleteDeployment(t, ns, name)
		sbx = append(sbx, n.SandboxTimes(ns, name+"-")...)
	}
	const replicas = 20
	ports := len(BridgePorts())
	ds, _ := n.deploy20(t, ns, "two", what, "dep-a,dep-b")
	n.addLatency(what, append(all, ds...))
	n.addLatency("RunPodSandbox "+what, append(sbx, n.SandboxTimes(ns, "two-")...))
	sbs := n.podSandboxes(t, ns)
	pods, _ := n.Kube.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	for i := range pods.Items {
		_, links := n.CheckStatusMatchesNetns(t, &pods.Items[i])
		if got := strings.Join(keys(links), ","); got != "eth0,net1,net2" {
			t.Errorf("%s links %s", pods.Items[i].Name, got)
		}
	}
	if len(sbs) != replicas {
		t.Errorf("%d sandboxes, want %d", len(sbs), replicas)
	}
	n.deleteDeployment(t, ns, "two")
	n.checkGone(t, sbs, ports)
	for _, net := range []string{"dep-a", "dep-b"} {
		for f := range n.Allocations() {
			if strings.HasPrefix(f, net+"/") {
				t.Errorf("allocation %s left", f)
			}
		}
	}
}
