package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/plugins/pkg/ns"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nadclient "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/plexus-cni/plexus/e2e/kubeharness"
)

type mode string

const (
	modeFloor    mode = "floor"
	modeManifest mode = "plexus-manifest"
	// modeMetrics is the manifest daemon with metrics on (metricsPort),
	// to compare with modeManifest in the same run.
	modeMetrics mode = "plexus-manifest-metrics"
	modeAPI     mode = "plexus-api"
)

const (
	benchNS   = "bench"
	plexusNS  = "plexus-system"
	benchNode = "bench-node"
	parent    = "bench0"
)

type podInfo struct{ name, uid string }

type daemonProc struct {
	cmd    *exec.Cmd
	socket string
	cniDir string
	log    string
	pprof  string // root-only pprof socket
	// metricsPort is set when the daemon serves metrics (its ADD steps
	// are read from them).
	metricsPort int
}

type bench struct {
	o       options
	dir     string
	ipamDir string
	shim    string
	// shimCPU sums the CPU (user+sys, ns) of the shim processes the
	// phases ran, by verb.
	shimCPU  sync.Map // string → *atomic.Int64
	plugins  string
	floor    *libcni.CNIConfig
	lists    []*libcni.NetworkConfigList // cluster-net, mv1, mv2, mv3
	pods     map[int][]podInfo           // by networks per pod
	manifest *daemonProc
	metricsD *daemonProc
	api      *daemonProc
	scaleD   *daemonProc
	hotplugD *daemonProc
	liveMu   sync.Mutex
	live     map[*sandbox]bool // sandboxes of the running phase
	cluster  *kubeharness.Cluster
	kube     kubernetes.Interface
	nads     nadclient.Interface
	seq      int
}

func newBench(o options) (*bench, error) {
	dir, err := os.MkdirTemp("", "plexus-bench-")
	if err != nil {
		return nil, err
	}
	b := &bench{o: o, dir: dir, ipamDir: filepath.Join(dir, "ipam"), shim: filepath.Join(o.root, "bin", "plexus"),
		plugins: filepath.Join(o.root, "bin", "cni"), pods: map[int][]podInfo{}}
	for _, c := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", parent, "type", "veth", "peer", "name", parent + "p"},
		{"link", "set", parent, "up"}, {"link", "set", parent + "p", "up"},
	} {
		if out, err := exec.Command("ip", c...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("ip %v: %w: %s", c, err, out)
		}
	}
	for i := 0; i < 4; i++ {
		list, err := libcni.NetworkConfFromBytes([]byte(b.netConf(i)))
		if err != nil {
			return nil, err
		}
		b.lists = append(b.lists, list)
	}
	b.floor = libcni.NewCNIConfigWithCacheDir([]string{b.plugins}, filepath.Join(dir, "floor-cache"), nil)
	for _, n := range o.nets {
		for i := 0; i < o.pods; i++ {
			b.pods[n] = append(b.pods[n], podInfo{name: fmt.Sprintf("n%d-%03d", n, i)})
		}
	}
	if b.manifest, err = b.startManifestDaemon("manifest", nil); err != nil {
		b.close()
		return nil, err
	}
	if b.metricsD, err = b.startManifestDaemon("manifest-metrics", map[string]interface{}{"metricsPort": 9092}); err != nil {
		b.close()
		return nil, err
	}
	if o.api {
		if err := b.startAPI(); err != nil {
			b.close()
			return nil, err
		}
	}
	return b, nil
}

// netConf i: 0 is the cluster network (bridge), 1..3 macvlan networks.
func (b *bench) netConf(i int) string {
	if i == 0 {
		return fmt.Sprintf(`{"cniVersion":"1.0.0","name":"cluster-net","plugins":[{"type":"bridge","bridge":"benchbr0","isGateway":true,"ipam":{"type":"host-local","dataDir":%q,"ranges":[[{"subnet":"10.100.0.0/16"}]],"routes":[{"dst":"0.0.0.0/0"}]}}]}`, b.ipamDir)
	}
	return fmt.Sprintf(`{"cniVersion":"1.0.0","name":"mv%d","plugins":[{"type":"macvlan","master":%q,"mode":"bridge","ipam":{"type":"host-local","dataDir":%q,"ranges":[[{"subnet":"10.%d.0.0/16"}]]}}]}`, i, parent, b.ipamDir, 100+i)
}

func (b *bench) annotation(nets int) string {
	var names []string
	for i := 1; i < nets; i++ {
		names = append(names, fmt.Sprintf("mv%d", i))
	}
	return strings.Join(names, ",")
}

func (b *bench) daemonConfig(name string, extra map[string]interface{}) (*daemonProc, string, error) {
	d := &daemonProc{socket: filepath.Join(b.dir, name, "run", "plexus.sock"), cniDir: filepath.Join(b.dir, name, "cni"), log: filepath.Join(b.dir, name, "plexusd.log"), pprof: filepath.Join(b.dir, name, "pprof.sock")}
	if p, ok := extra["metricsPort"].(int); ok {
		d.metricsPort = p
	}
	cfg := map[string]interface{}{
		"clusterNetwork": "cluster-net", "multusNamespace": plexusNS,
		"binDir": b.plugins, "cniDir": d.cniDir, "socketDir": filepath.Dir(d.socket),
		"statusDir": filepath.Join(b.dir, name, "status"), "confDir": filepath.Join(b.dir, name, "net.d"),
		"logFile": d.log, "logToStderr": false, "logLevel": "warn", "pprofSocket": d.pprof,
	}
	for k, v := range extra {
		cfg[k] = v
	}
	path := filepath.Join(b.dir, name, "plexusd.json")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, "", err
	}
	data, _ := json.Marshal(cfg)
	return d, path, os.WriteFile(path, data, 0o600)
}

func (b *bench) startDaemon(d *daemonProc, cfg string, args ...string) error {
	d.cmd = exec.Command(filepath.Join(b.o.root, "bin", "plexusd"), append([]string{"--config", cfg}, args...)...)
	d.cmd.Stderr = os.Stderr
	if err := d.cmd.Start(); err != nil {
		return err
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if readyz(d.socket) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("plexusd (%s) not ready", cfg)
}

func readyz(socket string) bool {
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", socket)
	}}}
	resp, err := c.Get("http://plexusd/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (b *bench) startManifestDaemon(name string, extra map[string]interface{}) (*daemonProc, error) {
	mdir := filepath.Join(b.dir, "manifests")
	if err := os.MkdirAll(mdir, 0o755); err != nil {
		return nil, err
	}
	var docs []string
	for i := 0; i < 4; i++ {
		ns := benchNS
		if i == 0 {
			ns = plexusNS
		}
		q, _ := json.Marshal(b.netConf(i))
		docs = append(docs, fmt.Sprintf("apiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\nmetadata: {name: %s, namespace: %s}\nspec:\n  config: %s\n", b.lists[i].Name, ns, q))
	}
	for n, pods := range b.pods {
		for _, p := range pods {
			docs = append(docs, fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n  namespace: %s\n  annotations: {k8s.v1.cni.cncf.io/networks: %q}\n", p.name, benchNS, b.annotation(n)))
		}
	}
	if err := os.WriteFile(filepath.Join(mdir, "all.yaml"), []byte(strings.Join(docs, "---\n")), 0o644); err != nil {
		return nil, err
	}
	cfgExtra := map[string]interface{}{"manifestsDir": mdir}
	for k, v := range extra {
		cfgExtra[k] = v
	}
	d, cfg, err := b.daemonConfig(name, cfgExtra)
	if err != nil {
		return nil, err
	}
	return d, b.startDaemon(d, cfg)
}

func (b *bench) startAPI() error {
	ctx := context.Background()
	c, err := kubeharness.Start(ctx, kubeharness.Options{BinDir: filepath.Join(b.o.root, ".cache", "kube", "v1.33.13", "bin")})
	if err != nil {
		return err
	}
	b.cluster = c
	if _, err := c.Kubectl(ctx, "apply", "-f", filepath.Join(b.o.root, "deployments", "crd.yaml")); err != nil {
		return err
	}
	if _, err := c.Kubectl(ctx, "wait", "--for", "condition=established", "--timeout=30s", "crd/network-attachment-definitions.k8s.cni.cncf.io"); err != nil {
		return err
	}
	cfg := c.RESTConfig()
	cfg.QPS, cfg.Burst = 500, 1000
	b.kube = kubernetes.NewForConfigOrDie(cfg)
	b.nads = nadclient.NewForConfigOrDie(cfg)
	for _, ns := range []string{benchNS, plexusNS, "scale"} {
		if _, err := b.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	for i := 0; i < 4; i++ {
		ns := benchNS
		if i == 0 {
			ns = plexusNS
		}
		if err := b.createNAD(ctx, ns, b.lists[i].Name, b.netConf(i)); err != nil {
			return err
		}
	}
	for n, pods := range b.pods {
		for i := range pods {
			uid, err := b.createPod(ctx, benchNode, benchNS, pods[i].name, map[string]string{nadv1.NetworkAttachmentAnnot: b.annotation(n)})
			if err != nil {
				return err
			}
			pods[i].uid = uid
		}
	}
	// Metrics on: the ADD step breakdown of the API mode (their cost is
	// measured by the manifest pair).
	d, cfgPath, err := b.daemonConfig("api", map[string]interface{}{"metricsPort": 9093})
	if err != nil {
		return err
	}
	b.api = d
	return b.startDaemon(d, cfgPath, "--kubeconfig", c.Kubeconfig, "--node-name", benchNode)
}

func (b *bench) createNAD(ctx context.Context, ns, name, config string) error {
	_, err := b.nads.K8sCniCncfIoV1().NetworkAttachmentDefinitions(ns).Create(ctx, &nadv1.NetworkAttachmentDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: nadv1.NetworkAttachmentDefinitionSpec{Config: config}}, metav1.CreateOptions{})
	return err
}

func (b *bench) createPod(ctx context.Context, node, ns, name string, ann map[string]string) (string, error) {
	p, err := b.kube.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: ann},
		Spec: corev1.PodSpec{NodeName: node, AutomountServiceAccountToken: new(bool),
			Containers: []corev1.Container{{Name: "app", Image: "example.invalid/app"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	return string(p.UID), nil
}

func (b *bench) close() {
	var all []*sandbox
	b.liveMu.Lock()
	for s := range b.live {
		all = append(all, s)
	}
	b.liveMu.Unlock()
	b.release(all)
	for _, d := range []*daemonProc{b.manifest, b.metricsD, b.api, b.scaleD, b.hotplugD} {
		if d != nil && d.cmd != nil && d.cmd.Process != nil {
			_ = d.cmd.Process.Signal(os.Interrupt)
			_ = d.cmd.Wait()
		}
	}
	if b.cluster != nil {
		b.cluster.Stop()
	}
	_ = exec.Command("ip", "link", "del", parent).Run()
	_ = exec.Command("ip", "link", "del", "benchbr0").Run()
	os.RemoveAll(b.dir)
}

// sandbox is one pod's netns for one phase.
type sandbox struct {
	pod   podInfo
	cid   string
	netns ns.NetNS
}

func (b *bench) k8sArgs(s *sandbox) string {
	return fmt.Sprintf("IgnoreUnknown=1;K8S_POD_NAMESPACE=%s;K8S_POD_NAME=%s;K8S_POD_INFRA_CONTAINER_ID=%s;K8S_POD_UID=%s", benchNS, s.pod.name, s.cid, s.pod.uid)
}

func ifname(i int) string {
	if i == 0 {
		return "eth0"
	}
	return fmt.Sprintf("net%d", i)
}

func (b *bench) floorOp(ctx context.Context, add bool, s *sandbox, nets int) error {
	args := [][2]string{{"IgnoreUnknown", "true"}, {"K8S_POD_NAMESPACE", benchNS}, {"K8S_POD_NAME", s.pod.name}, {"K8S_POD_INFRA_CONTAINER_ID", s.cid}, {"K8S_POD_UID", s.pod.uid}}
	rt := func(i int) *libcni.RuntimeConf {
		return &libcni.RuntimeConf{ContainerID: s.cid, NetNS: s.netns.Path(), IfName: ifname(i), Args: args}
	}
	if add {
		for i := 0; i < nets; i++ {
			if _, err := b.floor.AddNetworkList(ctx, b.lists[i], rt(i)); err != nil {
				return fmt.Errorf("floor ADD %s: %w", ifname(i), err)
			}
		}
		return nil
	}
	for i := nets - 1; i >= 0; i-- {
		if err := b.floor.DelNetworkList(ctx, b.lists[i], rt(i)); err != nil {
			return fmt.Errorf("floor DEL %s: %w", ifname(i), err)
		}
	}
	return nil
}

func (b *bench) shimOp(d *daemonProc, command string, s *sandbox) error {
	cmd := exec.Command(b.shim)
	cmd.Env = []string{"CNI_COMMAND=" + command, "CNI_CONTAINERID=" + s.cid, "CNI_NETNS=" + s.netns.Path(), "CNI_IFNAME=eth0",
		"CNI_PATH=" + b.plugins, "CNI_ARGS=" + b.k8sArgs(s)}
	cmd.Stdin = strings.NewReader(fmt.Sprintf(`{"cniVersion":"1.0.0","name":"plexus","type":"plexus","socketPath":%q,"cniDir":%q,"binDir":%q}`, d.socket, d.cniDir, b.plugins))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("plexus %s %s: %w: %s", command, s.pod.name, err, out.String())
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		v, _ := b.shimCPU.LoadOrStore(command, new(atomic.Int64))
		v.(*atomic.Int64).Add(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return nil
}

// shimCPUNanos is the shim CPU spent on verb so far.
func (b *bench) shimCPUNanos(verb string) int64 {
	if v, ok := b.shimCPU.Load(verb); ok {
		return v.(*atomic.Int64).Load()
	}
	return 0
}

// runConc runs op over sandboxes with conc workers; returns per-op
// latencies, the wall time and the errors.
func runConc(conc int, sbs []*sandbox, op func(*sandbox) error) ([]time.Duration, time.Duration, []error) {
	lat := make([]time.Duration, len(sbs))
	errs := make([]error, len(sbs))
	next := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				t := time.Now()
				errs[i] = op(sbs[i])
				lat[i] = time.Since(t)
			}
		}()
	}
	for i := range sbs {
		next <- i
	}
	close(next)
	wg.Wait()
	wall := time.Since(start)
	var out []error
	for _, e := range errs {
		if e != nil {
			out = append(out, e)
		}
	}
	return lat, wall, out
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	idx := int(p*float64(len(s)-1) + 0.5)
	return s[idx]
}

// profile fetches a pprof profile from the daemon into dst.
func (d *daemonProc) profile(path, dst string) error {
	c := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.pprof)
	}}}
	resp, err := c.Get("http://plexusd" + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return err
	}
	return os.WriteFile(dst, buf.Bytes(), 0o644)
}
