package daemon

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"

	current "github.com/containernetworking/cni/pkg/types/100"
	"k8s.io/client-go/util/workqueue"

	"github.com/plexus-cni/plexus/pkg/delegate"
	"github.com/plexus-cni/plexus/pkg/k8sclient"
	"github.com/plexus-cni/plexus/pkg/store"
)

// claimSink takes the network data of DRA devices (the Kubernetes source
// when resource.k8s.io/v1 is served).
type claimSink interface {
	WriteClaimNetworkData(ctx context.Context, namespace, name string, devs []k8sclient.ClaimNetworkData) error
}

// claimRef names a ResourceClaim.
type claimRef struct{ Namespace, Name string }

// claimWriter keeps the network data of the DRA devices Plexus configured
// in their ResourceClaims' status (KEP-4817), declaratively: a claim's
// entries are those of every attachment in this node's records that uses
// one of its devices, so an ADD adds them, a DEL (its record gone) drops
// them, and a crash loses nothing (every claim in the records is written
// again at start). Writes are retried like the network-status's; a claim
// that is gone ends them.
type claimWriter struct {
	m     *Multiplexer
	sink  claimSink
	log   *slog.Logger
	queue workqueue.TypedRateLimitingInterface[claimRef]
}

func newClaimWriter(m *Multiplexer, sink claimSink, log *slog.Logger) *claimWriter {
	return &claimWriter{m: m, sink: sink, log: log.With("component", "claim-writer"),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[claimRef](statusRetryMin, statusRetryMax),
			workqueue.TypedRateLimitingQueueConfig[claimRef]{Name: "claims"})}
}

// enqueue asks for the claims of specs to be written again.
func (w *claimWriter) enqueue(specs []delegate.Spec) {
	if w == nil {
		return
	}
	for _, s := range specs {
		if s.Claim != nil {
			w.queue.Add(claimRef{s.Claim.Namespace, s.Claim.Name})
		}
	}
}

// Run writes with workers goroutines until ctx ends, after queueing every
// claim the records use.
func (w *claimWriter) Run(ctx context.Context, workers int) {
	recs, err := w.records()
	if err != nil {
		w.log.Warn("list attachment records for DRA claims", "err", err)
	}
	for _, r := range recs {
		w.enqueue(r.Attachments)
	}
	runQueue(ctx, w.queue, workers, w.process)
}

func (w *claimWriter) process(ctx context.Context, ref claimRef) {
	err := w.write(ctx, ref)
	switch {
	case err == nil:
		w.queue.Forget(ref)
	case ctx.Err() != nil:
	case gone(err):
		w.log.Info("ResourceClaim gone before its network data was written", "claim", ref.Namespace+"/"+ref.Name)
		w.queue.Forget(ref)
	case retryStatus(err):
		w.log.Warn("ResourceClaim network data write failed; retrying", "claim", ref.Namespace+"/"+ref.Name, "err", err, "retries", w.queue.NumRequeues(ref))
		w.queue.AddRateLimited(ref)
	default:
		w.log.Warn("ResourceClaim network data write refused; not retried", "claim", ref.Namespace+"/"+ref.Name, "err", err)
		w.queue.Forget(ref)
	}
}

// write applies the claim's entries as the records have them now.
func (w *claimWriter) write(ctx context.Context, ref claimRef) error {
	recs, err := w.records()
	if err != nil {
		return err
	}
	var devs []k8sclient.ClaimNetworkData
	for _, r := range recs {
		if !r.Complete {
			continue
		}
		for _, s := range r.Attachments {
			c := s.Claim
			if c == nil || c.Namespace != ref.Namespace || c.Name != ref.Name || c.InterfaceName == "" || s.Hotplug != "" {
				continue
			}
			devs = append(devs, k8sclient.ClaimNetworkData{Driver: c.Driver, Pool: c.Pool, Device: c.Device,
				InterfaceName: c.InterfaceName, IPs: c.IPs, MAC: c.MAC})
		}
	}
	actx, cancel := context.WithTimeout(ctx, statusAttempt)
	defer cancel()
	return w.sink.WriteClaimNetworkData(actx, ref.Namespace, ref.Name, devs)
}

// records loads every readable record (one unreadable is skipped: the
// orphan sweeper deals with it).
func (w *claimWriter) records() ([]*store.Record, error) {
	ids, err := w.m.store.List()
	if err != nil {
		return nil, err
	}
	out := make([]*store.Record, 0, len(ids))
	for _, id := range ids {
		r, err := w.m.store.Load(id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			w.log.Debug("skip unreadable record", "container", id, "err", err)
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

// claimNetworkData records, in each attachment that got a DRA device, the
// network data its ADD produced: the sandbox interface of that name (or
// the first), its MAC and its IPs in CIDR form.
func claimNetworkData(specs []delegate.Spec, outcomes []delegate.Outcome) {
	for i := range specs {
		if specs[i].Claim == nil {
			continue
		}
		j := slices.IndexFunc(outcomes, func(o delegate.Outcome) bool { return o.Spec.IfName == specs[i].IfName })
		if j < 0 {
			continue
		}
		res, err := delegate.AsCurrent(outcomes[j].Result)
		if err != nil || res == nil {
			continue
		}
		c := *specs[i].Claim
		c.InterfaceName, c.MAC, c.IPs = specs[i].IfName, "", nil
		idx := -1
		for k, iface := range res.Interfaces {
			if iface != nil && iface.Sandbox != "" && (idx < 0 || iface.Name == specs[i].IfName) {
				idx, c.MAC = k, iface.Mac
			}
		}
		for _, ipc := range res.IPs {
			if ipc == nil || ipc.Address.IP == nil || ipc.Interface != nil && idx >= 0 && *ipc.Interface != idx {
				continue
			}
			c.IPs = append(c.IPs, cidr(ipc))
		}
		specs[i].Claim = &c
	}
}

func cidr(ipc *current.IPConfig) string {
	n := net.IPNet{IP: ipc.Address.IP, Mask: ipc.Address.Mask}
	return n.String()
}
