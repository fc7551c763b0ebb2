// Package kubeharness runs a real control plane for tests and benchmarks:
// Debian's etcd and a kube-apiserver built from the Go module proxy
// (hack/kube-build.sh), on loopback with random ports, RBAC authorization,
// a static admin token and a service-account signing key. Certificates
// are generated here with crypto/x509.
package kubeharness

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/rest"

	"github.com/plexus-cni/plexus/internal/testutil"
)

// Cluster is a running etcd + kube-apiserver.
type Cluster struct {
	Dir        string // state: certs, etcd data, logs, kubeconfigs
	URL        string // https://127.0.0.1:<port>
	Token      string // admin bearer token (system:masters)
	CAFile     string
	Kubeconfig string // admin kubeconfig
	KubectlBin string

	apiserverBin string
	apiArgs      []string
	etcd         *testutil.Proc
	apiserver    *testutil.Proc
}

// proc is a started process; done closes when its single Wait returns.
// Options locate the binaries.
type Options struct {
	BinDir string // holds kube-apiserver and kubectl
	Etcd   string // etcd binary; default /usr/bin/etcd
	// ServiceAccountAdmission keeps the ServiceAccount admission plugin on
	// (it is off by default, as in envtest). With it, pods get the projected
	// service-account token volume; that needs a kube-controller-manager
	// (service accounts, the kube-root-ca.crt ConfigMap).
	ServiceAccountAdmission bool
}

// Start brings etcd and kube-apiserver up and waits for /readyz.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	if o.Etcd == "" {
		o.Etcd = "/usr/bin/etcd"
	}
	for _, b := range []string{o.Etcd, filepath.Join(o.BinDir, "kube-apiserver"), filepath.Join(o.BinDir, "kubectl")} {
		if _, err := os.Stat(b); err != nil {
			return nil, fmt.Errorf("%s missing (run `make kube-bins`; etcd from apt etcd-server): %w", b, err)
		}
	}
	dir, err := os.MkdirTemp("", "plexus-kube-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, KubectlBin: filepath.Join(o.BinDir, "kubectl"), apiserverBin: filepath.Join(o.BinDir, "kube-apiserver"), Token: randomToken()}
	ok := false
	defer func() {
		if !ok {
			c.Stop()
		}
	}()
	if err := c.writePKI(); err != nil {
		return nil, err
	}
	ports, err := testutil.FreePorts(3)
	if err != nil {
		return nil, err
	}
	etcdClient := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	etcdPeer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	c.etcd, err = c.spawn("etcd", o.Etcd, "--name", "plexus", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", etcdClient, "--advertise-client-urls", etcdClient,
		"--listen-peer-urls", etcdPeer, "--initial-advertise-peer-urls", etcdPeer,
		"--initial-cluster", "plexus="+etcdPeer, "--log-level", "warn")
	if err != nil {
		return nil, err
	}
	c.URL = fmt.Sprintf("https://127.0.0.1:%d", ports[2])
	pki := func(f string) string { return filepath.Join(dir, "pki", f) }
	c.apiArgs = []string{
		"--etcd-servers=" + etcdClient,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", ports[2]),
		"--cert-dir=" + filepath.Join(dir, "certs"),
		"--tls-cert-file=" + pki("apiserver.crt"), "--tls-private-key-file=" + pki("apiserver.key"),
		"--client-ca-file=" + pki("ca.crt"),
		"--token-auth-file=" + pki("tokens.csv"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + pki("sa.pub"), "--service-account-signing-key-file=" + pki("sa.key"),
		"--service-cluster-ip-range=10.0.0.0/24",
		"--authorization-mode=RBAC",
		"--allow-privileged=true", "--profiling=false",
		"--endpoint-reconciler-type=none",
	}
	if !o.ServiceAccountAdmission {
		c.apiArgs = append(c.apiArgs, "--disable-admission-plugins=ServiceAccount")
	}
	if err := c.StartAPIServer(ctx); err != nil {
		return nil, err
	}
	c.Kubeconfig = filepath.Join(dir, "admin.kubeconfig")
	if err := c.WriteKubeconfig(c.Kubeconfig, c.Token); err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

// StartAPIServer (re)starts kube-apiserver and waits until it is ready.
func (c *Cluster) StartAPIServer(ctx context.Context) error {
	var err error
	c.apiserver, err = c.spawn("kube-apiserver", c.apiserverBin, c.apiArgs...)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if code, _ := c.Get(ctx, "/readyz"); code == http.StatusOK {
			return nil
		}
		select {
		case <-c.apiserver.Done():
			logs, _ := os.ReadFile(filepath.Join(c.Dir, "kube-apiserver.log"))
			return fmt.Errorf("kube-apiserver exited: %s", tail(logs, 3000))
		default:
		}
		time.Sleep(100 * time.Millisecond)
	}
	logs, _ := os.ReadFile(filepath.Join(c.Dir, "kube-apiserver.log"))
	return fmt.Errorf("kube-apiserver not ready: %s", tail(logs, 3000))
}

// StopAPIServer stops kube-apiserver (etcd keeps running).
func (c *Cluster) StopAPIServer() { stop(c.apiserver); c.apiserver = nil }

// Pids are the running etcd's and kube-apiserver's process IDs.
func (c *Cluster) Pids() []int {
	var out []int
	for _, p := range []*testutil.Proc{c.etcd, c.apiserver} {
		if p != nil && p.Cmd.Process != nil {
			out = append(out, p.Cmd.Process.Pid)
		}
	}
	return out
}

// Stop stops everything and removes the state.
func (c *Cluster) Stop() {
	stop(c.apiserver)
	stop(c.etcd)
	os.RemoveAll(c.Dir)
}

func stop(p *testutil.Proc) {
	if p != nil {
		_ = p.Stop(syscall.SIGTERM, 10*time.Second) // a stopped server exits non-zero
	}
}

func (c *Cluster) spawn(name, bin string, args ...string) (*testutil.Proc, error) {
	logf, err := os.Create(filepath.Join(c.Dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Pdeathsig kills the process if the test binary dies (SIGKILL, panic,
	// timeout) instead of leaving etcd and kube-apiserver behind. It fires
	// when the spawning OS thread exits, and Go retires threads that a
	// goroutine locked (netns helpers do), so every process is started on
	// one thread that stays locked for the life of the test binary.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p, err := testutil.Start(name, cmd, Spawn, func() { logf.Close() })
	if err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return p, nil
}

// RESTConfig is an admin client config.
func (c *Cluster) RESTConfig() *rest.Config {
	return &rest.Config{Host: c.URL, BearerToken: c.Token, TLSClientConfig: rest.TLSClientConfig{CAFile: c.CAFile}, QPS: 100, Burst: 200}
}

// WriteKubeconfig writes a kubeconfig that authenticates with token.
func (c *Cluster) WriteKubeconfig(path, token string) error {
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: plexus
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: user
  user:
    token: %s
contexts:
- name: plexus
  context: {cluster: plexus, user: user}
current-context: plexus
`, c.URL, c.CAFile, token)
	return os.WriteFile(path, []byte(kc), 0o600)
}

// Kubectl runs kubectl as admin.
func (c *Cluster) Kubectl(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.KubectlBin, append([]string{"--kubeconfig", c.Kubeconfig}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}

// Get does an admin GET of path on the API server.
func (c *Cluster) Get(ctx context.Context, path string) (int, []byte) {
	ca, err := os.ReadFile(c.CAFile)
	if err != nil {
		return 0, nil
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL+path, nil)
	if err != nil {
		return 0, nil
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.Bytes()
}

func (c *Cluster) writePKI() error {
	dir := filepath.Join(c.Dir, "pki")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "plexus-test-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kube-apiserver"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.0.0.1")},
		DNSNames:    []string{"localhost", "kubernetes", "kubernetes.default.svc"},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	saPub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return err
	}
	srvKeyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"ca.crt":        pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		"apiserver.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER}),
		"apiserver.key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: srvKeyDER}),
		"sa.key":        pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(saKey)}),
		"sa.pub":        pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPub}),
		"tokens.csv":    []byte(fmt.Sprintf("%s,admin,admin-uid,\"system:masters\"\n", c.Token)),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return err
		}
	}
	c.CAFile = filepath.Join(dir, "ca.crt")
	return nil
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// ErrNoBinaries is returned by callers that want to skip without binaries.
var ErrNoBinaries = errors.New("kube binaries missing")

// RequestCounts reads apiserver_request_total from /metrics and sums it by
// "VERB resource[/subresource]" (the harness's own /metrics GETs show up
// as "GET " with no resource).
func (c *Cluster) RequestCounts(ctx context.Context) (map[string]float64, error) {
	code, body := c.Get(ctx, "/metrics")
	if code != http.StatusOK {
		return nil, fmt.Errorf("/metrics: HTTP %d", code)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		rest, ok := strings.CutPrefix(line, "apiserver_request_total{")
		if !ok {
			continue
		}
		end := strings.LastIndex(rest, "}")
		if end < 0 {
			continue
		}
		labels := map[string]string{}
		for _, kv := range strings.Split(rest[:end], ",") {
			k, v, _ := strings.Cut(kv, "=")
			labels[k] = strings.Trim(v, `"`)
		}
		var n float64
		if _, err := fmt.Sscan(strings.TrimSpace(rest[end+1:]), &n); err != nil {
			continue
		}
		key := labels["verb"] + " " + labels["resource"]
		if labels["subresource"] != "" {
			key += "/" + labels["subresource"]
		}
		out[key] += n
	}
	return out, nil
}

// spawner owns one OS thread for the life of the process; starting
// children from it makes their Pdeathsig mean "the test binary died".
var spawner = sync.OnceValue(func() chan spawnReq {
	reqs := make(chan spawnReq)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread lives as long as the process
		for r := range reqs {
			r.done <- r.cmd.Start()
		}
	}()
	return reqs
})

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

// Spawn starts cmd on the spawner thread, so that a Pdeathsig set in
// cmd.SysProcAttr fires only when the test binary dies.
func Spawn(cmd *exec.Cmd) error {
	done := make(chan error)
	spawner() <- spawnReq{cmd: cmd, done: done}
	return <-done
}
