package detach

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plexus-cni/plexus/internal/testutil"
	"github.com/plexus-cni/plexus/pkg/delegate"
	"github.com/plexus-cni/plexus/pkg/podref"
	"github.com/plexus-cni/plexus/pkg/store"
)

// A sandbox of pod default/p with eth0 (bridge) and net1 (macvlan), added
// through the real libcni with a fake exec, so its result cache is real.
type sandbox struct {
	t     *testing.T
	exec  *testutil.FakeExec
	inv   *delegate.Invoker
	st    *store.FileStore
	cache string
	rec   *store.Record
}

func newSandbox(t *testing.T) *sandbox {
	t.Helper()
	dir := t.TempDir()
	ex := testutil.NewFakeExec()
	sb := &sandbox{t: t, exec: ex, inv: delegate.NewInvoker(nil, dir, ex), st: store.NewFileStore(store.RecordsDir(dir)), cache: dir}
	args := [][2]string{{"K8S_POD_NAMESPACE", "default"}, {"K8S_POD_NAME", "p"}, {"K8S_POD_UID", "u1"}}
	sb.rec = &store.Record{ContainerID: "c1", Netns: "/ns/c1", IfName: "eth0", Pod: podref.Ref{Namespace: "default", Name: "p", UID: "u1"}, Complete: true}
	for i, typ := range []string{"bridge", "macvlan"} {
		ifname := fmt.Sprintf("net%d", i)
		if i == 0 {
			ifname = "eth0"
		}
		s := delegate.Spec{Network: "n" + typ, IfName: ifname, Args: args,
			ConfList: []byte(fmt.Sprintf(`{"cniVersion":"1.0.0","name":"n%s","plugins":[{"type":%q}]}`, typ, typ))}
		if _, err := sb.inv.AddOne(context.Background(), delegate.Target{ContainerID: "c1", Netns: "/ns/c1"}, s); err != nil {
			t.Fatal(err)
		}
		sb.rec.Attachments = append(sb.rec.Attachments, s)
	}
	if err := sb.st.Save(sb.rec); err != nil {
		t.Fatal(err)
	}
	ex.Reset()
	return sb
}

func (sb *sandbox) detach() (*store.Record, error) {
	return Detach(context.Background(), sb.inv, sb.st, "c1", "", "")
}

func (sb *sandbox) wantCalls(want ...string) {
	sb.t.Helper()
	if got := sb.exec.History(); strings.Join(got, ",") != strings.Join(want, ",") {
		sb.t.Errorf("calls %v, want %v", got, want)
	}
	sb.exec.Reset()
}

func (sb *sandbox) corruptRecord() {
	sb.t.Helper()
	if err := os.WriteFile(filepath.Join(store.RecordsDir(sb.cache), "c1.json"), []byte("{"), 0o600); err != nil {
		sb.t.Fatal(err)
	}
}

func TestDetachFromRecordInReverse(t *testing.T) {
	sb := newSandbox(t)
	rec, err := sb.detach()
	if err != nil || rec == nil || rec.Recovered {
		t.Fatalf("Detach = %+v, %v", rec, err)
	}
	sb.wantCalls("DEL net1 macvlan", "DEL eth0 bridge")
	if _, err := sb.st.Load("c1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("record after DEL: %v", err)
	}
	if rec, err := sb.detach(); rec != nil || err != nil { // nothing left
		t.Errorf("second Detach = %+v, %v", rec, err)
	}
	sb.wantCalls()
}

func TestDetachKeepsRecordWhenAnAddedDelegateFails(t *testing.T) {
	sb := newSandbox(t)
	sb.exec.FailOn["DEL net1"] = true
	if _, err := sb.detach(); err == nil || !strings.Contains(err.Error(), "net1") {
		t.Fatalf("Detach: %v; want net1's failure", err)
	}
	sb.wantCalls("DEL net1 macvlan", "DEL eth0 bridge") // keeps going past a failure
	if _, err := sb.st.Load("c1"); err != nil {
		t.Errorf("record gone after a failed DEL: %v", err)
	}
	delete(sb.exec.FailOn, "DEL net1")
	if _, err := sb.detach(); err != nil {
		t.Fatal(err)
	}
}

func TestDetachCorruptRecordFromCache(t *testing.T) {
	sb := newSandbox(t)
	sb.corruptRecord()
	if p, ok := PodOf(sb.inv, sb.st, "c1"); !ok || p.Name != "p" || p.UID != "u1" {
		t.Errorf("PodOf = %+v, %v", p, ok)
	}
	rec, err := sb.detach()
	if err != nil || rec == nil || !rec.Recovered || rec.Pod.Name != "p" {
		t.Fatalf("Detach = %+v, %v", rec, err)
	}
	sb.wantCalls("DEL net1 macvlan", "DEL eth0 bridge")
	if _, err := sb.st.Load("c1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("record after DEL: %v", err)
	}
}

func TestDetachCorruptRecordAndCacheEntryFailsNamingIt(t *testing.T) {
	sb := newSandbox(t)
	sb.corruptRecord()
	entry := filepath.Join(sb.cache, "results", "nmacvlan-c1-net1")
	if err := os.WriteFile(entry, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := sb.detach()
	var unreadable *delegate.UnreadableCacheError
	if !errors.As(err, &unreadable) || !strings.Contains(err.Error(), entry) {
		t.Fatalf("Detach: %v; want an error naming %s", err, entry)
	}
	sb.wantCalls("DEL eth0 bridge") // what could be released, was
	if _, err := sb.st.Load("c1"); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("the corrupt record must stay: %v", err)
	}
}

func TestDetachCorruptRecordEmptyCache(t *testing.T) {
	sb := newSandbox(t)
	sb.corruptRecord()
	if err := os.RemoveAll(filepath.Join(sb.cache, "results")); err != nil {
		t.Fatal(err)
	}
	if rec, err := sb.detach(); rec != nil || err != nil {
		t.Errorf("Detach = %+v, %v; want nothing to do", rec, err)
	}
	if _, ok := PodOf(sb.inv, sb.st, "c1"); ok {
		t.Error("PodOf knows a pod with neither record nor cache")
	}
}
