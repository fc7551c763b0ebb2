package devices

import (
	"context"
	"fmt"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	podresourcesv1 "k8s.io/kubelet/pkg/apis/podresources/v1"

	"github.com/plexus-cni/plexus/pkg/delegate"
)

// PodResources reads the devices the kubelet allocated to a pod. An error
// wraps ErrPodNotListed when the kubelet does not know the pod.
type PodResources interface {
	PodDevices(ctx context.Context, namespace, name string) (Allocation, error)
}

// maxRecvMsgSize bounds a List answer (every pod of the node), as Multus
// and the kubelet's own client do.
const maxRecvMsgSize = 16 << 20

// Kubelet is the PodResources v1 gRPC client over the kubelet's unix
// socket. It asks the pod-scoped Get (kubelet >= 1.27 with the
// KubeletPodResourcesGet feature gate) and falls back to List, which
// returns every pod of the node; once Get is known not to work it goes
// straight to List.
type Kubelet struct {
	socket string
	// listOnly is set once Get answered Unimplemented (an older kubelet),
	// or failed while List then found the pod (the feature gate is off:
	// the kubelet answers a plain error, code Unknown, for that).
	listOnly atomic.Bool
}

var _ PodResources = (*Kubelet)(nil)

// NewKubelet returns a client for the PodResources socket at path. No
// connection is made until the first call.
func NewKubelet(path string) *Kubelet { return &Kubelet{socket: path} }

// PodDevices implements PodResources. One gRPC connection per call: calls
// are rare (only pods with resource attachments, and cached by Manager),
// and the kubelet may have restarted in between.
func (k *Kubelet) PodDevices(ctx context.Context, namespace, name string) (Allocation, error) {
	// "unix:" + path takes absolute and relative paths alike.
	conn, err := grpc.NewClient("unix:"+k.socket,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecvMsgSize)))
	if err != nil {
		return Allocation{}, fmt.Errorf("PodResources client for %s: %w", k.socket, err)
	}
	defer conn.Close()
	c := podresourcesv1.NewPodResourcesListerClient(conn)

	getFailed := false
	if !k.listOnly.Load() {
		resp, err := c.Get(ctx, &podresourcesv1.GetPodResourcesRequest{PodName: name, PodNamespace: namespace})
		switch status.Code(err) {
		case codes.OK:
			if resp.GetPodResources() == nil {
				return Allocation{}, fmt.Errorf("PodResources Get %s/%s: empty answer: %w", namespace, name, ErrPodNotListed)
			}
			return allocationOf(resp.GetPodResources()), nil
		case codes.Unimplemented:
			k.listOnly.Store(true)
		case codes.Unknown:
			// A disabled Get and an unknown pod look alike (a plain
			// error); List tells them apart.
			getFailed = true
		default:
			return Allocation{}, fmt.Errorf("PodResources Get %s/%s: %w", namespace, name, err)
		}
	}
	resp, err := c.List(ctx, &podresourcesv1.ListPodResourcesRequest{})
	if err != nil {
		return Allocation{}, fmt.Errorf("PodResources List: %w", err)
	}
	for _, pr := range resp.GetPodResources() {
		if pr.GetNamespace() == namespace && pr.GetName() == name {
			if getFailed {
				k.listOnly.Store(true)
			}
			return allocationOf(pr), nil
		}
	}
	return Allocation{}, fmt.Errorf("PodResources List: pod %s/%s: %w", namespace, name, ErrPodNotListed)
}

// allocationOf collects the device-plugin IDs of every container of the
// pod, and the DRA devices of the claims its containers use (a claim two
// containers share is listed once).
func allocationOf(pr *podresourcesv1.PodResources) Allocation {
	out := Allocation{Devices: Devices{}}
	type key struct{ ns, claim, driver, pool, device string }
	seen := map[key]bool{}
	for _, c := range pr.GetContainers() {
		for _, d := range c.GetDevices() {
			if d.GetResourceName() == "" {
				continue
			}
			out.Devices[d.GetResourceName()] = append(out.Devices[d.GetResourceName()], d.GetDeviceIds()...)
		}
		for _, dr := range c.GetDynamicResources() {
			for _, cr := range dr.GetClaimResources() {
				cd := delegate.ClaimDevice{Namespace: dr.GetClaimNamespace(), Name: dr.GetClaimName(), Driver: cr.GetDriverName(), Pool: cr.GetPoolName(), Device: cr.GetDeviceName()}
				k := key{cd.Namespace, cd.Name, cd.Driver, cd.Pool, cd.Device}
				if cd.Name == "" || cd.Driver == "" || cd.Device == "" || seen[k] {
					continue
				}
				seen[k] = true
				out.Claims = append(out.Claims, cd)
			}
		}
	}
	return out
}
