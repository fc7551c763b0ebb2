package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/plexus-cni/plexus/internal/testutil"
	"github.com/plexus-cni/plexus/pkg/api"
)

// When PLEXUS_TEST_DIAL is set, the test binary acts as a socket client
// (run as another uid by TestPeerCheckRejectsNonRoot) and exits 0 if the
// daemon answered /healthz.
func TestMain(m *testing.M) {
	if sock := os.Getenv("PLEXUS_TEST_DIAL"); sock != "" {
		code, _ := get(sock, api.PathHealthz)
		if code == http.StatusOK {
			os.Exit(0)
		}
		os.Exit(3)
	}
	os.Exit(m.Run())
}

type fakeHandler struct {
	handle func(ctx context.Context, req *api.Request) ([]byte, error)
	ready  error
}

func (f *fakeHandler) Handle(ctx context.Context, _ *slog.Logger, req *api.Request) ([]byte, error) {
	return f.handle(ctx, req)
}
func (f *fakeHandler) Ready() error { return f.ready }

func start(t *testing.T, h Handler, opts Options) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "plexus-srv-")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "run", "plexus.sock")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	l, err := Listen(sock, []uint32{uint32(os.Geteuid())}, log)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Workers == 0 {
		opts = Options{Workers: 4, QueueSize: 4, QueueTimeout: time.Second, RequestTimeout: 5 * time.Second, MaxBodyBytes: 1 << 20}
	}
	s := New(h, log, opts)
	go func() { _ = s.Serve(l) }()
	t.Cleanup(func() {
		_ = s.Shutdown(context.Background())
		os.RemoveAll(dir)
	})
	return sock
}

func client(sock string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
}

func get(sock, path string) (int, error) {
	resp, err := client(sock).Get("http://x" + path)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func post(t *testing.T, sock string, body []byte) *api.Response {
	t.Helper()
	resp, err := client(sock).Post("http://x"+api.PathCNI, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
	var r api.Response
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	return &r
}

func request(cid string) []byte {
	b, _ := json.Marshal(api.Request{Command: api.CmdAdd, ContainerID: cid, Netns: "/run/netns/x", IfName: "eth0", Config: json.RawMessage(`{"cniVersion":"1.0.0"}`)})
	return b
}

func TestSocketPermissions(t *testing.T) {
	sock := start(t, &fakeHandler{}, Options{})
	for path, want := range map[string]os.FileMode{filepath.Dir(sock): 0o700, sock: 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s mode %o, want %o", path, got, want)
		}
	}
}

// Even with the file modes loosened, a peer that is not root is dropped.
func TestPeerCheckRejectsNonRoot(t *testing.T) {
	if os.Geteuid() != 0 || testing.Short() {
		t.Skip("needs root to run a client as another uid")
	}
	sock := start(t, &fakeHandler{}, Options{})
	for _, p := range []string{filepath.Dir(filepath.Dir(sock)), filepath.Dir(sock), sock} {
		if err := os.Chmod(p, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	run := func(uid uint32) error {
		return testutil.SelfAs(t, uid, "PLEXUS_TEST_DIAL="+sock).Run()
	}
	if err := run(0); err != nil {
		t.Fatalf("root client refused: %v", err)
	}
	if err := run(65534); err == nil {
		t.Fatal("uid 65534 was served")
	}
}

func TestErrorCodesSurvive(t *testing.T) {
	cases := []struct {
		name    string
		err     error
		code    uint
		msgPart string
	}{
		{"cni-error", types.NewError(42, "bad thing", "details"), 42, "bad thing"},
		{"wrapped-cni-error", fmt.Errorf("pod ns/p: %w", types.NewError(142, "delegate said no", "")), 142, "pod ns/p: delegate said no"},
		{"plain", fmt.Errorf("boom"), 999, "boom"},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), 11, "deadline"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sock := start(t, &fakeHandler{handle: func(context.Context, *api.Request) ([]byte, error) { return nil, c.err }}, Options{})
			r := post(t, sock, request("c1"))
			if r.Error == nil || r.Error.Code != c.code || !strings.Contains(r.Error.Msg, c.msgPart) {
				t.Errorf("got %+v, want code %d containing %q", r.Error, c.code, c.msgPart)
			}
		})
	}
}

func TestBadRequests(t *testing.T) {
	sock := start(t, &fakeHandler{handle: func(context.Context, *api.Request) ([]byte, error) { return []byte(`{}`), nil }},
		Options{Workers: 1, QueueSize: 1, QueueTimeout: time.Second, RequestTimeout: time.Second, MaxBodyBytes: 1024})
	for name, body := range map[string][]byte{
		"not-json":     []byte("{"),
		"too-big":      append(request("c1")[:0:0], []byte(`{"command":"ADD","config":"`+strings.Repeat("a", 2048)+`"}`)...),
		"no-container": []byte(`{"command":"ADD","netns":"/x","ifName":"eth0","config":{}}`),
		"unknown-verb": []byte(`{"command":"EXPLODE","config":{}}`),
	} {
		t.Run(name, func(t *testing.T) {
			r := post(t, sock, body)
			if r.Error == nil || r.Error.Code != types.ErrDecodingFailure {
				t.Errorf("got %+v, want a decoding failure", r.Error)
			}
		})
	}
}

// One worker, a queue of one: a third request is refused with code 11; two
// requests for the same container never run at once.
func TestQueueAndSerialization(t *testing.T) {
	release := make(chan struct{})
	var running, maxRunning atomic.Int32
	h := &fakeHandler{handle: func(ctx context.Context, req *api.Request) ([]byte, error) {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			m := maxRunning.Load()
			if n <= m || maxRunning.CompareAndSwap(m, n) {
				break
			}
		}
		<-release
		return []byte(`{}`), nil
	}}
	sock := start(t, h, Options{Workers: 1, QueueSize: 1, QueueTimeout: 5 * time.Second, RequestTimeout: 10 * time.Second, MaxBodyBytes: 1 << 20})
	var wg sync.WaitGroup
	results := make(chan *api.Response, 2)
	for _, cid := range []string{"a", "b"} {
		wg.Add(1)
		go func(cid string) {
			defer wg.Done()
			results <- post(t, sock, request(cid))
		}(cid)
		time.Sleep(100 * time.Millisecond) // a runs, b queues
	}
	r := post(t, sock, request("c"))
	if r.Error == nil || r.Error.Code != types.ErrTryAgainLater {
		t.Errorf("third request: %+v, want code 11", r.Error)
	}
	close(release)
	wg.Wait()
	close(results)
	for r := range results {
		if r.Error != nil {
			t.Errorf("queued request failed: %+v", r.Error)
		}
	}

	// Same container, plenty of workers: still one at a time.
	release2 := make(chan struct{})
	running.Store(0)
	maxRunning.Store(0)
	h.handle = func(ctx context.Context, req *api.Request) ([]byte, error) {
		n := running.Add(1)
		defer running.Add(-1)
		if n > maxRunning.Load() {
			maxRunning.Store(n)
		}
		select {
		case <-release2:
		case <-time.After(50 * time.Millisecond):
		}
		return []byte(`{}`), nil
	}
	sock2 := start(t, h, Options{Workers: 8, QueueSize: 8, QueueTimeout: 5 * time.Second, RequestTimeout: 10 * time.Second, MaxBodyBytes: 1 << 20})
	var wg2 sync.WaitGroup
	for i := 0; i < 5; i++ {
		wg2.Add(1)
		go func() { defer wg2.Done(); post(t, sock2, request("same")) }()
	}
	wg2.Wait()
	if m := maxRunning.Load(); m != 1 {
		t.Errorf("%d requests for one container ran at once", m)
	}
}

func TestReadyz(t *testing.T) {
	h := &fakeHandler{ready: fmt.Errorf("informers not synced")}
	sock := start(t, h, Options{})
	if code, _ := get(sock, api.PathReadyz); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz %d while not ready", code)
	}
	if code, _ := get(sock, api.PathHealthz); code != http.StatusOK {
		t.Errorf("/healthz %d", code)
	}
}

// The wire is versioned: a request recorded from a shim of before the
// version field (testdata) and one of this version are served; one from a
// newer shim gets CNI error 11 naming both versions, without reaching the
// handler.
func TestWireProtocolVersions(t *testing.T) {
	var served atomic.Int32
	sock := start(t, &fakeHandler{handle: func(_ context.Context, req *api.Request) ([]byte, error) {
		served.Add(1)
		if req.ContainerID == "" || req.Pod() != "default/web-0" || req.Path != "/opt/cni/bin" {
			return nil, fmt.Errorf("fields lost: %+v", req)
		}
		return []byte(`{"cniVersion":"1.0.0"}`), nil
	}}, Options{})
	recorded, err := os.ReadFile(filepath.Join("testdata", "request-unversioned.json"))
	if err != nil {
		t.Fatal(err)
	}
	var current map[string]any
	if err := json.Unmarshal(recorded, &current); err != nil {
		t.Fatal(err)
	}
	for _, v := range []int{api.Protocol, api.Protocol + 1} {
		current["protocol"] = v
		body, _ := json.Marshal(current)
		r := post(t, sock, body)
		if v <= api.Protocol && (r.Error != nil || r.Protocol != api.Protocol) {
			t.Errorf("protocol %d: %+v", v, r)
		}
		if v > api.Protocol && (r.Error == nil || r.Error.Code != 11 || !strings.Contains(r.Error.Msg, fmt.Sprintf("protocol %d, this plexusd only up to %d", v, api.Protocol))) {
			t.Errorf("protocol %d: %+v; want code 11 naming both versions", v, r.Error)
		}
	}
	if r := post(t, sock, recorded); r.Error != nil || string(r.Result) != `{"cniVersion":"1.0.0"}` {
		t.Errorf("recorded unversioned request: %+v", r)
	}
	if n := served.Load(); n != 2 {
		t.Errorf("handler ran %d times, want 2 (the newer shim's request must not reach it)", n)
	}
}

// Background work waits while a CNI request waits for a worker, and holds
// at most its share of the workers.
func TestBackgroundYieldsToCNIRequests(t *testing.T) {
	l := newLimiter(2, 10, 1, time.Minute)
	ctx := context.Background()
	r1, err := l.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bg, err := l.acquireLow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Both workers busy; a CNI request queues, then background work.
	got := make(chan string, 2)
	go func() {
		rel, _ := l.acquire(ctx)
		got <- "cni"
		rel()
	}()
	for l.waiting.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	go func() {
		rel, _ := l.acquireLow(ctx)
		got <- "background"
		rel()
	}()
	time.Sleep(20 * time.Millisecond)
	bg() // frees a slot: the CNI request takes it, not the background work
	if first := <-got; first != "cni" {
		t.Fatalf("%s ran first", first)
	}
	r1()
	if second := <-got; second != "background" {
		t.Fatal(second)
	}
	// Its share at most: with two background slots held, another
	// background acquire waits even though workers are free.
	l = newLimiter(4, 10, 2, time.Minute)
	h1, _ := l.acquireLow(ctx)
	h2, _ := l.acquireLow(ctx)
	short, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	if _, err := l.acquireLow(short); err == nil {
		t.Fatal("a third background operation ran with a share of 2")
	}
	h1()
	h2()
}
