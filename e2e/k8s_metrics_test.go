package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

const metricsPort = 9091

// scrape reads plexusd's /metrics from inside the env's host netns (where
// plexusd listens on loopback).
func (e *env) scrape() map[string]*dto.MetricFamily {
	e.t.Helper()
	var body []byte
	// The socket must be made on this goroutine's thread, in the netns
	// (http.Client dials on goroutines of its own).
	err := e.host.Do(func(ns.NetNS) error {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", metricsPort), 5*time.Second)
		if err != nil {
			return err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(conn, "GET /metrics HTTP/1.0\r\nHost: plexusd\r\n\r\n"); err != nil {
			return err
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %s", resp.Status)
		}
		body, err = io.ReadAll(resp.Body)
		return err
	})
	if err != nil {
		e.t.Fatalf("scrape: %v", err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		e.t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value is the sum over the family's series whose labels include want: the
// counter or gauge value, or a histogram's sample count.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return 0
	}
	sum := 0.0
series:
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if strings.HasPrefix(v, "!") {
				if labels[k] == v[1:] {
					continue series
				}
			} else if labels[k] != v {
				continue series
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

// Metrics against the real API server and real plugins: a batch of ADDs
// and DELs with one failing network moves the request, delegate, queue and
// rollback metrics by exactly what happened, with the right labels; the
// shim's replayed DELs are counted on the next start; the listener is on
// loopback only; every metric the shipped dashboard uses exists.
func TestK8sMetrics(t *testing.T) {
	e := newEnv(t, withKube(t), withConfig("metricsPort", metricsPort), withConfig("hotplug", true))
	k := e.kube
	k.createNAD(t, k.ns, "mv1", macvlanConf("mv1", "1.0.0", "192.168.71.0/24", e.ipamDir))
	k.createNAD(t, k.ns, "bad", recorderConf("bad", `,"failOn":"ADD","failCode":107`))
	var ok []*pod
	for i := range 3 {
		ok = append(ok, e.createPod(k.ns, fmt.Sprintf("ok-%d", i), map[string]string{nadv1.NetworkAttachmentAnnot: "mv1"}))
	}
	failing := e.createPod(k.ns, "failing", map[string]string{nadv1.NetworkAttachmentAnnot: "mv1, bad"})
	time.Sleep(300 * time.Millisecond) // the informer has the pods

	before := e.scrape()
	for _, p := range ok {
		e.mustAdd(p)
	}
	if r := e.add(failing); r.err == nil {
		t.Fatal("ADD with the failing network succeeded")
	}
	during := e.scrape()
	for _, p := range append(ok, failing) {
		e.mustDel(p)
	}
	after := e.scrape()

	mv1 := k.ns + "/mv1"
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"plexus_cni_request_duration_seconds", map[string]string{"verb": "ADD", "code": "ok"}, 3},
		{"plexus_cni_request_duration_seconds", map[string]string{"verb": "ADD", "code": "!ok"}, 1},
		{"plexus_cni_request_duration_seconds", map[string]string{"verb": "DEL", "code": "ok"}, 4},
		{"plexus_delegate_duration_seconds", map[string]string{"network": mv1, "plugin": "macvlan", "verb": "ADD", "outcome": "ok"}, 4},
		{"plexus_delegate_duration_seconds", map[string]string{"network": k.ns + "/bad", "plugin": "recorder", "verb": "ADD", "outcome": "107"}, 1},
		{"plexus_delegate_duration_seconds", map[string]string{"network": mv1, "verb": "DEL", "outcome": "ok"}, 4}, // the rollback's and 3 DELs
		{"plexus_delegate_duration_seconds", map[string]string{"network": k.ns + "/cluster-net", "plugin": "bridge", "verb": "ADD"}, 4},
		{"plexus_add_step_duration_seconds", map[string]string{"step": "delegates"}, 4}, // the failing ADD's too
		{"plexus_add_step_duration_seconds", map[string]string{"step": "commit"}, 3},
		{"plexus_rollbacks_total", map[string]string{"outcome": "complete"}, 1},
		{"plexus_rollbacks_total", map[string]string{"outcome": "incomplete"}, 0},
		{"plexus_queue_wait_seconds", nil, 8},
		{"plexus_queue_rejections_total", nil, 0},
		{"plexus_status_patch_failures_total", nil, 0},
	} {
		if got := value(after, c.name, c.labels) - value(before, c.name, c.labels); got != c.want {
			t.Errorf("%s%v moved by %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if value(during, "plexus_records", map[string]string{"state": "complete"}) != 3 || value(after, "plexus_records", nil) != 0 {
		t.Errorf("records: %v complete during, %v after", value(during, "plexus_records", map[string]string{"state": "complete"}), value(after, "plexus_records", nil))
	}
	if value(after, "plexus_kube_api_requests_total", map[string]string{"method": "PATCH", "code": "200"})-value(before, "plexus_kube_api_requests_total", map[string]string{"method": "PATCH", "code": "200"}) < 3 {
		t.Error("client-go's PATCH requests are not counted")
	}
	for _, inf := range []string{"pods", "nads"} {
		if value(after, "plexus_informer_synced", map[string]string{"informer": inf}) != 1 {
			t.Errorf("informer %s not reported synced", inf)
		}
	}
	if v, ok := after["plexus_status_writes_pending"]; !ok || value(after, "plexus_status_writes_pending", nil) != 0 {
		t.Errorf("plexus_status_writes_pending: %v (exported %v); want 0 once the statuses are written", value(after, "plexus_status_writes_pending", nil), v != nil)
	}
	if value(after, "plexus_build_info", nil) != 1 {
		t.Error("no plexus_build_info")
	}

	t.Run("the dashboard uses only metrics that exist", func(t *testing.T) {
		for _, name := range dashboardMetrics(t) {
			base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_count"), "_sum")
			if after[name] == nil && after[base] == nil {
				t.Errorf("the dashboard queries %s, which plexusd does not export", name)
			}
		}
	})

	t.Run("listens on loopback only", func(t *testing.T) {
		out, err := exec.Command("nsenter", "--net="+e.host.Path(), "ss", "-ltnH").Output()
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if f := strings.Fields(line); len(f) >= 4 && strings.HasSuffix(f[3], fmt.Sprintf(":%d", metricsPort)) && f[3] != fmt.Sprintf("127.0.0.1:%d", metricsPort) {
				t.Errorf("metrics listener on %s", f[3])
			}
		}
	})

	t.Run("DELs the shim replayed are counted on the next start", func(t *testing.T) {
		p := e.createPod(k.ns, "replayed", map[string]string{nadv1.NetworkAttachmentAnnot: "mv1"})
		e.mustAdd(p)
		e.stopDaemon()
		e.mustDel(p) // the shim, from the record
		e.startDaemon()
		if got := value(e.scrape(), "plexus_shim_replayed_dels_total", nil); got != 1 {
			t.Errorf("plexus_shim_replayed_dels_total = %v after one replayed DEL", got)
		}
		if got := value(e.scrape(), "plexus_shim_replayed_dels_total", nil); got != 1 {
			t.Errorf("the trail was counted twice: %v", got)
		}
	})
	e.assertClean()
}

// dashboardMetrics lists the metric names the shipped Grafana dashboard's
// queries use.
func dashboardMetrics(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "deployments", "monitoring", "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	names := map[string]bool{}
	re := regexp.MustCompile(`\b(plexus|process|go)_[a-z_]+\b`)
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			for _, n := range re.FindAllString(tg.Expr, -1) {
				names[n] = true
			}
		}
	}
	var out []string
	for n := range names {
		out = append(out, n)
	}
	sort.Strings(out)
	if len(out) < 10 {
		t.Fatalf("the dashboard queries only %v", out)
	}
	return out
}

// A metricsPort out of range is a config error naming the key.
func TestDaemonRejectsBadMetricsPort(t *testing.T) {
	requireRoot(t)
	cfg := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(cfg, []byte(`{"clusterNetwork":"x","metricsPort":70000,"metricsBindAddress":"localhost"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	refusesToStart(t, exec.Command(daemonBin, "--config", cfg), "metricsPort", "65535", "metricsBindAddress")
}
