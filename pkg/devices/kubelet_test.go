package devices

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	podresourcesv1 "k8s.io/kubelet/pkg/apis/podresources/v1"
)

// getMode is how the fake kubelet answers Get.
type getMode int

const (
	getWorks         getMode = iota
	getUnimplemented         // kubelet < 1.27: codes.Unimplemented
	getDisabled              // feature gate off: a plain error, codes.Unknown
)

// fakeKubelet speaks the real PodResources v1 API over a unix socket.
type fakeKubelet struct {
	podresourcesv1.UnimplementedPodResourcesListerServer
	mode  getMode
	pods  []*podresourcesv1.PodResources
	gets  atomic.Int32
	lists atomic.Int32
}

func (f *fakeKubelet) List(context.Context, *podresourcesv1.ListPodResourcesRequest) (*podresourcesv1.ListPodResourcesResponse, error) {
	f.lists.Add(1)
	return &podresourcesv1.ListPodResourcesResponse{PodResources: f.pods}, nil
}

func (f *fakeKubelet) Get(_ context.Context, req *podresourcesv1.GetPodResourcesRequest) (*podresourcesv1.GetPodResourcesResponse, error) {
	f.gets.Add(1)
	switch f.mode {
	case getUnimplemented:
		return nil, status.Error(codes.Unimplemented, "method Get not implemented")
	case getDisabled:
		return nil, errors.New("PodResources API Get method disabled")
	}
	for _, p := range f.pods {
		if p.Namespace == req.PodNamespace && p.Name == req.PodName {
			return &podresourcesv1.GetPodResourcesResponse{PodResources: p}, nil
		}
	}
	return nil, errors.New("pod " + req.PodName + " in namespace " + req.PodNamespace + " not found")
}

func podRes(namespace, name string, containers ...map[string][]string) *podresourcesv1.PodResources {
	p := &podresourcesv1.PodResources{Namespace: namespace, Name: name}
	for i, c := range containers {
		cr := &podresourcesv1.ContainerResources{Name: "c" + string(rune('0'+i))}
		for r, ids := range c {
			cr.Devices = append(cr.Devices, &podresourcesv1.ContainerDevices{ResourceName: r, DeviceIds: ids})
		}
		p.Containers = append(p.Containers, cr)
	}
	return p
}

// serve starts f on a unix socket in a temp dir and returns its path.
func serve(t *testing.T, f *fakeKubelet) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "kubelet.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	podresourcesv1.RegisterPodResourcesListerServer(srv, f)
	go func() { _ = srv.Serve(lis) }() // returns when Stop closes the listener
	t.Cleanup(srv.Stop)
	return sock
}

func TestKubeletGetAndListFallback(t *testing.T) {
	t.Parallel()
	const vf = "example.com/vf"
	pods := []*podresourcesv1.PodResources{
		podRes("default", "b", map[string][]string{vf: {"vf-b1", "vf-b2"}}),
		podRes("default", "a", map[string][]string{vf: {"vf-a2"}, "example.com/gpu": {"g0"}}, map[string][]string{vf: {"vf-a1"}}, nil),
	}
	wantA := Devices{vf: {"vf-a2", "vf-a1"}, "example.com/gpu": {"g0"}}
	tests := []struct {
		name string
		mode getMode
		// calls made by two successive PodDevices for pod a
		wantGets, wantLists int32
	}{
		{name: "Get answers", mode: getWorks, wantGets: 2, wantLists: 0},
		{name: "Get unimplemented: List, then List only", mode: getUnimplemented, wantGets: 1, wantLists: 2},
		{name: "Get disabled by feature gate: List, then List only", mode: getDisabled, wantGets: 1, wantLists: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeKubelet{mode: tt.mode, pods: pods}
			k := NewKubelet(serve(t, f))
			for i := 0; i < 2; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				got, err := k.PodDevices(ctx, "default", "a")
				cancel()
				if err != nil {
					t.Fatalf("call %d: %v", i, err)
				}
				if !reflect.DeepEqual(got, wantA) {
					t.Fatalf("call %d: devices %v, want %v", i, got, wantA)
				}
			}
			if g, l := f.gets.Load(), f.lists.Load(); g != tt.wantGets || l != tt.wantLists {
				t.Fatalf("Get×%d List×%d, want Get×%d List×%d", g, l, tt.wantGets, tt.wantLists)
			}
		})
	}
}

func TestKubeletPodNotListed(t *testing.T) {
	t.Parallel()
	for _, mode := range []getMode{getWorks, getUnimplemented, getDisabled} {
		f := &fakeKubelet{mode: mode, pods: []*podresourcesv1.PodResources{podRes("default", "b", nil)}}
		k := NewKubelet(serve(t, f))
		_, err := k.PodDevices(context.Background(), "default", "a")
		if mode == getWorks {
			// The kubelet's Get answers a plain error for an unknown pod:
			// List confirms it.
			if f.lists.Load() != 1 {
				t.Errorf("mode %d: List×%d after a failed Get, want 1", mode, f.lists.Load())
			}
		}
		if !errors.Is(err, ErrPodNotListed) {
			t.Errorf("mode %d: err = %v, want ErrPodNotListed", mode, err)
		}
		// An unknown pod must not switch a working Get off.
		if mode == getWorks && k.listOnly.Load() {
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
