package cniconf

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plexus-cni/plexus/internal/testutil"
)

type events struct {
	mu  sync.Mutex
	got []string
}

func (e *events) NodeEvent(warning bool, reason, msg string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	kind := "Normal"
	if warning {
		kind = "Warning"
	}
	e.got = append(e.got, kind+" "+reason)
}

func (e *events) has(s string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, g := range e.got {
		if g == s {
			return true
		}
	}
	return false
}

const calico = `{"cniVersion":"0.4.0","name":"k8s-pod-network","plugins":[{"type":"calico"},{"type":"portmap","capabilities":{"portMappings":true}},{"type":"bandwidth","capabilities":{"bandwidth":true,"other":false}}]}`

func start(t *testing.T, opts Options) (*Manager, *events) {
	t.Helper()
	ev := &events{}
	m := New(opts, ev, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return m, ev
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestGenerate(t *testing.T) {
	t.Parallel()
	out, err := Generate([]byte(calico), Options{SocketPath: "/run/plexus/plexus.sock", CNIDir: "/var/lib/cni/plexus"})
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		CNIVersion string
		Name       string
		Plugins    []struct {
			Type         string
			SocketPath   string
			CNIDir       string
			Capabilities map[string]bool
		}
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	p := got.Plugins[0]
	if got.CNIVersion != "0.4.0" || got.Name != NetworkName || p.Type != "plexus" || p.SocketPath != "/run/plexus/plexus.sock" || p.CNIDir != "/var/lib/cni/plexus" {
		t.Errorf("generated %s", out)
	}
	want := map[string]bool{"portMappings": true, "bandwidth": true, podAnnotationsCapability: true}
	if len(p.Capabilities) != len(want) {
		t.Errorf("capabilities %v, want %v", p.Capabilities, want)
	}
	for k := range want {
		if !p.Capabilities[k] {
			t.Errorf("capability %s missing", k)
		}
	}
	if out, _ := Generate([]byte(calico), Options{CNIVersion: "1.0.0"}); !strings.Contains(string(out), `"cniVersion": "1.0.0"`) {
		t.Errorf("cniVersion override ignored: %s", out)
	}
	if _, err := Generate([]byte(`{"name":"x"}`), Options{}); err == nil {
		t.Error("no error without a cniVersion")
	}
}

// The file waits for the primary and the readiness file, then appears;
// it is restored when removed, renamed or edited, regenerated when the
// primary changes, and left in place when the manager stops.
func TestManagerLifecycle(t *testing.T) {
	dir := t.TempDir()
	ready := filepath.Join(t.TempDir(), "ready")
	m, ev := start(t, Options{ConfDir: dir, ReadinessFile: ready, SocketPath: "/run/plexus/plexus.sock"})
	ours := filepath.Join(dir, FileName)

	write(t, filepath.Join(dir, "10-calico.conflist"), calico)
	time.Sleep(200 * time.Millisecond)
	if _, err := os.Stat(ours); err == nil {
		t.Fatal("written before the readiness indicator file exists")
	}
	if m.Ready() == nil {
		t.Error("ready before the file is written")
	}
	write(t, ready, "")
	testutil.Eventually(t, 5*time.Second, "the file", func() bool { _, err := os.Stat(ours); return err == nil && m.Ready() == nil })
	if m.PrimaryPath() != filepath.Join(dir, "10-calico.conflist") {
		t.Errorf("primary %q", m.PrimaryPath())
	}
	orig, _ := os.ReadFile(ours)

	if err := os.Remove(ours); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "restore after removal", func() bool { b, err := os.ReadFile(ours); return err == nil && string(b) == string(orig) })
	if !ev.has("Warning CNIConfigRestored") {
		t.Errorf("no Warning event for the removal: %v", ev.got)
	}

	if err := os.Rename(ours, filepath.Join(dir, FileName+".cilium_bak")); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "restore after rename", func() bool { b, err := os.ReadFile(ours); return err == nil && string(b) == string(orig) })

	write(t, ours, `{"cniVersion":"0.4.0","name":"hijack","plugins":[{"type":"bridge"}]}`)
	testutil.Eventually(t, 5*time.Second, "restore after edit", func() bool { b, _ := os.ReadFile(ours); return string(b) == string(orig) })

	write(t, filepath.Join(dir, "10-calico.conflist"), strings.Replace(calico, `"0.4.0"`, `"1.0.0"`, 1))
	testutil.Eventually(t, 5*time.Second, "regeneration", func() bool { b, _ := os.ReadFile(ours); return strings.Contains(string(b), `"1.0.0"`) })
	if !ev.has("Normal CNIConfigRegenerated") {
		t.Errorf("no event for the regeneration: %v", ev.got)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 3 { // primary, ours, the renamed copy
		t.Errorf("temp files left: %d entries", len(entries))
	}
}

// A pinned primary wins over the first by name; our own file and broken
// files are never taken as the primary.
func TestPrimarySelection(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "00-plexus.conflist"), calico)
	write(t, filepath.Join(dir, "05-empty.conf"), "")
	write(t, filepath.Join(dir, "10-kube-ovn.conflist"), strings.Replace(calico, "k8s-pod-network", "ovn", 1))
	write(t, filepath.Join(dir, "20-cilium.conflist"), strings.Replace(calico, "k8s-pod-network", "cilium", 1))
	m := New(Options{ConfDir: dir}, &events{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if p, _, err := m.findPrimary(); err != nil || filepath.Base(p) != "10-kube-ovn.conflist" {
		t.Errorf("first by name: %s %v", p, err)
	}
	m = New(Options{ConfDir: dir, Primary: "20-cilium.conflist"}, &events{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if p, _, err := m.findPrimary(); err != nil || filepath.Base(p) != "20-cilium.conflist" {
		t.Errorf("pinned: %s %v", p, err)
	}
}

func TestUninstall(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, filepath.Join(dir, FileName), "{}")
	if err := Uninstall(dir, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, FileName)); !os.IsNotExist(err) {
		t.Error("file still there")
	}
	if err := Uninstall(dir, ""); err != nil {
		t.Errorf("second uninstall: %v", err)
	}
}
