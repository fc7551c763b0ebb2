package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"

	"github.com/plexus-cni/plexus/pkg/api"
	"github.com/plexus-cni/plexus/pkg/delegate"
	"github.com/plexus-cni/plexus/pkg/podref"
)

// The hot-plug orchestrator on the fakes of add_test.go: which delegates
// run, what the record and the status hold after each pass.

type fakeWatcher struct{ src *fakeSource }

func (f fakeWatcher) OnNetworksChange(func(podref.Ref)) {}
func (f fakeWatcher) Networks(ref podref.Ref) (string, bool) {
	p := f.src.pods[ref.Namespace+"/"+ref.Name]
	if p == nil {
		return "", false
	}
	return p.Annotations[nadv1.NetworkAttachmentAnnot], true
}

func newHotplugWorld(t *testing.T, networks string) (*world, *hotplugger) {
	t.Helper()
	w := newWorld(t)
	run := func(ctx context.Context, _ string, fn func(context.Context) error) error { return fn(ctx) }
	h := newHotplugger(w.m, run, fakeWatcher{w.src}, quiet)
	w.m.hotplug = h
	w.pod("p", networks)
	if _, err := w.do(api.CmdAdd, "p"); err != nil {
		t.Fatal(err)
	}
	w.exec.Reset()
	return w, h
}

// change sets the annotation and runs one pass.
func (w *world) change(h *hotplugger, networks string) error {
	w.src.pods["default/p"].Annotations[nadv1.NetworkAttachmentAnnot] = networks
	return h.sync(context.Background(), podref.Ref{Namespace: "default", Name: "p"})
}

// wantAttached checks the record: interfaces in order, none marked.
func (w *world) wantAttached(want ...string) {
	w.t.Helper()
	rec, err := w.st.Load("c-p")
	if err != nil {
		w.t.Fatal(err)
	}
	var got []string
	for _, s := range rec.Attachments {
		got = append(got, s.IfName+"="+s.Network)
		if s.Hotplug != "" {
			w.t.Errorf("%s left marked %q", s.IfName, s.Hotplug)
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		w.t.Errorf("record holds %v, want %v", got, want)
	}
	var st []nadv1.NetworkStatus
	_ = jsonUnmarshal(w.src.status["default/p"], &st)
	var ifs []string
	for _, s := range st {
		ifs = append(ifs, s.Interface+"="+s.Name)
	}
	if strings.Join(ifs, " ") != strings.Join(want, " ") {
		w.t.Errorf("network-status lists %v, want %v", ifs, want)
	}
}

func TestHotplugAddThenRemoveKeepsNames(t *testing.T) {
	w, h := newHotplugWorld(t, "a")
	if err := w.change(h, "a, b"); err != nil {
		t.Fatal(err)
	}
	w.wantCalls("ADD net2 macvlan")
	w.wantAttached("eth0=kube-system/cluster", "net1=default/a", "net2=default/b")
	if err := w.change(h, "b"); err != nil {
		t.Fatal(err)
	}
	w.wantCalls("DEL net1 macvlan")
	w.wantAttached("eth0=kube-system/cluster", "net2=default/b")
	if err := w.change(h, "b"); err != nil { // nothing to do
		t.Fatal(err)
	}
	w.wantCalls()
	if _, err := w.do(api.CmdDel, "p"); err != nil {
		t.Fatal(err)
	}
	w.wantCalls("DEL net2 macvlan", "DEL eth0 bridge")
}

// A failed ADD (or status write) is rolled back: the pod keeps exactly
// what it had; the pass fails, to be retried.
func TestHotplugFailureRollsBack(t *testing.T) {
	for _, c := range []struct {
		name   string
		inject func(w *world)
		calls  []string
	}{
		{"delegate", func(w *world) { w.exec.FailOn["ADD net3"] = true }, []string{"ADD net2 macvlan", "ADD net3 macvlan", "DEL net3 macvlan", "DEL net2 macvlan"}},
		{"status", func(w *world) { w.src.failSt = true }, []string{"ADD net2 macvlan", "ADD net3 macvlan", "DEL net3 macvlan", "DEL net2 macvlan"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, h := newHotplugWorld(t, "a")
			c.inject(w)
			if err := w.change(h, "a, b, a"); err == nil {
				t.Fatal("the pass succeeded")
			}
			w.wantCalls(c.calls...)
			w.src.failSt = false
			w.wantAttached("eth0=kube-system/cluster", "net1=default/a")
		})
	}
}

// Bad input changes nothing and is not retried (a permanent error).
func TestHotplugBadInputChangesNothing(t *testing.T) {
	w, h := newHotplugWorld(t, "a")
	for _, bad := range []string{"a, nosuch", "a, b@eth0", "a, b@net1", `[{"name":"b","mac":"zz"}]`} {
		err := w.change(h, bad)
		var perm *permanentError
		if !asErr(err, &perm) || !strings.Contains(err.Error(), `pod "default/p"`) {
			t.Errorf("%s: %v; want a permanent error naming the pod", bad, err)
		}
	}
	w.wantCalls()
	w.wantAttached("eth0=kube-system/cluster", "net1=default/a")
}

// A crash left attachments marked: the next pass deletes them (an add
// rolled back, a removal finished), then converges on the annotation.
func TestHotplugCrashConverges(t *testing.T) {
	w, h := newHotplugWorld(t, "a, b")
	rec, _ := w.st.Load("c-p")
	rec.Attachments[1].Hotplug = delegate.HotplugRemoving // net1, a removal the crash interrupted
	rec.Attachments[2].Hotplug = delegate.HotplugAdding   // net2, an add the crash interrupted
	if err := w.st.Save(rec); err != nil {
		t.Fatal(err)
	}
	// The annotation still asks for b: it is added back (its name free again).
	if err := w.change(h, "b"); err != nil {
		t.Fatal(err)
	}
	w.wantCalls("DEL net2 macvlan", "DEL net1 macvlan", "ADD net1 macvlan")
	w.wantAttached("eth0=kube-system/cluster", "net1=default/b")
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func asErr(err error, target any) bool { return errors.As(err, target) }
