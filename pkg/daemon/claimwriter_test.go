package daemon

import (
	"context"
	"errors"
	"net"
	"reflect"
	"sync"
	"testing"
	"time"

	current "github.com/containernetworking/cni/pkg/types/100"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/plexus-cni/plexus/internal/testutil"
	"github.com/plexus-cni/plexus/pkg/delegate"
	"github.com/plexus-cni/plexus/pkg/k8sclient"
	"github.com/plexus-cni/plexus/pkg/store"
)

// fakeClaims records the last write of each claim.
type fakeClaims struct {
	mu     sync.Mutex
	writes map[string][]k8sclient.ClaimNetworkData
}

func (f *fakeClaims) WriteClaimNetworkData(_ context.Context, namespace, name string, devs []k8sclient.ClaimNetworkData) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.writes == nil {
		f.writes = map[string][]k8sclient.ClaimNetworkData{}
	}
	f.writes[namespace+"/"+name] = devs
	return nil
}

func (f *fakeClaims) last(key string) ([]k8sclient.ClaimNetworkData, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.writes[key]
	return d, ok
}

// The attachment with a DRA device records the network data of its
// interface: the sandbox one of its name, its MAC, its IPs in CIDR form.
func TestClaimNetworkData(t *testing.T) {
	cd := &delegate.ClaimDevice{Namespace: "ns", Name: "c", Driver: "d", Pool: "p", Device: "dev0"}
	specs := []delegate.Spec{{Network: "ns/mv", IfName: "net1"}, {Network: "ns/vf", IfName: "net2", Claim: cd}}
	_, ipnet, _ := net.ParseCIDR("192.168.5.0/24")
	ipnet.IP = net.ParseIP("192.168.5.7").To4()
	res := &current.Result{CNIVersion: "1.0.0",
		Interfaces: []*current.Interface{{Name: "host-side"}, {Name: "net2", Mac: "02:00:00:00:00:02", Sandbox: "/var/run/netns/x"}},
		IPs:        []*current.IPConfig{{Interface: current.Int(1), Address: *ipnet}}}
	claimNetworkData(specs, []delegate.Outcome{{Spec: specs[0], Result: &current.Result{CNIVersion: "1.0.0"}}, {Spec: specs[1], Result: res}})
	got := specs[1].Claim
	if got == cd || got.InterfaceName != "net2" || got.MAC != "02:00:00:00:00:02" || !reflect.DeepEqual(got.IPs, []string{"192.168.5.7/24"}) {
		t.Errorf("claim device %+v", got)
	}
	if specs[0].Claim != nil || cd.InterfaceName != "" {
		t.Errorf("touched what it should not: %+v %+v", specs[0], cd)
	}
}

// A claim's entries are those of the complete records on the node; a DEL
// (record gone) leaves none, which the writer applies (clearing them).
func TestClaimWriterFollowsRecords(t *testing.T) {
	w := newWorld(t)
	sink := &fakeClaims{}
	w.m.claimW = newClaimWriter(w.m, sink, quiet)
	dev := func(d, ifn string) *delegate.ClaimDevice {
		return &delegate.ClaimDevice{Namespace: "ns", Name: "claim-1", Driver: "vf", Pool: "n1", Device: d, InterfaceName: ifn, MAC: "02:00:00:00:00:0" + d[len(d)-1:]}
	}
	for _, r := range []*store.Record{
		{ContainerID: "c1", Complete: true, Attachments: []delegate.Spec{{Network: "ns/vf", IfName: "net1", Claim: dev("d1", "net1")}}},
		{ContainerID: "c2", Complete: true, Attachments: []delegate.Spec{{Network: "ns/vf", IfName: "net1", Claim: dev("d2", "net1")}}},
		{ContainerID: "c3", Complete: false, Attachments: []delegate.Spec{{Network: "ns/vf", IfName: "net1", Claim: dev("d3", "net1")}}},
	} {
		if err := w.st.Save(r); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.m.claimW.Run(ctx, 1) // queues the claims the records use
	testutil.Eventually(t, 5*time.Second, "claim written", func() bool { d, _ := sink.last("ns/claim-1"); return len(d) == 2 })
	if err := w.st.Delete("c1"); err != nil {
		t.Fatal(err)
	}
	if err := w.st.Delete("c2"); err != nil {
		t.Fatal(err)
	}
	w.m.claimW.enqueue([]delegate.Spec{{Claim: dev("d1", "net1")}})
	testutil.Eventually(t, 5*time.Second, "claim cleared", func() bool { d, ok := sink.last("ns/claim-1"); return ok && len(d) == 0 })
}

// A failed write is retried with backoff until it lands, like the
// network-status's; a claim that is gone (404) ends it.
func TestClaimWriterRetries(t *testing.T) {
	w := newWorld(t)
	sink := &flakyClaims{failures: 2}
	w.m.claimW = newClaimWriter(w.m, sink, quiet)
	cd := &delegate.ClaimDevice{Namespace: "ns", Name: "claim-1", Driver: "vf", Pool: "n1", Device: "d1", InterfaceName: "net1"}
	if err := w.st.Save(&store.Record{ContainerID: "c1", Complete: true, Attachments: []delegate.Spec{{Network: "ns/vf", IfName: "net1", Claim: cd}}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.m.claimW.Run(ctx, 1)
	testutil.Eventually(t, 10*time.Second, "written after two failures", func() bool { return sink.count() == 3 })
	sink.setGone()
	w.m.claimW.enqueue([]delegate.Spec{{Claim: cd}})
	testutil.Eventually(t, 5*time.Second, "a gone claim is tried once", func() bool { return sink.count() == 4 })
	time.Sleep(1500 * time.Millisecond) // past the first backoff
	if n := sink.count(); n != 4 {
		t.Errorf("%d attempts; a gone claim must not be retried", n)
	}
}

type flakyClaims struct {
	mu       sync.Mutex
	failures int
	gone     bool
	calls    int
}

func (f *flakyClaims) WriteClaimNetworkData(context.Context, string, string, []k8sclient.ClaimNetworkData) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.gone {
		return apierrors.NewNotFound(schema.GroupResource{Group: "resource.k8s.io", Resource: "resourceclaims"}, "claim-1")
	}
	if f.calls <= f.failures {
		return errors.New("connection refused")
	}
	return nil
}

func (f *flakyClaims) count() int { f.mu.Lock(); defer f.mu.Unlock(); return f.calls }

func (f *flakyClaims) setGone() { f.mu.Lock(); f.gone = true; f.mu.Unlock() }
