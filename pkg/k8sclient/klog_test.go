package k8sclient

import (
	"bytes"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"

	"k8s.io/klog/v2"
)

// klogOut receives klog's output for the whole package run: klog's logger
// is a global that informers of other tests read from their goroutines, so
// it is set once, before any test starts, as plexusd sets it before its
// informers start (New).
var klogOut lockedBuffer

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestMain(m *testing.M) {
	routeKlog(slog.New(slog.NewJSONHandler(&klogOut, &slog.HandlerOptions{Level: slog.LevelInfo})))
	os.Exit(m.Run())
}

// client-go's klog lines go through plexusd's slog handler (its level and
// format), tagged component=client-go.
func TestKlogGoesThroughSlog(t *testing.T) {
	klog.InfoS("watch of pods restarted", "resource", "pods")
	klog.V(5).InfoS("too verbose for info") // below the handler's level
	out := klogOut.String()
	if !strings.Contains(out, `"msg":"watch of pods restarted"`) || !strings.Contains(out, `"component":"client-go"`) || !strings.Contains(out, `"resource":"pods"`) {
		t.Errorf("klog line not in the slog handler's JSON: %q", out)
	}
	if strings.Contains(out, "too verbose") {
		t.Errorf("a V(5) line passed an info-level handler: %q", out)
	}
}
