package daemon

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// SandboxLister lists the pod sandboxes the container runtime has, in any
// state: the orphan sweep's strongest signal.
type SandboxLister interface {
	Sandboxes(ctx context.Context) (map[string]bool, error)
}

// criTimeout bounds one ListPodSandbox.
const criTimeout = 5 * time.Second

// CRISandboxes asks the CRI runtime service on a unix socket (containerd's
// /run/containerd/containerd.sock, CRI-O's /var/run/crio/crio.sock).
type CRISandboxes struct{ Socket string }

// Sandboxes implements SandboxLister.
func (c CRISandboxes) Sandboxes(ctx context.Context) (map[string]bool, error) {
	conn, err := grpc.NewClient("unix://"+c.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("CRI %s: %w", c.Socket, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, criTimeout)
	defer cancel()
	resp, err := runtimeapi.NewRuntimeServiceClient(conn).ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return nil, fmt.Errorf("CRI %s: list pod sandboxes: %w", c.Socket, err)
	}
	ids := make(map[string]bool, len(resp.Items))
	for _, s := range resp.Items {
		ids[s.Id] = true
	}
	return ids, nil
}
