package testutil

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	podresourcesv1 "k8s.io/kubelet/pkg/apis/podresources/v1"
)

// GetMode is how a FakeKubelet answers the pod-scoped Get.
type GetMode int

// The Get behaviours of real kubelets.
const (
	GetWorks         GetMode = iota
	GetUnimplemented         // kubelet < 1.27: codes.Unimplemented
	GetDisabled              // feature gate KubeletPodResourcesGet off: a plain error
	Hangs                    // a kubelet that never answers (Get and List)
)

// FakeKubelet serves the real PodResources v1 API (Get and List) from Pods
// and counts the calls.
type FakeKubelet struct {
	podresourcesv1.UnimplementedPodResourcesListerServer
	Mode  GetMode
	Pods  []*podresourcesv1.PodResources
	gets  atomic.Int32
	lists atomic.Int32
	mu    sync.Mutex
}

// SetPods replaces Pods while f serves.
func (f *FakeKubelet) SetPods(pods ...*podresourcesv1.PodResources) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Pods = pods
}

func (f *FakeKubelet) pods() []*podresourcesv1.PodResources {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.Pods
}

// List implements the PodResources API.
func (f *FakeKubelet) List(ctx context.Context, _ *podresourcesv1.ListPodResourcesRequest) (*podresourcesv1.ListPodResourcesResponse, error) {
	f.lists.Add(1)
	if f.Mode == Hangs {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return &podresourcesv1.ListPodResourcesResponse{PodResources: f.pods()}, nil
}

// Get implements the PodResources API.
func (f *FakeKubelet) Get(ctx context.Context, req *podresourcesv1.GetPodResourcesRequest) (*podresourcesv1.GetPodResourcesResponse, error) {
	f.gets.Add(1)
	switch f.Mode {
	case Hangs:
		<-ctx.Done()
		return nil, ctx.Err()
	case GetUnimplemented:
		return nil, status.Error(codes.Unimplemented, "method Get not implemented")
	case GetDisabled:
		return nil, errors.New("PodResources API Get method disabled")
	}
	for _, p := range f.pods() {
		if p.Namespace == req.PodNamespace && p.Name == req.PodName {
			return &podresourcesv1.GetPodResourcesResponse{PodResources: p}, nil
		}
	}
	return nil, fmt.Errorf("pod %s in namespace %s not found", req.PodName, req.PodNamespace)
}

// Calls returns how many Get and List calls were served.
func (f *FakeKubelet) Calls() (gets, lists int32) { return f.gets.Load(), f.lists.Load() }

// Serve starts f on a unix socket in a temp dir, stopped at t's cleanup,
// and returns the socket's path.
func (f *FakeKubelet) Serve(tb testing.TB) string {
	tb.Helper()
	sock := filepath.Join(tb.TempDir(), "kubelet.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		tb.Fatal(err)
	}
	srv := grpc.NewServer()
	podresourcesv1.RegisterPodResourcesListerServer(srv, f)
	go func() { _ = srv.Serve(lis) }() // returns when Stop closes the listener
	tb.Cleanup(srv.Stop)
	return sock
}

// PodResources is a pod whose containers hold devices, one map of
// resource → device IDs per container (named c0, c1…).
func PodResources(namespace, name string, containers ...map[string][]string) *podresourcesv1.PodResources {
	p := &podresourcesv1.PodResources{Namespace: namespace, Name: name}
	for i, c := range containers {
		cr := &podresourcesv1.ContainerResources{Name: fmt.Sprintf("c%d", i)}
		for r, ids := range c {
			cr.Devices = append(cr.Devices, &podresourcesv1.ContainerDevices{ResourceName: r, DeviceIds: ids})
		}
		p.Containers = append(p.Containers, cr)
	}
	return p
}
