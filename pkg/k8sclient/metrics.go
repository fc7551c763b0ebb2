package k8sclient

import (
	"context"
	"net/url"
	"sync"
	"time"

	clientmetrics "k8s.io/client-go/tools/metrics"

	"github.com/plexus-cni/plexus/pkg/metrics"
)

// client-go's metrics hooks are process-wide and take one registration.
var registerOnce sync.Once

// registerClientMetrics routes client-go's request latency, rate-limiter
// wait and request results to m, labelled by verb and code only (the URL
// would name pods).
func registerClientMetrics(m *metrics.Metrics) {
	registerOnce.Do(func() {
		clientmetrics.Register(clientmetrics.RegisterOpts{
			RequestLatency:     latencyHook(m.APILatency),
			RateLimiterLatency: latencyHook(m.APIRateLimiterWait),
			RequestResult:      resultHook(m.APIResult),
		})
	})
}

type latencyHook func(verb string, d time.Duration)

func (h latencyHook) Observe(_ context.Context, verb string, _ url.URL, d time.Duration) { h(verb, d) }

type resultHook func(code, method string)

func (h resultHook) Increment(_ context.Context, code, method, _ string) { h(code, method) }
