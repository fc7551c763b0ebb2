package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"

	"github.com/plexus-cni/plexus/internal/testutil"
)

// API server down (reliability R2, both ways). A pod the API cannot be
// asked about fails its ADD with code 11 and leaves nothing. A pod the
// informer has: with statusWrite sync (Multus's way) the ADD fails the
// same way, never leaving a subset of the networks; with async (the
// default) it gets all its networks and its network-status lands once the
// API server is back. DEL works throughout, from the attachment record.
func TestK8sAPIServerDown(t *testing.T) {
	t.Run("sync", func(t *testing.T) { apiServerDown(t, "sync") })
	t.Run("async", func(t *testing.T) { apiServerDown(t, "async") })
}

func apiServerDown(t *testing.T, statusWrite string) {
	t.Helper()
	e := newEnv(t, withKube(t), withConfig("statusWrite", statusWrite))
	k := e.kube
	k.createNAD(t, k.ns, "mv1", macvlanConf("mv1", "1.0.0", "192.168.10.0/24", e.ipamDir))
	up := e.createPod(k.ns, "up", map[string]string{nadv1.NetworkAttachmentAnnot: "mv1"})
	cached := e.createPod(k.ns, "cached", map[string]string{nadv1.NetworkAttachmentAnnot: "mv1"})
	e.mustAdd(up)
	time.Sleep(300 * time.Millisecond) // "cached" is in the informer before the outage

	k.c.StopAPIServer()
	restarted := false
	restart := func() {
		if restarted {
			return
		}
		restarted = true
		if err := k.c.StartAPIServer(context.Background()); err != nil {
			t.Errorf("restart kube-apiserver: %v", err)
		}
	}
	t.Cleanup(restart)
	uncached := e.newPod(k.ns, "uncached") // the API never saw it and cannot be asked
	for _, p := range []*pod{cached, uncached} {
		start := time.Now()
		r := e.add(p)
		took := time.Since(start)
		t.Logf("ADD %s with the API server down: %s after %s", p.name, r, took.Round(time.Millisecond))
		if took > 30*time.Second {
			t.Errorf("ADD %s took %s: not bounded", p.name, took)
		}
		if p == cached && statusWrite == "async" {
			if r.err != nil || len(e.links(p)) != 3 { // lo, eth0, net1
				t.Errorf("ADD %s: %s, %d interfaces; want success with eth0 and net1", p.name, r, len(e.links(p)))
			}
			continue
		}
		if r.err == nil || r.err.Code != 11 {
			t.Errorf("ADD %s: %s; want code 11", p.name, r)
		}
		if n := len(e.links(p)); n != 1 {
			t.Errorf("pod %s has %d interfaces after a failed ADD", p.name, n)
		}
	}
	if statusWrite == "async" {
		restart()
		start := time.Now()
		testutil.Eventually(t, 45*time.Second, "cached's network-status after the API server is back", func() bool {
			raw, err := k.rawStatus(cached)
			return err == nil && raw != ""
		})
		t.Logf("network-status landed %s after the API server restarted", time.Since(start).Round(time.Millisecond))
		if st := e.apiStatus(cached); len(st) != 2 || st[1].Interface != "net1" {
			t.Errorf("network-status %+v", st)
		}
	}
	e.mustDel(up)
	e.mustDel(cached)
	e.mustDel(uncached)
	e.assertClean()
}

// Readiness: with no API server reachable the informers never sync, so
// /readyz and CNI STATUS say not ready and ADD answers 11.
func TestK8sNotReadyWithoutAPI(t *testing.T) {
	c := cluster(t)
	dead := filepath.Join(t.TempDir(), "dead.kubeconfig")
	if err := os.WriteFile(dead, []byte(fmt.Sprintf("apiVersion: v1\nkind: Config\nclusters:\n- name: x\n  cluster: {server: \"https://127.0.0.1:1\", certificate-authority: %s}\nusers:\n- name: u\n  user: {token: x}\ncontexts:\n- name: x\n  context: {cluster: x, user: u}\ncurrent-context: x\n", c.CAFile)), 0o600); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, withKube(t, func(k *kubeEnv) { k.kubeconfig = dead; k.noWaitReady = true }))
	if code, body := e.get("/readyz"); code != 503 || !strings.Contains(body, "not synced") {
		t.Errorf("/readyz = %d %q; want 503 not synced", code, body)
	}
	if r := e.exec("STATUS", nil, "", e.shimConf("1.1.0", nil)); r.err == nil || r.err.Code != 50 {
		t.Errorf("STATUS: %s; want code 50", r)
	}
	p := e.newPod(e.kube.ns, "early")
	if r := e.exec("ADD", p, "eth0", e.shimConf("1.0.0", map[string]interface{}{"connectRetry": "1s"})); r.err == nil || r.err.Code != 11 || !strings.Contains(r.err.Msg, "not ready") {
		t.Errorf("ADD before ready (after 1 s of retries): %s; want code 11 not ready", r)
	}
	e.assertClean()
}

// The daemon runs with the ServiceAccount and RBAC of deployments/: an ADD
// works end to end, and the identity can do exactly what it needs.
func TestK8sDeploymentsRBAC(t *testing.T) {
	c := cluster(t)
	ctx := context.Background()
	if _, err := c.Kubectl(ctx, "apply", "-f", filepath.Join(root, "deployments")); err != nil {
		t.Fatal(err)
	}
	token, err := c.Kubectl(ctx, "create", "token", "plexus", "-n", "kube-system", "--duration=1h")
	if err != nil {
		t.Fatal(err)
	}
	saKubeconfig := filepath.Join(t.TempDir(), "plexus.kubeconfig")
	if err := c.WriteKubeconfig(saKubeconfig, strings.TrimSpace(token)); err != nil {
		t.Fatal(err)
	}
	sa := "system:serviceaccount:kube-system:plexus"
	for _, check := range []struct {
		verb, resource string
		want           string
	}{
		{"get", "pods", "yes"}, {"list", "pods", "yes"}, {"watch", "pods", "yes"},
		{"patch", "pods --subresource=status", "yes"},
		{"list", "network-attachment-definitions.k8s.cni.cncf.io", "yes"},
		{"create", "events", "yes"},
		{"patch", "pods", "no"}, {"update", "pods", "no"}, {"delete", "pods", "no"}, {"create", "pods", "no"},
		{"create", "pods/exec", "no"}, {"get", "secrets", "no"}, {"get", "configmaps", "no"},
		{"create", "network-attachment-definitions.k8s.cni.cncf.io", "no"},
		{"delete", "network-attachment-definitions.k8s.cni.cncf.io", "no"},
		{"get", "nodes", "no"},
	} {
		args := append([]string{"auth", "can-i", check.verb}, strings.Fields(check.resource)...)
		out, _ := c.Kubectl(ctx, append(args, "--as", sa, "-A")...)
		if got := strings.TrimSpace(out); got != check.want {
			t.Errorf("can %s %s %s: %q, want %q", sa, check.verb, check.resource, got, check.want)
		}
	}

	e := newEnv(t, withKube(t, func(k *kubeEnv) { k.kubeconfig = saKubeconfig }))
	k := e.kube
	k.createNAD(t, k.ns, "mv1", macvlanConf("mv1", "1.0.0", "192.168.10.0/24", e.ipamDir))
	p := e.createPod(k.ns, "rbac", map[string]string{nadv1.NetworkAttachmentAnnot: "mv1"})
	e.mustAdd(p)
	if st := e.apiStatus(p); len(st) != 2 {
		t.Errorf("status written with the ServiceAccount: %+v", st)
	}
	e.waitEvent(p, "AddedInterface")
	e.mustDel(p)
	e.assertClean()
}

// Every manifest under deployments/ and examples/ is accepted by a real
// API server, so none of them can rot.
func TestK8sApplyManifests(t *testing.T) {
	c := cluster(t)
	ctx := context.Background()
	for _, dir := range []string{"deployments", "examples/standalone"} {
		entries, err := os.ReadDir(filepath.Join(root, dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range entries {
			if ext := filepath.Ext(f.Name()); ext != ".yaml" && ext != ".yml" {
				continue
			}
			path := filepath.Join(root, dir, f.Name())
			if out, err := c.Kubectl(ctx, "apply", "--server-side", "--force-conflicts", "-f", path); err != nil {
				t.Errorf("apply %s: %v\n%s", path, err, out)
			}
		}
	}
}
