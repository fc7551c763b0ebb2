package k8sclient

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"k8s.io/klog/v2"
)

// client-go's klog lines go through plexusd's slog handler (its level and
// format), tagged component=client-go.
func TestKlogGoesThroughSlog(t *testing.T) {
	var buf bytes.Buffer
	routeKlog(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	defer klog.ClearLogger()
	klog.InfoS("watch of pods restarted", "resource", "pods")
	klog.V(5).InfoS("too verbose for info") // below the handler's level
	out := buf.String()
	if !strings.Contains(out, `"msg":"watch of pods restarted"`) || !strings.Contains(out, `"component":"client-go"`) || !strings.Contains(out, `"resource":"pods"`) {
		t.Errorf("klog line not in the slog handler's JSON: %q", out)
	}
	if strings.Contains(out, "too verbose") {
		t.Errorf("a V(5) line passed an info-level handler: %q", out)
	}
}
