package devices

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	podresourcesv1 "k8s.io/kubelet/pkg/apis/podresources/v1"

	"github.com/plexus-cni/plexus/internal/testutil"
	"github.com/plexus-cni/plexus/pkg/delegate"
)

// getMode is how the fake kubelet answers Get.
func TestKubeletGetAndListFallback(t *testing.T) {
	t.Parallel()
	const vf = "example.com/vf"
	pods := []*podresourcesv1.PodResources{
		testutil.PodResources("default", "b", map[string][]string{vf: {"vf-b1", "vf-b2"}}),
		testutil.PodResources("default", "a", map[string][]string{vf: {"vf-a2"}, "example.com/gpu": {"g0"}}, map[string][]string{vf: {"vf-a1"}}, nil),
	}
	wantA := Devices{vf: {"vf-a2", "vf-a1"}, "example.com/gpu": {"g0"}}
	tests := []struct {
		name string
		mode testutil.GetMode
		// calls made by two successive PodDevices for pod a
		wantGets, wantLists int32
	}{
		{name: "Get answers", mode: testutil.GetWorks, wantGets: 2, wantLists: 0},
		{name: "Get unimplemented: List, then List only", mode: testutil.GetUnimplemented, wantGets: 1, wantLists: 2},
		{name: "Get disabled by feature gate: List, then List only", mode: testutil.GetDisabled, wantGets: 1, wantLists: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := &testutil.FakeKubelet{Mode: tt.mode, Pods: pods}
			k := NewKubelet(f.Serve(t))
			for i := 0; i < 2; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				got, err := k.PodDevices(ctx, "default", "a")
				cancel()
				if err != nil {
					t.Fatalf("call %d: %v", i, err)
				}
				if !reflect.DeepEqual(got.Devices, wantA) || len(got.Claims) != 0 {
					t.Fatalf("call %d: devices %+v, want %v", i, got, wantA)
				}
			}
			if g, l := f.Calls(); g != tt.wantGets || l != tt.wantLists {
				t.Fatalf("Get×%d List×%d, want Get×%d List×%d", g, l, tt.wantGets, tt.wantLists)
			}
		})
	}
}

func TestKubeletPodNotListed(t *testing.T) {
	t.Parallel()
	for _, mode := range []testutil.GetMode{testutil.GetWorks, testutil.GetUnimplemented, testutil.GetDisabled} {
		f := &testutil.FakeKubelet{Mode: mode, Pods: []*podresourcesv1.PodResources{testutil.PodResources("default", "b", nil)}}
		k := NewKubelet(f.Serve(t))
		_, err := k.PodDevices(context.Background(), "default", "a")
		if mode == testutil.GetWorks {
			// The kubelet's Get answers a plain error for an unknown pod:
			// List confirms it.
			if _, l := f.Calls(); l != 1 {
				_, l := f.Calls()
				t.Errorf("mode %d: List×%d after a failed Get, want 1", mode, l)
			}
		}
		if !errors.Is(err, ErrPodNotListed) {
			t.Errorf("mode %d: err = %v, want ErrPodNotListed", mode, err)
		}
		// An unknown pod must not switch a working Get off.
		if mode == testutil.GetWorks && k.listOnly.Load() {
			t.Errorf("an unknown pod made the client give up Get")
		}
	}
}

func TestKubeletUnavailable(t *testing.T) {
	t.Parallel()
	k := NewKubelet(filepath.Join(t.TempDir(), "missing.sock"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err := k.PodDevices(ctx, "default", "a")
	if status.Code(errors.Unwrap(err)) != codes.Unavailable {
		t.Fatalf("err = %v, want an Unavailable status", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("a missing socket took %v to fail", time.Since(start))
	}
	if k.listOnly.Load() {
		t.Errorf("an unreachable kubelet made the client give up Get")
	}
}

// The devices of the claims a pod's containers use (DRA) come with it,
// each once even when two containers share the claim.
func TestKubeletDynamicResources(t *testing.T) {
	t.Parallel()
	pr := testutil.PodResources("default", "a", nil, nil)
	dyn := []*podresourcesv1.DynamicResource{{ClaimName: "a-vfs-x7", ClaimNamespace: "default", ClaimResources: []*podresourcesv1.ClaimResource{
		{DriverName: "vf.example.com", PoolName: "node1", DeviceName: "pci-0000-00-0b-0"},
		{DriverName: "vf.example.com", PoolName: "node1", DeviceName: "pci-0000-00-0b-1"},
	}}}
	pr.Containers[0].DynamicResources = dyn
	pr.Containers[1].DynamicResources = dyn
	f := &testutil.FakeKubelet{Mode: testutil.GetWorks, Pods: []*podresourcesv1.PodResources{pr}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := NewKubelet(f.Serve(t)).PodDevices(ctx, "default", "a")
	if err != nil {
		t.Fatal(err)
	}
	want := []delegate.ClaimDevice{
		{Namespace: "default", Name: "a-vfs-x7", Driver: "vf.example.com", Pool: "node1", Device: "pci-0000-00-0b-0"},
		{Namespace: "default", Name: "a-vfs-x7", Driver: "vf.example.com", Pool: "node1", Device: "pci-0000-00-0b-1"},
	}
	if !reflect.DeepEqual(got.Claims, want) {
		t.Fatalf("claims %+v, want %+v", got.Claims, want)
	}
}
