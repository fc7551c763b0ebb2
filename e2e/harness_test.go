package e2e

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
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"

	"github.com/plexus-cni/plexus/e2e/kubeharness"
	"github.com/plexus-cni/plexus/internal/testutil"
)

var (
	root       = repoRoot()
	shimBin    = filepath.Join(root, "bin", "plexus")
	daemonBin  = envOr("PLEXUSD", filepath.Join(root, "bin", "test", "plexusd"))
	cniBin     = filepath.Join(root, "bin", "cni")
	recorder   = filepath.Join(root, "bin", "test", "recorder")
	needsBuild = []string{shimBin, filepath.Join(root, "bin", "plexus-replay"), daemonBin, filepath.Join(cniBin, "bridge"), recorder, filepath.Join(root, "bin", "test", "vfplugin")}
)

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func repoRoot() string {
	dir, _ := os.Getwd()
	for d := dir; d != "/"; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
	}
	return dir
}

// requireRoot skips without root or under -short, and fails when the
// binaries the test execs are missing.
func requireRoot(t *testing.T) {
	t.Helper()
	testutil.RequireRoot(t)
	for _, b := range needsBuild {
		if _, err := os.Stat(b); err != nil {
			t.Fatalf("%s missing: run `make build plugins testbins` first", b)
		}
	}
}

// env is one test's world: a host netns with a macvlan parent link, a
// daemon, temp dirs for manifests, records, IPAM and status.
type env struct {
	t         *testing.T
	kube      *kubeEnv // set for the Kubernetes source
	dir       string
	host      ns.NetNS
	manifests string
	cniDir    string
	ipamDir   string
	statusDir string
	socket    string
	cfgPath   string
	logPath   string
	daemon    *testutil.Proc
	extraCfg  map[string]interface{}
	// noWaitReady: startDaemon returns once the socket answers, ready or not.
	noWaitReady bool
}

type envOpt func(*env)

func withConfig(k string, v interface{}) envOpt { return func(e *env) { e.extraCfg[k] = v } }

func withoutReadyWait() envOpt { return func(e *env) { e.noWaitReady = true } }

func newEnv(t *testing.T, opts ...envOpt) *env {
	t.Helper()
	requireRoot(t)
	dir, err := os.MkdirTemp("", "plexus-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dir: dir, extraCfg: map[string]interface{}{}}
	e.manifests = filepath.Join(dir, "manifests")
	e.cniDir = filepath.Join(dir, "cni")
	e.ipamDir = filepath.Join(dir, "ipam")
	e.statusDir = filepath.Join(dir, "status")
	e.socket = filepath.Join(dir, "run", "plexus.sock")
	e.cfgPath = filepath.Join(dir, "plexusd.json")
	e.logPath = filepath.Join(dir, "plexusd.log")
	for _, d := range []string{e.manifests, e.ipamDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range opts {
		o(e)
	}
	host, err := testutils.NewNS()
	if err != nil {
		t.Fatal(err)
	}
	e.host = host
	t.Cleanup(func() {
		e.stopDaemon()
		if t.Failed() {
			if logs, err := os.ReadFile(e.logPath); err == nil {
				t.Logf("plexusd log:\n%s", logs)
			}
		}
		host.Close()
		if err := testutils.UnmountNS(host); err != nil {
			t.Errorf("remove host netns: %v", err)
		}
		os.RemoveAll(dir)
	})
	// The macvlan parent: a veth pair (this kernel has no dummy links).
	e.hostIP("link", "add", "plexus-demo0", "type", "veth", "peer", "name", "plexus-demo0p")
	e.hostIP("link", "set", "plexus-demo0", "up")
	e.hostIP("link", "set", "plexus-demo0p", "up")
	e.hostIP("link", "set", "lo", "up")
	e.writeDaemonConfig("cluster-net")
	if e.kube != nil {
		e.kube.setup(e)
	} else {
		e.writeManifest("00-cluster.yaml", clusterNAD(e.ipamDir))
	}
	e.startDaemon()
	return e
}

func (e *env) hostName() string { return filepath.Base(e.host.Path()) }

// hostIP runs `ip` in the host netns.
func (e *env) hostIP(args ...string) string {
	e.t.Helper()
	out, err := exec.Command("ip", append([]string{"-n", e.hostName()}, args...)...).CombinedOutput()
	if err != nil {
		e.t.Fatalf("ip %v: %v: %s", args, err, out)
	}
	return string(out)
}

func (e *env) writeDaemonConfig(clusterNetwork string) {
	e.t.Helper()
	cfg := map[string]interface{}{
		"clusterNetwork": clusterNetwork,
		"cniDir":         e.cniDir,
		"socketDir":      filepath.Dir(e.socket),
		"statusDir":      e.statusDir,
		"binDir":         []string{cniBin, filepath.Dir(recorder)},
		"confDir":        filepath.Join(e.dir, "net.d"),
		"logFile":        e.logPath,
		"logToStderr":    false,
		"logLevel":       "debug",
		"logFormat":      "json",
	}
	if e.kube == nil {
		cfg["manifestsDir"] = e.manifests
	}
	for k, v := range e.extraCfg {
		cfg[k] = v
	}
	data, _ := json.MarshalIndent(cfg, "", "  ")
	if err := os.WriteFile(e.cfgPath, data, 0o600); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) writeManifest(name, content string) {
	e.t.Helper()
	if err := os.WriteFile(filepath.Join(e.manifests, name), []byte(content), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) removeManifest(name string) {
	e.t.Helper()
	if err := os.Remove(filepath.Join(e.manifests, name)); err != nil {
		e.t.Fatal(err)
	}
}

// startDaemon runs plexusd inside the host netns, so the delegates it
// execs create their links there.
func (e *env) startDaemon() {
	e.t.Helper()
	args := []string{"--net=" + e.host.Path(), daemonBin, "--config", e.cfgPath}
	if e.kube != nil {
		args = append(args, "--kubeconfig", e.kube.kubeconfig, "--node-name", e.kube.node)
	}
	cmd := exec.Command("nsenter", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // no orphan if the test binary dies
	p, err := testutil.Start("plexusd", cmd, kubeharness.Spawn, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	e.daemon = p
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.Done():
			e.daemon = nil
			e.t.Fatalf("plexusd exited: %v: %s", p.Err(), stderr.String())
		default:
		}
		if code, _ := e.get("/readyz"); code == http.StatusOK || ((e.noWaitReady || e.kube != nil && e.kube.noWaitReady) && code != 0) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("plexusd not ready after 20s: %s", stderr.String())
}

// refusesToStart runs cmd (plexusd with a bad config) and checks that it
// exits non-zero with every want in its output, which it returns.
func refusesToStart(t *testing.T, cmd *exec.Cmd, want ...string) string {
	t.Helper()
	b, err := cmd.CombinedOutput()
	out := string(b)
	if err == nil {
		t.Fatalf("plexusd started: %s", out)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("start-up error does not contain %q: %s", w, out)
		}
	}
	return out
}

func (e *env) stopDaemon() {
	if e.daemon == nil {
		return
	}
	_ = e.daemon.Stop(syscall.SIGINT, 15*time.Second) // an interrupted daemon may exit non-zero
	e.daemon = nil
}

func (e *env) get(path string) (int, string) {
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", e.socket)
		},
	}}
	resp, err := c.Get("http://plexusd" + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// pod is a sandbox: a network namespace plus its Kubernetes identity.
type pod struct {
	ns, name, uid string
	containerID   string
	netns         ns.NetNS
	// netnsPath, when netns is nil, is passed as CNI_NETNS as is.
	netnsPath string
}

var podSeq struct {
	sync.Mutex
	n int
}

func (e *env) newPod(namespace, name string) *pod {
	e.t.Helper()
	n, err := testutils.NewNS()
	if err != nil {
		e.t.Fatal(err)
	}
	p := newPodIdentity(namespace, name)
	p.netns = n
	e.t.Cleanup(func() {
		n.Close()
		_ = testutils.UnmountNS(n)
	})
	return p
}

// newPodIdentity is a pod with a unique UID and container ID, no netns.
func newPodIdentity(namespace, name string) *pod {
	podSeq.Lock()
	podSeq.n++
	seq := podSeq.n
	podSeq.Unlock()
	return &pod{ns: namespace, name: name, uid: fmt.Sprintf("uid-%s-%d", name, seq), containerID: fmt.Sprintf("c%06d%s", seq, strings.Repeat("0", 58))}
}

// cniResult is one exec of the shim.
type cniResult struct {
	stdout []byte
	stderr string
	err    *types.Error // set when the shim exited non-zero
}

func (r cniResult) String() string {
	if r.err != nil {
		return fmt.Sprintf("error code %d: %s (%s)", r.err.Code, r.err.Msg, r.err.Details)
	}
	return string(r.stdout)
}

// shimConf is what containerd would give the plexus plugin on stdin.
func (e *env) shimConf(cniVersion string, extra map[string]interface{}) []byte {
	c := map[string]interface{}{
		"cniVersion": cniVersion,
		"name":       "plexus",
		"type":       "plexus",
		"socketPath": e.socket,
		"cniDir":     e.cniDir,
		"binDir":     cniBin,
	}
	for k, v := range extra {
		c[k] = v
	}
	data, _ := json.Marshal(c)
	return data
}

// exec runs bin/plexus the way containerd does: CNI_* environment, the
// network config on stdin, in the host netns.
func (e *env) exec(command string, p *pod, ifname string, conf []byte) cniResult {
	e.t.Helper()
	return e.execShim(shimBin, command, p, ifname, conf)
}

// execShim is exec with another copy of the shim.
func (e *env) execShim(shim, command string, p *pod, ifname string, conf []byte) cniResult {
	e.t.Helper()
	cmd := exec.Command("nsenter", "--net="+e.host.Path(), shim)
	env := []string{"CNI_COMMAND=" + command, "CNI_PATH=" + cniBin, "PATH=" + os.Getenv("PATH")}
	if p != nil {
		env = append(env,
			"CNI_CONTAINERID="+p.containerID,
			"CNI_IFNAME="+ifname,
			fmt.Sprintf("CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=%s;K8S_POD_NAME=%s;K8S_POD_INFRA_CONTAINER_ID=%s;K8S_POD_UID=%s", p.ns, p.name, p.containerID, p.uid),
		)
		if p.netns != nil {
			env = append(env, "CNI_NETNS="+p.netns.Path())
		} else if p.netnsPath != "" {
			env = append(env, "CNI_NETNS="+p.netnsPath)
		}
	}
	cmd.Env = env
	cmd.Stdin = bytes.NewReader(conf)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := cniResult{stdout: stdout.Bytes(), stderr: stderr.String()}
	if err != nil {
		var te types.Error
		if jerr := json.Unmarshal(stdout.Bytes(), &te); jerr != nil {
			te = types.Error{Code: 999, Msg: fmt.Sprintf("shim failed (%v) without a CNI error: stdout %q stderr %q", err, stdout.String(), stderr.String())}
		}
		res.err = &te
	}
	return res
}

func (e *env) add(p *pod) cniResult  { return e.exec("ADD", p, "eth0", e.shimConf("1.0.0", nil)) }
func (e *env) del(p *pod) cniResult  { return e.exec("DEL", p, "eth0", e.shimConf("1.0.0", nil)) }
func (e *env) chk(p *pod) cniResult  { return e.exec("CHECK", p, "eth0", e.shimConf("1.0.0", nil)) }
func (e *env) mustAdd(p *pod) []byte { e.t.Helper(); return e.must(e.add(p), "ADD", p) }
func (e *env) mustDel(p *pod)        { e.t.Helper(); e.must(e.del(p), "DEL", p) }

func (e *env) must(r cniResult, what string, p *pod) []byte {
	e.t.Helper()
	if r.err != nil {
		e.t.Fatalf("%s %s/%s: %s", what, p.ns, p.name, r)
	}
	return r.stdout
}

// addr is one interface as `ip -j addr` reports it.
type addr struct {
	IfName   string `json:"ifname"`
	Address  string `json:"address"`
	AddrInfo []struct {
		Local     string `json:"local"`
		PrefixLen int    `json:"prefixlen"`
		Family    string `json:"family"`
	} `json:"addr_info"`
}

func (a addr) ipv4() []string {
	var out []string
	for _, i := range a.AddrInfo {
		if i.Family == "inet" {
			out = append(out, fmt.Sprintf("%s/%d", i.Local, i.PrefixLen))
		}
	}
	return out
}

// links returns the pod's interfaces by name.
func (e *env) links(p *pod) map[string]addr {
	e.t.Helper()
	out, err := exec.Command("nsenter", "--net="+p.netns.Path(), "ip", "-j", "addr").Output()
	if err != nil {
		e.t.Fatalf("ip addr in pod: %v", err)
	}
	var as []addr
	if err := json.Unmarshal(out, &as); err != nil {
		e.t.Fatal(err)
	}
	m := map[string]addr{}
	for _, a := range as {
		m[a.IfName] = a
	}
	return m
}

func (e *env) hostLinks() []string {
	e.t.Helper()
	out := e.hostIP("-j", "link")
	var ls []struct {
		IfName string `json:"ifname"`
	}
	if err := json.Unmarshal([]byte(out), &ls); err != nil {
		e.t.Fatal(err)
	}
	var names []string
	for _, l := range ls {
		names = append(names, l.IfName)
	}
	return names
}

// files lists regular files under dir (recursively), relative.
func files(dir string) []string {
	var out []string
	_ = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() && !ipamBookkeeping(filepath.Base(p)) {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

// assertClean checks nothing is left of any sandbox: no veth on the host
// beyond the parent pair and the bridge, no IPAM reservation, no record,
// no libcni cache entry, no status file.
func (e *env) assertClean() {
	e.t.Helper()
	for _, l := range e.hostLinks() {
		switch l {
		case "lo", "plexus-demo0", "plexus-demo0p", "plexus-br0":
		default:
			e.t.Errorf("link left on host: %s", l)
		}
	}
	for _, d := range []string{e.ipamDir, filepath.Join(e.cniDir, "attachments"), filepath.Join(e.cniDir, "results"), e.statusDir} {
		if left := files(d); len(left) > 0 {
			e.t.Errorf("files left in %s: %v", d, left)
		}
	}
}

// status reads the pod's network-status file.
func (e *env) status(p *pod) []map[string]interface{} {
	e.t.Helper()
	data, err := os.ReadFile(filepath.Join(e.statusDir, p.ns, p.name+".json"))
	if err != nil {
		e.t.Fatalf("network-status of %s/%s: %v", p.ns, p.name, err)
	}
	var st []map[string]interface{}
	if err := json.Unmarshal(data, &st); err != nil {
		e.t.Fatal(err)
	}
	return st
}

func podManifest(namespace, name, networks string) string {
	ann := ""
	if networks != "" {
		q, _ := json.Marshal(networks)
		ann = fmt.Sprintf("  annotations:\n    k8s.v1.cni.cncf.io/networks: %s\n", q)
	}
	return fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n  namespace: %s\n%s", name, namespace, ann)
}

func nadManifest(namespace, name, config string) string {
	q, _ := json.Marshal(config)
	return fmt.Sprintf("apiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\nmetadata:\n  name: %s\n  namespace: %s\nspec:\n  config: %s\n", name, namespace, q)
}

func clusterNAD(ipamDir string) string {
	return nadManifest("kube-system", "cluster-net", fmt.Sprintf(`{"cniVersion":"1.0.0","name":"cluster-net","plugins":[{"type":"bridge","bridge":"plexus-br0","isGateway":true,"ipam":{"type":"host-local","dataDir":%q,"ranges":[[{"subnet":"10.88.0.0/16"}]],"routes":[{"dst":"0.0.0.0/0"}]}}]}`, ipamDir))
}

func macvlanConf(name, version, subnet, ipamDir string) string {
	return fmt.Sprintf(`{"cniVersion":%q,"name":%q,"type":"macvlan","master":"plexus-demo0","mode":"bridge","ipam":{"type":"host-local","dataDir":%q,"ranges":[[{"subnet":%q}]]}}`, version, name, ipamDir, subnet)
}

// ipamBookkeeping files stay after every release (host-local's lock and
// last-reserved cursor); they are not allocations.
func ipamBookkeeping(name string) bool {
	return name == "lock" || strings.HasPrefix(name, "last_reserved_ip")
}

// assertRequestIDs checks that every daemon log line about a request (it
// names a command or an event reason) carries the request ID.
func (e *env) assertRequestIDs() {
	e.t.Helper()
	data, err := os.ReadFile(e.logPath)
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var m map[string]interface{}
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		_, cmd := m["command"]
		_, reason := m["reason"]
		if !cmd && !reason {
			continue
		}
		n++
		if id, _ := m["req"].(string); id == "" {
			e.t.Errorf("log line without a request ID: %s", line)
		}
	}
	if n == 0 {
		e.t.Error("no request log lines at all")
	}
}
