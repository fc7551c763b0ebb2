package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// populated is a registry where every metric has at least one series.
func populated(t *testing.T) *Metrics {
	t.Helper()
	m := New("test")
	m.Request("ADD", "ok", time.Millisecond)
	m.QueueWait(time.Millisecond)
	m.Delegate("ns/net", "macvlan", "ADD", "ok", time.Millisecond)
	m.Replayed(1)
	m.StatusRetry()
	m.StatusFailure()
	m.APILatency("PATCH", time.Millisecond)
	m.APIRateLimiterWait("PATCH", time.Millisecond)
	m.APIResult("200", "PATCH")
	m.Gauge("queue_waiting", "CNI requests waiting for a worker slot now.", func() float64 { return 0 })
	m.LabeledGauge("records", "Attachment records on disk, by state.", "state", []string{"complete"}, func() map[string]float64 { return nil })
	return m
}

// Every metric passes promlint (Prometheus naming conventions).
func TestMetricsLint(t *testing.T) {
	problems, err := testutil.GatherAndLint(populated(t).Registry)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, Namespace+"_") {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
	names, err := populated(t).Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range names {
		if n := mf.GetName(); !strings.HasPrefix(n, Namespace+"_") && !strings.HasPrefix(n, "go_") && !strings.HasPrefix(n, "process_") {
			t.Errorf("metric %s has no %s_ prefix", n, Namespace)
		}
	}
}

// A nil *Metrics (metrics off) takes every update.
func TestNilMetrics(t *testing.T) {
	var m *Metrics
	m.Request("ADD", "ok", 0)
	m.QueueWait(0)
	m.Rejected("full")
	m.Delegate("", "", "", "", 0)
	m.Rollback(true)
	m.Replayed(1)
	m.StatusRetry()
	m.StatusFailure()
	m.Hotplug("applied")
}
