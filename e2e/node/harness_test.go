package node

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	nadclient "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/clientset/versioned"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/plexus-cni/plexus/e2e/kubeharness"
	"github.com/plexus-cni/plexus/internal/testutil"
)

// Fixed names: one run at a time per machine (a lock file enforces it), so
// a killed run's leftovers can be found and removed by the next.
const (
	stateRoot   = "/tmp/plexus-e2e-node"
	lockFile    = "/tmp/plexus-e2e-node.lock"
	nodeName    = "plexus-e2e-node"
	cgroupRoot  = "/plexus-e2e"
	bridgeName  = "plxnode0"
	parentA     = "plxn-par0" // veth pair: the macvlan parents
	parentB     = "plxn-par1"
	primaryNet  = "plexus-e2e-primary"
	primaryFile = "10-primary.conflist"
	pauseImage  = "plexus.local/pause:e2e"
	kubeVersion = "v1.34.12"
)

// sysctls the kubelet rewrites (setupKernelTunables), and ip_forward
// (the bridge, ptp and flannel plugins turn it on); saved before the node
// starts and restored at the end.
var kubeletSysctls = []string{"net/ipv4/ip_forward", "vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops", "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes"}

// undo is what the run changed outside its directory, kept on disk
// (state.json) so the next run can undo a killed run.
type undo struct {
	Sysctls           map[string]string `json:"sysctls"`
	MadeVarLogContain bool              `json:"madeVarLogContainers"`
	MadeVarLibCNI     bool              `json:"madeVarLibCNI"`     // containerd's libcni cache parent
	MadeVarLibKubelet bool              `json:"madeVarLibKubelet"` // the device manager's fixed socket dir
	MadeRunMultus     bool              `json:"madeRunMultus"`     // Multus's shim's fixed socket dir
	ClusterDir        string            `json:"clusterDir"`        // kubeharness state (certs, etcd)
}

// Node is the running single-node cluster.
type Node struct {
	Root, Repo, KubeBin string
	Cluster             *kubeharness.Cluster
	Kube                kubernetes.Interface
	NADs                nadclient.Interface
	CRI                 runtimeapi.RuntimeServiceClient
	APIPort             string

	criConn *grpc.ClientConn
	procs   []*testutil.Proc // in start order; stopped in reverse
	undo    undo
	lock    *os.File
	Stages  []stage
	Latency []latency
	// ignoreRuntimeCache: runtime cache entries (by name prefix) that
	// leftovers does not count.
	ignoreRuntimeCache string
	// The Helm chart's render Plexus is installed from (deployFile).
	renderOnce sync.Once
	renderErr  error
}

type latency struct {
	Name          string
	N             int
	P50, P99, Max time.Duration
}

type stage struct {
	Name string
	D    time.Duration
}

func (n *Node) p(parts ...string) string { return filepath.Join(append([]string{n.Root}, parts...)...) }

// Paths as the runtime, the shim and (mounted at the same path) plexusd see them.
func (n *Node) confDir() string      { return n.p("etc/cni/net.d") }
func (n *Node) binDir() string       { return n.p("opt/cni/bin") }
func (n *Node) ipamDir() string      { return n.p("var/lib/cni/networks") }
func (n *Node) plexusCNIDir() string { return n.p("var/lib/cni/plexus") }
func (n *Node) runPlexus() string    { return n.p("run/plexus") }
func (n *Node) ctrdSock() string     { return n.p("run/containerd.sock") }
func (n *Node) ctrdState() string    { return n.p("containerd/state") }
func (n *Node) netnsDir() string {
	return filepath.Join(n.ctrdState(), "io.containerd.grpc.v1.cri", "netns")
}
func (n *Node) podLogs() string    { return n.p("pod-logs") }
func (n *Node) devInfoDir() string { return n.p("devinfo") }

// hostRoot is the node's "/" for the DaemonSet's hostroot mount: a
// recursive bind of / made shared, since this machine's / is private and
// containerd mounts a HostToContainer hostPath only from a shared or slave
// mount (a systemd host's / is shared).
func (n *Node) hostRoot() string { return n.p("hostroot") }

// staticPodDir is the kubelet's staticPodPath.
func (n *Node) staticPodDir() string { return n.p("etc/kubernetes/manifests") }

func (n *Node) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "e2e-node: "+format+"\n", args...)
}

func (n *Node) timed(name string, f func() error) error {
	start := time.Now()
	err := f()
	d := time.Since(start)
	n.Stages = append(n.Stages, stage{name, d})
	n.logf("%s: %s", name, d.Round(time.Millisecond))
	return err
}

// repoRoot is two levels up from this package.
func repoRoot() string {
	wd, _ := os.Getwd()
	return filepath.Clean(filepath.Join(wd, "..", ".."))
}

// missing lists what the suite needs and is not there.
func missing(repo string) []string {
	kb := filepath.Join(repo, ".cache", "kube", kubeVersion, "bin")
	var out []string
	need := []string{
		filepath.Join(kb, "kube-apiserver"), filepath.Join(kb, "kubectl"), filepath.Join(kb, "kubelet"),
		filepath.Join(kb, "kube-controller-manager"), filepath.Join(kb, "kube-scheduler"),
		"/usr/bin/etcd", "/usr/bin/containerd", "/usr/bin/ctr", "/usr/bin/containerd-shim-runc-v2", "/usr/sbin/runc", "/usr/bin/nsenter",
		filepath.Join(repo, "bin", "plexus-image.tar"), filepath.Join(repo, "bin", "plexus"), filepath.Join(repo, "bin", "plexus-replay"), filepath.Join(repo, "bin", "plexusd"),
	}
	for _, p := range cniPlugins {
		need = append(need, filepath.Join(repo, "bin", "cni", p))
	}
	for _, f := range need {
		if _, err := os.Stat(f); err != nil {
			out = append(out, f)
		}
	}
	return out
}

var cniPlugins = []string{"bridge", "host-local", "loopback", "macvlan", "static", "ptp", "portmap", "bandwidth"}

// Start brings the node up with only the primary CNI config.
func Start(ctx context.Context) (n *Node, err error) {
	repo := repoRoot()
	n = &Node{Root: stateRoot, Repo: repo, KubeBin: filepath.Join(repo, ".cache", "kube", kubeVersion, "bin")}
	if m := missing(repo); len(m) > 0 {
		return nil, fmt.Errorf("missing (run `make e2e-node`): %s", strings.Join(m, " "))
	}
	if n.lock, err = os.OpenFile(lockFile, os.O_CREATE|os.O_RDWR, 0o600); err != nil {
		return nil, err
	}
	if err := unix.Flock(int(n.lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		n.lock.Close()
		return nil, fmt.Errorf("another e2e-node run holds %s", lockFile)
	}
	defer func() {
		if err != nil {
			n.Stop()
			n = nil
		}
	}()
	if _, serr := os.Stat(n.Root); serr == nil {
		n.logf("removing the leftovers of a previous run in %s", n.Root)
		if terr := n.teardownHost(true); terr != nil {
			return n, fmt.Errorf("leftovers of a previous run: %w", terr)
		}
	}
	for _, d := range []string{n.confDir(), n.binDir(), n.ipamDir(), n.plexusCNIDir(), n.runPlexus(), n.p("run"), n.p("logs"), n.hostRoot(), n.devInfoDir(),
		n.p("containerd/root"), n.netnsDir(), n.p("runc"), n.p("kubelet"), n.podLogs(), n.p("images"), n.staticPodDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return n, err
		}
	}
	if err := n.timed("control plane (etcd, kube-apiserver, kcm, scheduler)", func() error { return n.startControlPlane(ctx) }); err != nil {
		return n, err
	}
	if err := n.timed("node (links, CNI, containerd, images, kubelet Ready)", func() error { return n.startNode(ctx) }); err != nil {
		return n, err
	}
	return n, nil
}

func (n *Node) startControlPlane(ctx context.Context) error {
	c, err := kubeharness.Start(ctx, kubeharness.Options{BinDir: n.KubeBin, ServiceAccountAdmission: true})
	if err != nil {
		return err
	}
	n.Cluster = c
	u, err := url.Parse(c.URL)
	if err != nil {
		return err
	}
	n.APIPort = u.Port()
	cfg := c.RESTConfig()
	n.Kube = kubernetes.NewForConfigOrDie(cfg)
	n.NADs = nadclient.NewForConfigOrDie(cfg)
	ports, err := testutil.FreePorts(2)
	if err != nil {
		return err
	}
	kc := c.Kubeconfig
	if err := n.spawn("kube-controller-manager", filepath.Join(n.KubeBin, "kube-controller-manager"),
		"--kubeconfig="+kc, "--authentication-kubeconfig="+kc, "--authorization-kubeconfig="+kc,
		"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(ports[0]), "--leader-elect=false",
		"--root-ca-file="+c.CAFile, "--use-service-account-credentials=false",
		"--controllers=daemonset-controller,deployment-controller,replicaset-controller,garbage-collector-controller,"+
			"namespace-controller,serviceaccount-controller,root-ca-certificate-publisher-controller,"+
			"node-lifecycle-controller,pod-garbage-collector-controller,node-ipam-controller,resourceclaim-controller",
		"--concurrent-deployment-syncs=5", "--concurrent-replicaset-syncs=5",
		// The node's podCIDR, which flanneld's kube subnet manager needs.
		"--allocate-node-cidrs=true", "--cluster-cidr=10.244.0.0/16", "--node-cidr-mask-size=24"); err != nil {
		return err
	}
	if err := n.spawn("kube-scheduler", filepath.Join(n.KubeBin, "kube-scheduler"),
		"--kubeconfig="+kc, "--authentication-kubeconfig="+kc, "--authorization-kubeconfig="+kc,
		"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(ports[1]), "--leader-elect=false"); err != nil {
		return err
	}
	// The ServiceAccount admission plugin needs sa/default in a namespace
	// before a pod can be created there.
	return testutil.WaitFor(ctx, 60*time.Second, func() (bool, string) {
		_, err := n.Kube.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil, fmt.Sprintf("sa/default: %v", err)
	})
}

// primaryConflist is the node's primary network: bridge + host-local with a
// default route through the bridge (the "cluster gateway").
func (n *Node) primaryConflist() string {
	return fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": %q,
  "plugins": [
    {
      "type": "bridge",
      "bridge": %q,
      "isGateway": true,
      "ipMasq": false,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "10.247.0.0/24", "gateway": "10.247.0.1"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": %q
      }
    }
  ]
}
`, primaryNet, bridgeName, n.ipamDir())
}

func (n *Node) containerdConfig() string {
	return fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = %[3]q

[ttrpc]
  address = "%[3]s.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "%[1]s/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[4]q
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %[5]q
    conf_dir = %[6]q
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = %[7]q
`, n.p("containerd/root"), n.ctrdState(), n.ctrdSock(), pauseImage, n.binDir(), n.confDir(), n.p("runc"))
}

func (n *Node) kubeletConfig() (string, error) {
	ports, err := testutil.FreePorts(2)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: %d
healthzBindAddress: 127.0.0.1
healthzPort: %d
readOnlyPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: %q}
authorization: {mode: AlwaysAllow}
containerRuntimeEndpoint: unix://%s
imageServiceEndpoint: unix://%s
cgroupDriver: cgroupfs
cgroupRoot: %s
makeIPTablesUtilChains: false
failSwapOn: false
rotateCertificates: false
oomScoreAdj: 0
podLogsDir: %q
staticPodPath: %q
maxPods: 110
evictionHard: {"memory.available": "100Mi", "nodefs.available": "1%%", "nodefs.inodesFree": "1%%", "imagefs.available": "1%%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
`, ports[0], ports[1], n.Cluster.CAFile, n.ctrdSock(), n.ctrdSock(), cgroupRoot, n.podLogs(), n.staticPodDir()), nil
}

func (n *Node) startNode(ctx context.Context) error {
	// What is changed outside the state dir, saved before anything runs.
	n.undo.Sysctls = map[string]string{}
	for _, s := range kubeletSysctls {
		if b, err := os.ReadFile("/proc/sys/" + s); err == nil {
			n.undo.Sysctls[s] = strings.TrimSpace(string(b))
		}
	}
	if _, err := os.Stat("/var/log/containers"); errors.Is(err, os.ErrNotExist) {
		n.undo.MadeVarLogContain = true // the kubelet's fixed symlink dir
	}
	if _, err := os.Stat("/var/lib/cni"); errors.Is(err, os.ErrNotExist) {
		n.undo.MadeVarLibCNI = true
	}
	// The kubelet's device manager listens at a fixed path, whatever its
	// --root-dir: /var/lib/kubelet/device-plugins/kubelet.sock.
	if _, err := os.Stat("/var/lib/kubelet"); errors.Is(err, os.ErrNotExist) {
		n.undo.MadeVarLibKubelet = true
	}
	// Multus's shim dials /run/multus/multus.sock, whatever its daemon's
	// config says.
	if _, err := os.Stat("/run/multus"); errors.Is(err, os.ErrNotExist) {
		n.undo.MadeRunMultus = true
	}
	n.undo.ClusterDir = n.Cluster.Dir
	if err := n.saveUndo(); err != nil {
		return err
	}
	// The macvlan parents: a veth pair (this kernel has no dummy links).
	if out, err := exec.Command("ip", "link", "add", parentA, "type", "veth", "peer", "name", parentB).CombinedOutput(); err != nil {
		return fmt.Errorf("veth pair: %w: %s", err, out)
	}
	// flanneld's interface (no default route here): another pair.
	if out, err := exec.Command("ip", "link", "add", flannelLink, "type", "veth", "peer", "name", flannelPeer).CombinedOutput(); err != nil {
		return fmt.Errorf("veth pair: %w: %s", err, out)
	}
	if out, err := exec.Command("ip", "addr", "add", "10.249.0.1/24", "dev", flannelLink).CombinedOutput(); err != nil {
		return fmt.Errorf("address on %s: %w: %s", flannelLink, err, out)
	}
	for _, l := range []string{parentA, parentB, flannelLink, flannelPeer} {
		if out, err := exec.Command("ip", "link", "set", l, "up").CombinedOutput(); err != nil {
			return fmt.Errorf("link up %s: %w: %s", l, err, out)
		}
	}
	for _, p := range cniPlugins {
		if err := copyFile(filepath.Join(n.Repo, "bin", "cni", p), filepath.Join(n.binDir(), p), 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(n.confDir(), primaryFile), []byte(n.primaryConflist()), 0o644); err != nil {
		return err
	}
	// containerd bind-mounts each pod's netns file here; plexusd gets the
	// directory with HostToContainer propagation, which needs a shared mount
	// (what `ip netns` does for /run/netns).
	if err := unix.Mount(n.netnsDir(), n.netnsDir(), "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s: %w", n.netnsDir(), err)
	}
	if err := unix.Mount("", n.netnsDir(), "", unix.MS_SHARED, ""); err != nil {
		return fmt.Errorf("make-shared %s: %w", n.netnsDir(), err)
	}
	// Multus's manifest mounts the kubelet's dir with HostToContainer and
	// the CNI bin dir with Bidirectional propagation: shared mounts, as
	// on a systemd host.
	for _, d := range []string{n.p("kubelet"), n.binDir()} {
		if err := unix.Mount(d, d, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s: %w", d, err)
		}
		if err := unix.Mount("", d, "", unix.MS_SHARED, ""); err != nil {
			return fmt.Errorf("make-shared %s: %w", d, err)
		}
	}
	// After the netns dir, so the view holds a peer of it.
	if err := unix.Mount("/", n.hostRoot(), "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("rbind / %s: %w", n.hostRoot(), err)
	}
	if err := unix.Mount("", n.hostRoot(), "", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make-rshared %s: %w", n.hostRoot(), err)
	}
	cfgPath := n.p("containerd.toml")
	if err := os.WriteFile(cfgPath, []byte(n.containerdConfig()), 0o644); err != nil {
		return err
	}
	if err := n.spawn("containerd", "/usr/bin/containerd", "--config", cfgPath); err != nil {
		return err
	}
	if err := testutil.WaitFor(ctx, 30*time.Second, func() (bool, string) {
		_, err := os.Stat(n.ctrdSock())
		return err == nil, "containerd socket"
	}); err != nil {
		return err
	}
	if err := n.buildPause(ctx); err != nil {
		return err
	}
	for _, img := range []string{n.p("images", "pause.tar"), filepath.Join(n.Repo, "bin", "plexus-image.tar")} {
		if err := n.ImportImage(ctx, img); err != nil {
			return err
		}
	}
	conn, err := grpc.NewClient("unix://"+n.ctrdSock(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	n.criConn, n.CRI = conn, runtimeapi.NewRuntimeServiceClient(conn)

	// The kubelet: cgroups under a private root.
	if err := makeCgroupRoot(); err != nil {
		return err
	}
	kcfg, err := n.kubeletConfig()
	if err != nil {
		return err
	}
	if err := os.WriteFile(n.p("kubelet.yaml"), []byte(kcfg), 0o644); err != nil {
		return err
	}
	nodeKC := n.p("node.kubeconfig")
	if err := n.Cluster.WriteKubeconfig(nodeKC, n.Cluster.Token); err != nil {
		return err
	}
	if err := n.spawn("kubelet", filepath.Join(n.KubeBin, "kubelet"), "--config", n.p("kubelet.yaml"), "--kubeconfig", nodeKC,
		"--root-dir", n.p("kubelet"), "--cert-dir", n.p("kubelet/pki"), "--hostname-override", nodeName, "--v=1"); err != nil {
		return err
	}
	return testutil.WaitFor(ctx, 90*time.Second, func() (bool, string) {
		node, err := n.Kube.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady {
				return c.Status == corev1.ConditionTrue, c.Message
			}
		}
		return false, "no Ready condition"
	})
}

// buildPause compiles the pause binary and packs it as an image.
func (n *Node) buildPause(ctx context.Context) error {
	bin := n.p("images", "pause")
	cmd := exec.CommandContext(ctx, goBin(), "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "./e2e/node/pause")
	cmd.Dir, cmd.Env = n.Repo, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build pause: %w: %s", err, out)
	}
	return n.BuildImage(ctx, n.p("images", "pause.tar"), pauseImage, "/pause", "65535:65535", nil, bin+":/pause")
}

// BuildImage runs hack/image (this machine's platform).
func (n *Node) BuildImage(ctx context.Context, out, name, entrypoint, user string, labels []string, adds ...string) error {
	args := []string{"run", "./hack/image", "-o", out, "-name", name}
	if entrypoint != "" {
		args = append(args, "-entrypoint", entrypoint)
	}
	if user != "" {
		args = append(args, "-user", user)
	}
	for _, l := range labels {
		args = append(args, "-label", l)
	}
	for _, a := range adds {
		args = append(args, "-add", a)
	}
	cmd := exec.CommandContext(ctx, goBin(), args...)
	cmd.Dir = n.Repo
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("hack/image: %w: %s", err, out)
	}
	return nil
}

// BuildAndImport builds an image from files (hack/image) under
// images/<file> and imports it into the node's containerd.
func (n *Node) BuildAndImport(t *testing.T, file, name, entrypoint string, adds ...string) {
	t.Helper()
	tarball := n.p("images", file)
	if err := n.BuildImage(context.Background(), tarball, name, entrypoint, "", nil, adds...); err != nil {
		t.Fatal(err)
	}
	if err := n.ImportImage(context.Background(), tarball); err != nil {
		t.Fatal(err)
	}
}

// Testdata reads e2e/node/testdata/<name> with each @@KEY@@ replaced
// (pairs of old, new); a placeholder left unfilled fails the test.
func (n *Node) Testdata(t *testing.T, name string, oldnew ...string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(n.Repo, "e2e", "node", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	out := strings.NewReplacer(oldnew...).Replace(string(raw))
	if m := regexp.MustCompile(`@@[A-Z_]+@@`).FindString(out); m != "" {
		t.Fatalf("%s: %s not filled", name, m)
	}
	return []byte(out)
}

// ImportImage imports an image archive into the node's containerd (k8s.io namespace).
func (n *Node) ImportImage(ctx context.Context, tarball string) error {
	out, err := exec.CommandContext(ctx, "ctr", "--address", n.ctrdSock(), "-n", "k8s.io", "images", "import", tarball).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ctr import %s: %w: %s", tarball, err, out)
	}
	return nil
}

func goBin() string {
	if g, err := exec.LookPath("go"); err == nil {
		return g
	}
	return "/usr/local/go/bin/go"
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func (n *Node) saveUndo() error {
	b, _ := json.Marshal(n.undo)
	return os.WriteFile(n.p("state.json"), b, 0o600)
}

// cgroupHierarchies are the mounted hierarchies (v1 controllers, the named
// systemd one, and the unified v2 tree on a hybrid host).
func cgroupHierarchies() []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		for i, x := range fields {
			if x == "-" && i+1 < len(fields) && (fields[i+1] == "cgroup" || fields[i+1] == "cgroup2") {
				out = append(out, fields[4])
			}
		}
	}
	return out
}

// makeCgroupRoot creates cgroupRoot in every hierarchy; a v1 cpuset needs
// cpus and mems before a task may join.
func makeCgroupRoot() error {
	for _, h := range cgroupHierarchies() {
		d := filepath.Join(h, cgroupRoot)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		if filepath.Base(h) == "cpuset" {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				b, err := os.ReadFile(filepath.Join(h, f))
				if err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(d, f), b, 0o644); err != nil {
					return fmt.Errorf("%s: %w", f, err)
				}
			}
		}
	}
	return nil
}

func (n *Node) spawn(name, bin string, args ...string) error {
	logf, err := os.OpenFile(n.p("logs", name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group (stopped as a group); dies with the test binary.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if name == "containerd" {
		// CNI plugins inherit containerd's environment: keep it plain.
		cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"}
	}
	p, err := testutil.Start(name, cmd, nil, func() { logf.Close() })
	if err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	n.procs = append(n.procs, p)
	return nil
}

func (n *Node) stopProc(name string) {
	for i := len(n.procs) - 1; i >= 0; i-- {
		if p := n.procs[i]; p.Name == name {
			_ = p.Stop(syscall.SIGTERM, 15*time.Second) // a stopped server exits non-zero
		}
	}
}

// Stop tears everything down: pods' sandboxes (with their CNI DEL), the
// processes, mounts, cgroups, links, sysctls, the state directory.
func (n *Node) Stop() {
	if n == nil {
		return
	}
	n.stopProc("kube-controller-manager")
	n.stopProc("kube-scheduler")
	n.stopProc("kubelet")
	if n.CRI != nil {
		n.removeSandboxes()
	}
	if n.criConn != nil {
		n.criConn.Close()
	}
	n.stopProc("containerd")
	n.saveLogs()
	if err := n.teardownHost(false); err != nil {
		n.logf("teardown: %v", err)
	}
	if n.Cluster != nil {
		n.Cluster.Stop()
	}
	if n.lock != nil {
		n.lock.Close()
	}
}

// LogsDir keeps the last run's logs (components and pods) after teardown.
const LogsDir = "/tmp/plexus-e2e-node-logs"

func (n *Node) saveLogs() {
	os.RemoveAll(LogsDir)
	for _, d := range []string{"logs", "pod-logs"} {
		_ = filepath.WalkDir(n.p(d), func(p string, e os.DirEntry, err error) error {
			if err != nil || e.IsDir() || e.Type()&os.ModeSymlink != 0 {
				return nil
			}
			rel, _ := filepath.Rel(n.Root, p)
			dst := filepath.Join(LogsDir, rel)
			if os.MkdirAll(filepath.Dir(dst), 0o755) == nil {
				_ = copyFile(p, dst, 0o644)
			}
			return nil
		})
	}
	n.logf("logs kept in %s", LogsDir)
}

// removeSandboxes stops and removes every pod sandbox through CRI, pod
// networks first (their DEL goes through plexusd while it still runs),
// host-network ones (plexusd) last.
func (n *Node) removeSandboxes() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	resp, err := n.CRI.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		n.logf("list sandboxes: %v", err)
		return
	}
	var podNet, hostNet []string
	for _, s := range resp.Items {
		st, err := n.CRI.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: s.Id})
		if err == nil && st.Status.GetLinux().GetNamespaces().GetOptions().GetNetwork() == runtimeapi.NamespaceMode_NODE {
			hostNet = append(hostNet, s.Id)
		} else {
			podNet = append(podNet, s.Id)
		}
	}
	for _, ids := range [][]string{podNet, hostNet} {
		for _, id := range ids {
			if _, err := n.CRI.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
				n.logf("stop sandbox %s: %v", id[:12], err)
			}
			if _, err := n.CRI.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
				n.logf("remove sandbox %s: %v", id[:12], err)
			}
		}
	}
}

// teardownHost undoes what a run did outside its processes. leftovers: a
// previous run's state, whose processes may still be around.
func (n *Node) teardownHost(leftovers bool) error {
	var errs []error
	// Processes: shims of our containerd and anything still in our cgroups
	// (a killed run's containers outlive their shims).
	for _, pid := range pidsWithArg(n.ctrdSock()) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if leftovers {
		for _, name := range []string{"containerd", "kubelet", "kube-controller-manager", "kube-scheduler"} {
			for _, pid := range pidsWithArg(n.Root) {
				if strings.Contains(cmdline(pid), name) {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
	}
	if err := killCgroupTree(); err != nil {
		errs = append(errs, err)
	}
	// The host-root view first (a detach takes its whole tree), then the
	// mounts under the state dir, deepest first (netns files, the shared
	// netns dir, rootfs overlays, sandbox shm, kubelet's volumes).
	if isMountPoint(n.hostRoot()) {
		if err := unix.Unmount(n.hostRoot(), unix.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("umount %s: %w", n.hostRoot(), err))
		}
	}
	for i := 0; i < 3; i++ {
		mps := mountsUnder(n.Root)
		if len(mps) == 0 {
			break
		}
		for _, m := range mps {
			if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && i == 2 {
				errs = append(errs, fmt.Errorf("umount %s: %w", m, err))
			}
		}
	}
	if err := removeCgroupTree(); err != nil {
		errs = append(errs, err)
	}
	for _, l := range []string{bridgeName, parentA, parentB, flannelLink, flannelBridge, flannelVXLAN} {
		if _, err := os.Stat("/sys/class/net/" + l); err == nil {
			if out, err := exec.Command("ip", "link", "del", l).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("ip link del %s: %w: %s", l, err, out))
			}
		}
	}
	// Sysctls and the kubelet's /var/log/containers.
	var u undo
	if b, err := os.ReadFile(n.p("state.json")); err == nil {
		_ = json.Unmarshal(b, &u)
	}
	if u.Sysctls == nil {
		u = n.undo
	}
	keys := make([]string, 0, len(u.Sysctls))
	for k := range u.Sysctls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := os.WriteFile("/proc/sys/"+k, []byte(u.Sysctls[k]), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("restore sysctl %s: %w", k, err))
		}
	}
	if ents, err := os.ReadDir("/var/log/containers"); err == nil {
		for _, e := range ents {
			p := filepath.Join("/var/log/containers", e.Name())
			if t, err := os.Readlink(p); err == nil && strings.HasPrefix(t, n.Root+"/") {
				os.Remove(p)
			}
		}
		if u.MadeVarLogContain {
			os.Remove("/var/log/containers") // only if empty
		}
	}
	// containerd's libcni result cache is machine-wide: drop the entries of
	// our sandboxes (a killed run never sent their DEL).
	ours := map[string]bool{}
	for _, pat := range []string{"containerd/root/io.containerd.grpc.v1.cri/sandboxes/*", "containerd/state/io.containerd.runtime.v2.task/k8s.io/*"} {
		m, _ := filepath.Glob(n.p(pat))
		for _, d := range m {
			ours[filepath.Base(d)] = true
		}
	}
	if ents, err := os.ReadDir("/var/lib/cni/results"); err == nil {
		for _, e := range ents {
			parts := strings.Split(e.Name(), "-")
			if strings.HasPrefix(e.Name(), primaryNet+"-") || (len(parts) > 2 && ours[parts[len(parts)-2]]) {
				os.Remove(filepath.Join("/var/lib/cni/results", e.Name()))
			}
		}
	}
	if leftovers && u.ClusterDir != "" && strings.HasPrefix(u.ClusterDir, os.TempDir()+"/plexus-kube-") {
		// A killed run's etcd and kube-apiserver can outlive it.
		for _, pid := range pidsWithArg(u.ClusterDir) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(200 * time.Millisecond)
		os.RemoveAll(u.ClusterDir)
	}
	if u.MadeRunMultus {
		os.RemoveAll("/run/multus")
	}
	if u.MadeVarLibKubelet {
		os.RemoveAll("/var/lib/kubelet/device-plugins")
		os.Remove("/var/lib/kubelet") // only if empty
	}
	if u.MadeVarLibCNI {
		os.Remove("/var/lib/cni/results") // only if empty
		os.Remove("/var/lib/cni")
	}
	if len(mountsUnder(n.Root)) == 0 {
		if err := os.RemoveAll(n.Root); err != nil {
			errs = append(errs, err)
		}
	} else {
		errs = append(errs, fmt.Errorf("mounts left under %s; not removed", n.Root))
	}
	return errors.Join(errs...)
}

func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.ReplaceAll(string(b), "\x00", " ")
}

// pidsWithArg lists processes whose command line contains s.
func pidsWithArg(s string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		if strings.Contains(cmdline(pid), s) {
			out = append(out, pid)
		}
	}
	return out
}

// killCgroupTree SIGKILLs every task under cgroupRoot.
func killCgroupTree() error {
	for _, h := range cgroupHierarchies() {
		_ = filepath.WalkDir(filepath.Join(h, cgroupRoot), func(p string, d os.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			b, _ := os.ReadFile(filepath.Join(p, "cgroup.procs"))
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			return nil
		})
	}
	return nil
}

// removeCgroupTree removes cgroupRoot's directories, deepest first (a
// killed task may take a moment to leave its cgroup).
func removeCgroupTree() error {
	var errs []error
	for _, h := range cgroupHierarchies() {
		root := filepath.Join(h, cgroupRoot)
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			var err error
			for i := 0; i < 50; i++ {
				if err = syscall.Rmdir(d); err == nil || errors.Is(err, syscall.ENOENT) {
					err = nil
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("rmdir %s: %w", d, err))
			}
		}
	}
	return errors.Join(errs...)
}

// mountsUnder lists mount points at or below dir, deepest first.
func mountsUnder(dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMount(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return strings.Count(out[i], "/") > strings.Count(out[j], "/") })
	return out
}

func isMountPoint(dir string) bool {
	for _, m := range mountsUnder(dir) {
		if m == dir {
			return true
		}
	}
	return false
}

func unescapeMount(s string) string {
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// Kubectl runs kubectl as admin; stdin may be nil.
func (n *Node) Kubectl(ctx context.Context, stdin []byte, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, n.Cluster.KubectlBin, append([]string{"--kubeconfig", n.Cluster.Kubeconfig}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("kubectl %s: %w: %s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String(), nil
}

// Tail returns the last n bytes of one of the run's logs.
func (n *Node) Tail(name string, max int) string {
	b, _ := os.ReadFile(n.p("logs", name+".log"))
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}
