package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-cni/plexus/internal/testutil"
	"github.com/plexus-cni/plexus/pkg/api"
	"github.com/plexus-cni/plexus/pkg/config"
	"github.com/plexus-cni/plexus/pkg/delegate"
	"github.com/plexus-cni/plexus/pkg/podref"
	"github.com/plexus-cni/plexus/pkg/store"
)

// The orchestrator's unit tests: the real Multiplexer and libcni, with
// fakes for what is outside the process (plugin execution, the pod source,
// the record store). No root, no netns.

// fakeSource is the pod source: pods and NADs in maps, statuses recorded.
type fakeSource struct {
	mu       sync.Mutex
	pods     map[string]*podref.Pod
	nads     map[string]*nadv1.NetworkAttachmentDefinition
	status   map[string][]byte
	statusAt map[string]string // the UID each status was preconditioned on
	failSt   bool
	stErr    error // returned by WriteStatus when set
	writes   int
	clearedN int
}

func newFakeSource() *fakeSource {
	return &fakeSource{pods: map[string]*podref.Pod{}, nads: map[string]*nadv1.NetworkAttachmentDefinition{}, status: map[string][]byte{}, statusAt: map[string]string{}}
}

func (s *fakeSource) addNAD(ns, name, typ string) {
	s.nads[ns+"/"+name] = &nadv1.NetworkAttachmentDefinition{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       nadv1.NetworkAttachmentDefinitionSpec{Config: fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"type":%q}`, name, typ)},
	}
}

func (s *fakeSource) GetNAD(ns, name string) (*nadv1.NetworkAttachmentDefinition, error) {
	if n := s.nads[ns+"/"+name]; n != nil {
		return n, nil
	}
	return nil, fmt.Errorf("NAD %s/%s: %w", ns, name, podref.ErrNotFound)
}

func (s *fakeSource) Pod(_ context.Context, ref podref.Ref, _ map[string]string) (*podref.Pod, error) {
	if p := s.pods[ref.Namespace+"/"+ref.Name]; p != nil {
		return p, nil
	}
	return nil, podref.ErrUnknown
}

func (s *fakeSource) WriteStatus(_ context.Context, ref podref.Ref, st []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	if s.stErr != nil {
		return s.stErr
	}
	if s.failSt {
		return errors.New("fake status write failed")
	}
	s.status[ref.String()] = st
	s.statusAt[ref.String()] = ref.UID
	return nil
}

func (s *fakeSource) ClearStatus(ref podref.Ref, _ []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.status, ref.String())
	s.clearedN++
	return nil
}

func (s *fakeSource) Ready() error { return nil }

func (s *fakeSource) PodExists(ref podref.Ref) (bool, bool) {
	return s.pods[ref.Namespace+"/"+ref.Name] != nil, true
}

// memStore is an in-memory record store; failSave and failCommit inject
// write failures.
type memStore struct {
	mu         sync.Mutex
	recs       map[string][]byte
	failSave   bool
	failCommit bool
}

func newMemStore() *memStore { return &memStore{recs: map[string][]byte{}} }

func (s *memStore) put(r *store.Record, fail bool) error {
	if fail {
		return errors.New("fake disk full")
	}
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs[r.ContainerID] = data
	return nil
}

func (s *memStore) Save(r *store.Record) error   { return s.put(r, s.failSave) }
func (s *memStore) Commit(r *store.Record) error { return s.put(r, s.failCommit) }

func (s *memStore) Load(id string) (*store.Record, error) {
	s.mu.Lock()
	data, ok := s.recs[id]
	s.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%s: %w", id, store.ErrNotFound)
	}
	var r store.Record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", id, store.ErrCorrupt)
	}
	return &r, nil
}

func (s *memStore) Delete(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.recs, id)
	return nil
}

func (s *memStore) List() ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for id := range s.recs {
		ids = append(ids, id)
	}
	return ids, nil
}

func (s *memStore) Updated(string) (time.Time, error) { return time.Now(), nil }

type nopRecorder struct{}

func (nopRecorder) Event(podref.Ref, bool, string, string) {}

// world is one Multiplexer on fakes: cluster network "cluster" (plugin
// "bridge") in kube-system, NADs a and b (plugin "macvlan") in default.
type world struct {
	t    *testing.T
	m    *Multiplexer
	exec *testutil.FakeExec
	src  *fakeSource
	st   *memStore
}

func newWorld(t *testing.T) *world {
	t.Helper()
	cfg := config.Default()
	cfg.ClusterNetwork = "cluster"
	src := newFakeSource()
	src.addNAD("kube-system", "cluster", "bridge")
	src.addNAD("default", "a", "macvlan")
	src.addNAD("default", "b", "macvlan")
	src.addNAD("default", "typo", "missing")
	ex := testutil.NewFakeExec()
	inv := delegate.NewInvoker(nil, t.TempDir(), ex)
	w := &world{t: t, exec: ex, src: src, st: newMemStore()}
	w.m = NewMultiplexer(cfg, src, w.st, inv, nopRecorder{}, nil, nil)
	return w
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func (w *world) pod(name, networks string) {
	w.src.pods["default/"+name] = &podref.Pod{Namespace: "default", Name: name, UID: "uid-" + name,
		Annotations: map[string]string{nadv1.NetworkAttachmentAnnot: networks}}
}

func (w *world) do(cmd api.Command, name string) ([]byte, error) {
	req := &api.Request{Command: cmd, ContainerID: "c-" + name, Netns: "/ns/" + name, IfName: "eth0", Path: "/fake",
		Args:   fmt.Sprintf("K8S_POD_NAMESPACE=default;K8S_POD_NAME=%s;K8S_POD_UID=uid-%s", name, name),
		Config: []byte(`{"cniVersion":"1.0.0","name":"plexus","type":"plexus"}`)}
	return w.m.Handle(context.Background(), quiet, req)
}

func (w *world) wantCalls(want ...string) {
	w.t.Helper()
	if got := w.exec.History(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		w.t.Errorf("plugin calls:\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	w.exec.Reset()
}

func (w *world) wantRecord(name string, want bool) {
	w.t.Helper()
	if _, err := w.st.Load("c-" + name); (err == nil) != want {
		w.t.Errorf("record of %s: %v, want present=%v", name, err, want)
	}
}

func TestAddRunsDelegatesInOrderThenStatusAndCommit(t *testing.T) {
	w := newWorld(t)
	w.pod("p", "a,b")
	out, err := w.do(api.CmdAdd, "p")
	if err != nil {
		t.Fatal(err)
	}
	w.wantCalls("ADD eth0 bridge", "ADD net1 macvlan", "ADD net2 macvlan")
	if !strings.Contains(string(out), "10.0.0.2/24") || strings.Contains(string(out), "net1") {
		t.Errorf("result is not the default network's: %s", out)
	}
	rec, err := w.st.Load("c-p")
	if err != nil || !rec.Complete || len(rec.Attachments) != 3 {
		t.Fatalf("record %+v %v", rec, err)
	}
	if st := string(w.src.status["default/p"]); !strings.Contains(st, `"net2"`) {
		t.Errorf("status %s", st)
	}
	if _, err := w.do(api.CmdDel, "p"); err != nil {
		t.Fatal(err)
	}
	w.wantCalls("DEL net2 macvlan", "DEL net1 macvlan", "DEL eth0 bridge")
	w.wantRecord("p", false)
}

// A failure at each step that changes something undoes exactly what was
// done before it, in reverse, and leaves no record.
func TestAddRollbackAtEachStep(t *testing.T) {
	allDel := []string{"DEL net2 macvlan", "DEL net1 macvlan", "DEL eth0 bridge"}
	adds := []string{"ADD eth0 bridge", "ADD net1 macvlan", "ADD net2 macvlan"}
	cases := []struct {
		name    string
		inject  func(w *world)
		want    []string
		cleared int
	}{
		{"save plan", func(w *world) { w.st.failSave = true }, nil, 0},
		{"first delegate", func(w *world) { w.exec.FailOn["ADD eth0"] = true }, []string{"ADD eth0 bridge", "DEL eth0 bridge"}, 0},
		{"last delegate", func(w *world) { w.exec.FailOn["ADD net2"] = true }, append(append([]string{}, adds...), allDel...), 0},
		{"status", func(w *world) { w.src.failSt = true }, append(append([]string{}, adds...), allDel...), 0},
		{"commit", func(w *world) { w.st.failCommit = true }, append(append([]string{}, adds...), allDel...), 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t)
			w.pod("p", "a,b")
			c.inject(w)
			if _, err := w.do(api.CmdAdd, "p"); err == nil {
				t.Fatal("ADD succeeded")
			}
			w.wantCalls(c.want...)
			w.wantRecord("p", false)
			if w.src.clearedN != c.cleared {
				t.Errorf("status cleared %d times, want %d", w.src.clearedN, c.cleared)
			}
			if _, ok := w.src.status["default/p"]; ok {
				t.Error("status left")
			}
		})
	}
}

// When the undo itself fails on a delegate that was added, the record
// stays for the runtime's DEL, which finishes the job.
func TestAddRecordKeptWhenRollbackFails(t *testing.T) {
	w := newWorld(t)
	w.pod("p", "a,b")
	w.exec.FailOn["ADD net2"] = true
	w.exec.FailOn["DEL net1"] = true
	_, err := w.do(api.CmdAdd, "p")
	var rb *delegate.RollbackError
	if !errors.As(err, &rb) {
		t.Fatalf("ADD error %v; want a RollbackError in it", err)
	}
	w.wantCalls("ADD eth0 bridge", "ADD net1 macvlan", "ADD net2 macvlan", "DEL net2 macvlan", "DEL net1 macvlan")
	w.wantRecord("p", true)
	delete(w.exec.FailOn, "DEL net1")
	if _, err := w.do(api.CmdDel, "p"); err != nil {
		t.Fatal(err)
	}
	w.wantCalls("DEL net2 macvlan", "DEL net1 macvlan", "DEL eth0 bridge")
	w.wantRecord("p", false)
}

// A delegate that was never added (its plugin cannot be found) does not
// fail the rollback or a later DEL.
func TestNeverAddedDelegateDoesNotBlockDel(t *testing.T) {
	w := newWorld(t)
	w.pod("p", "a,typo")
	if _, err := w.do(api.CmdAdd, "p"); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("ADD: %v", err)
	}
	w.wantCalls("ADD eth0 bridge", "ADD net1 macvlan", "DEL net1 macvlan", "DEL eth0 bridge")
	w.wantRecord("p", false)
	if _, err := w.do(api.CmdDel, "p"); err != nil {
		t.Fatal(err)
	}
}

// DEL uses the record only: the NADs and the pod may be gone.
func TestDelFromRecordOnly(t *testing.T) {
	w := newWorld(t)
	w.pod("p", "a")
	if _, err := w.do(api.CmdAdd, "p"); err != nil {
		t.Fatal(err)
	}
	w.wantCalls("ADD eth0 bridge", "ADD net1 macvlan")
	w.src.nads = map[string]*nadv1.NetworkAttachmentDefinition{}
	delete(w.src.pods, "default/p")
	if _, err := w.do(api.CmdDel, "p"); err != nil {
		t.Fatal(err)
	}
	w.wantCalls("DEL net1 macvlan", "DEL eth0 bridge")
	if _, err := w.do(api.CmdDel, "p"); err != nil { // and again: nothing to do
		t.Fatal(err)
	}
	w.wantCalls()
}

// A second ADD for an attached sandbox is refused without running anything.
func TestDuplicateAdd(t *testing.T) {
	w := newWorld(t)
	w.pod("p", "a")
	if _, err := w.do(api.CmdAdd, "p"); err != nil {
		t.Fatal(err)
	}
	w.wantCalls("ADD eth0 bridge", "ADD net1 macvlan")
	if _, err := w.do(api.CmdAdd, "p"); err == nil || !strings.Contains(err.Error(), "already attached") {
		t.Fatalf("second ADD: %v", err)
	}
	w.wantCalls()
}

// GC waits for an ADD in flight (CNI spec: no ADD or DEL while GC runs).
func TestGCExclusiveWithAdd(t *testing.T) {
	w := newWorld(t)
	w.pod("p", "a")
	w.exec.Block = make(chan struct{})
	added := make(chan error, 1)
	go func() { _, err := w.do(api.CmdAdd, "p"); added <- err }()
	for ids, _ := w.st.List(); len(ids) == 0; ids, _ = w.st.List() { // the ADD has saved its plan and is in a delegate
		time.Sleep(time.Millisecond)
	}
	gcDone := make(chan error, 1)
	go func() {
		_, err := w.m.Handle(context.Background(), quiet, &api.Request{Command: api.CmdGC, Path: "/fake",
			Config: []byte(`{"cniVersion":"1.1.0","name":"plexus","type":"plexus","cni.dev/valid-attachments":[]}`)})
		gcDone <- err
	}()
	select {
	case err := <-gcDone:
		t.Fatalf("GC ran while an ADD was in flight (%v)", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(w.exec.Block)
	if err := <-added; err != nil {
		t.Fatal(err)
	}
	if err := <-gcDone; err != nil {
		t.Fatal(err)
	}
	w.wantRecord("p", false) // not in the valid list: GC took it, after the ADD
}

// A pod the source never knew gets an empty result and nothing runs.
func TestUnknownPodEmptyResult(t *testing.T) {
	w := newWorld(t)
	out, err := w.do(api.CmdAdd, "ghost")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"cniVersion":"1.0.0"`) || strings.Contains(string(out), "ips") {
		t.Errorf("result %s", out)
	}
	w.wantCalls()
	w.wantRecord("ghost", false)
}

// fakeCRI is the runtime's sandbox list.
type fakeCRI struct {
	ids map[string]bool
	err error
}

func (f fakeCRI) Sandboxes(context.Context) (map[string]bool, error) { return f.ids, f.err }

// The sweep with a CRI runtime: a complete record of a sandbox the runtime
// does not list goes, even while its pod exists; one it lists, or an
// unfinished one, stays; without an answer the netns-and-pod rule decides
// (the pods exist: nothing goes).
func TestSweepAsksTheRuntime(t *testing.T) {
	for _, c := range []struct {
		name string
		cri  fakeCRI
		gone []string
	}{
		{"runtime lists p only", fakeCRI{ids: map[string]bool{"c-p": true}}, []string{"q"}},
		{"runtime lists both", fakeCRI{ids: map[string]bool{"c-p": true, "c-q": true}}, nil},
		{"runtime does not answer", fakeCRI{err: errors.New("connection refused")}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t)
			for _, n := range []string{"p", "q", "r"} {
				w.pod(n, "a")
				if _, err := w.do(api.CmdAdd, n); err != nil {
					t.Fatal(err)
				}
			}
			// r's ADD never finished (a crash): the runtime may not list it yet.
			rec, _ := w.st.Load("c-r")
			rec.Complete = false
			_ = w.st.Save(rec)
			s := NewSweeper(w.m, 0, c.cri, quiet)
			res := s.Sweep(context.Background())
			if res.Removed != len(c.gone) {
				t.Errorf("removed %d, want %d (%v)", res.Removed, len(c.gone), c.gone)
			}
			for _, n := range []string{"p", "q", "r"} {
				gone := slices.Contains(c.gone, n)
				w.wantRecord(n, !gone)
			}
		})
	}
}

// The status is written to the API object the lookup found, with its UID
// (a static pod's mirror has another UID than the sandbox), while the
// record keeps the sandbox's.
func TestStatusGoesToTheLookedUpObject(t *testing.T) {
	w := newWorld(t)
	w.pod("static", "a")
	w.src.pods["default/static"].UID = "mirror-uid"
	if _, err := w.do(api.CmdAdd, "static"); err != nil {
		t.Fatal(err)
	}
	if got := w.src.statusAt["default/static"]; got != "mirror-uid" {
		t.Errorf("status preconditioned on %q, want the mirror's UID", got)
	}
	if rec, _ := w.st.Load("c-static"); rec == nil || rec.Pod.UID != "uid-static" {
		t.Errorf("record pod %+v, want the sandbox's UID", rec)
	}
}
