// Package metrics is plexusd's Prometheus instrumentation: one registry
// holding every plexus_* metric, the Go and process collectors, and
// client-go's request metrics, served on metricsPort (docs/metrics.md).
//
// Components do not import this package on their hot paths' behalf: they
// take small hooks (a func or a narrow interface) that a *Metrics
// satisfies, so the shim (which must stay small) never links Prometheus.
// Label values are bounded: verbs, CNI error codes, network names
// (namespace/NAD, admin-controlled), plugin types; never pods or
// container IDs.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every Plexus metric.
const Namespace = "plexus"

// durationBuckets resolve 1 ms to 120 s: 1, 2.5, 5, 10, 25, 50, 100, 250,
// 500 ms, 1, 2.5, 5, 10, 30, 60, 120 s.
var durationBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}

// stepBuckets resolve 100 µs to 30 s, for the steps of one ADD.
var stepBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// Metrics holds the registry and the metrics the daemon updates. A nil
// *Metrics (metrics off) takes every update and does nothing.
type Metrics struct {
	Registry *prometheus.Registry

	requests   *prometheus.HistogramVec // verb, code
	delegates  *prometheus.HistogramVec // network, plugin, verb, outcome
	addSteps   *prometheus.HistogramVec // step
	queueWait  prometheus.Histogram
	rejections *prometheus.CounterVec // reason
	rollbacks  *prometheus.CounterVec // outcome
	replayed   prometheus.Counter
	statusRetries,
	statusFailures prometheus.Counter
	hotplug *prometheus.CounterVec // outcome
	// API: client-go's request metrics.
	apiLatency  *prometheus.HistogramVec // verb
	apiLimiter  *prometheus.HistogramVec // verb
	apiRequests *prometheus.CounterVec   // code, method
}

// New builds the registry with every metric registered. version is the
// build's version (plexus_build_info).
func New(version string) *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{Registry: r}
	f := func(c prometheus.Collector) { r.MustRegister(c) }
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	build := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "build_info",
		Help:        "Always 1; the labels say which plexusd build runs.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()}})
	build.Set(1)
	f(build)
	m.requests = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "cni_request_duration_seconds",
		Help:    "Time plexusd took to answer a CNI request, from its arrival on the socket (queue wait included), by verb and outcome (\"ok\" or the CNI error code).",
		Buckets: durationBuckets}, []string{"verb", "code"})
	m.delegates = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "delegate_duration_seconds",
		Help:    "Time one delegate network (its whole plugin chain) took, by network (namespace/NAD or CNI network name), first plugin type, verb and outcome (\"ok\" or the CNI error code).",
		Buckets: durationBuckets}, []string{"network", "plugin", "verb", "outcome"})
	m.addSteps = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "add_step_duration_seconds",
		Help:    "Time each step of an ADD took (lookup, resolve, reclaim, devices, save plan, delegates, routes, verify, status, commit): where an ADD's time goes.",
		Buckets: stepBuckets}, []string{"step"})
	m.queueWait = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: "queue_wait_seconds",
		Help: "Time a CNI request waited for a worker slot.", Buckets: durationBuckets})
	m.rejections = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "queue_rejections_total",
		Help: "CNI requests refused with \"try again later\" before they ran: the queue was full (reason \"full\") or the wait for a worker timed out (\"timeout\")."}, []string{"reason"})
	m.rollbacks = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "rollbacks_total",
		Help: "Failed ADDs undone, by outcome: \"complete\" (nothing left) or \"incomplete\" (the record kept for the runtime's DEL)."}, []string{"outcome"})
	m.replayed = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "shim_replayed_dels_total",
		Help: "DELs the shim carried out from the attachment record while plexusd was unreachable, counted from the trail the shim leaves, when plexusd next starts."})
	m.statusRetries = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "status_patch_retries_total",
		Help: "network-status writes retried after a transient API error."})
	m.statusFailures = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "status_patch_failures_total",
		Help: "network-status writes that failed for good (the ADD or hot-plug change failed with them)."})
	m.hotplug = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "hotplug_changes_total",
		Help: "Hot-plug passes that changed a pod, by outcome: \"applied\", \"failed\" (retried) or \"refused\" (bad input, not retried)."}, []string{"outcome"})
	m.apiLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "kube_api_request_duration_seconds",
		Help: "Kubernetes API request latency as client-go measures it, by HTTP verb.", Buckets: durationBuckets}, []string{"verb"})
	m.apiLimiter = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "kube_api_rate_limiter_wait_seconds",
		Help: "Time client-go's client-side rate limiter held a Kubernetes API request, by HTTP verb.", Buckets: durationBuckets}, []string{"verb"})
	m.apiRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "kube_api_requests_total",
		Help: "Kubernetes API requests by HTTP status code (\"<error>\" when there was no answer) and method."}, []string{"code", "method"})
	for _, c := range []prometheus.Collector{m.requests, m.delegates, m.addSteps, m.queueWait, m.rejections, m.rollbacks, m.replayed,
		m.statusRetries, m.statusFailures, m.hotplug, m.apiLatency, m.apiLimiter, m.apiRequests} {
		f(c)
	}
	// Outcomes that are rare are exported at 0 from the start, so that
	// rate() and alerts see them before the first occurrence.
	for _, reason := range []string{"full", "timeout"} {
		m.rejections.WithLabelValues(reason)
	}
	for _, o := range []string{"complete", "incomplete"} {
		m.rollbacks.WithLabelValues(o)
	}
	for _, o := range []string{"applied", "failed", "refused"} {
		m.hotplug.WithLabelValues(o)
	}
	return m
}

// Request records one CNI request's answer; code is "ok" or the CNI code.
func (m *Metrics) Request(verb, code string, d time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(verb, code).Observe(d.Seconds())
}

// AddStep records the time one step of an ADD took.
func (m *Metrics) AddStep(step string, d time.Duration) {
	if m == nil {
		return
	}
	m.addSteps.WithLabelValues(step).Observe(d.Seconds())
}

// QueueWait records the time a request waited for a worker.
func (m *Metrics) QueueWait(d time.Duration) {
	if m == nil {
		return
	}
	m.queueWait.Observe(d.Seconds())
}

// Rejected counts a request refused before it ran ("full" or "timeout").
func (m *Metrics) Rejected(reason string) {
	if m == nil {
		return
	}
	m.rejections.WithLabelValues(reason).Inc()
}

// Delegate records one delegate network's verb.
func (m *Metrics) Delegate(network, plugin, verb, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.delegates.WithLabelValues(network, plugin, verb, outcome).Observe(d.Seconds())
}

// Rollback counts an undone ADD.
func (m *Metrics) Rollback(complete bool) {
	if m == nil {
		return
	}
	o := "complete"
	if !complete {
		o = "incomplete"
	}
	m.rollbacks.WithLabelValues(o).Inc()
}

// Replayed adds n DELs the shim replayed.
func (m *Metrics) Replayed(n int) {
	if m == nil {
		return
	}
	m.replayed.Add(float64(n))
}

// StatusRetry counts a retried network-status write.
func (m *Metrics) StatusRetry() {
	if m == nil {
		return
	}
	m.statusRetries.Inc()
}

// StatusFailure counts a network-status write that failed for good.
func (m *Metrics) StatusFailure() {
	if m == nil {
		return
	}
	m.statusFailures.Inc()
}

// Hotplug counts a hot-plug pass that changed, failed or was refused.
func (m *Metrics) Hotplug(outcome string) {
	if m == nil {
		return
	}
	m.hotplug.WithLabelValues(outcome).Inc()
}

// APILatency records a Kubernetes API request's latency (client-go).
func (m *Metrics) APILatency(verb string, d time.Duration) {
	m.apiLatency.WithLabelValues(verb).Observe(d.Seconds())
}

// APIRateLimiterWait records client-go's rate-limiter wait.
func (m *Metrics) APIRateLimiterWait(verb string, d time.Duration) {
	m.apiLimiter.WithLabelValues(verb).Observe(d.Seconds())
}

// APIResult counts a Kubernetes API request by status code and method.
func (m *Metrics) APIResult(code, method string) { m.apiRequests.WithLabelValues(code, method).Inc() }

// Gauge registers a gauge computed at scrape time.
func (m *Metrics) Gauge(name, help string, f func() float64) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, f))
}

// LabeledGauge registers a gauge with one label whose values, each of
// values, f computes at once at scrape time (a value f leaves out is 0).
func (m *Metrics) LabeledGauge(name, help, label string, values []string, f func() map[string]float64) {
	m.Registry.MustRegister(&labeledGauge{desc: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, []string{label}, nil), values: values, f: f})
}

type labeledGauge struct {
	desc   *prometheus.Desc
	values []string
	f      func() map[string]float64
}

func (g *labeledGauge) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }
func (g *labeledGauge) Collect(ch chan<- prometheus.Metric) {
	got := g.f()
	for _, v := range g.values {
		ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, got[v], v)
	}
}

// bindRetry is how often a metrics address that could not be bound is
// tried again.
const bindRetry = 10 * time.Second

// Serve serves /metrics on addr:port until ctx ends. A node's pod
// networking must not depend on its metrics: when the address cannot be
// bound (the port is taken), Serve logs an error and keeps trying in the
// background.
func (m *Metrics) Serve(ctx context.Context, addr string, port int, log *slog.Logger) {
	hostport := net.JoinHostPort(addr, strconv.Itoa(port))
	l, err := net.Listen("tcp", hostport)
	if err == nil {
		m.serve(ctx, l, log)
		return
	}
	log.Error("metrics not served: cannot listen; retrying every 10s", "address", hostport, "err", err)
	go func() {
		t := time.NewTicker(bindRetry)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if l, err := net.Listen("tcp", hostport); err == nil {
				m.serve(ctx, l, log)
				return
			}
		}
	}()
}

func (m *Metrics) serve(ctx context.Context, l net.Listener, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{ErrorLog: slogErrorLog{log}, MaxRequestsInFlight: 4, Timeout: 10 * time.Second}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 15 * time.Second, IdleTimeout: 60 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	log.Info("serving metrics", "address", l.Addr().String())
}

type slogErrorLog struct{ log *slog.Logger }

func (s slogErrorLog) Println(v ...interface{}) { s.log.Warn(fmt.Sprint(v...), "component", "metrics") }
