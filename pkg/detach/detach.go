// Package detach tears a sandbox down from its durable attachment record.
// The daemon uses it for DEL and GC, and the shim uses it to replay a DEL
// itself when the daemon is unreachable, so a DEL is never lost.
//
// It imports pkg/delegate, pkg/store and libcni: no k8s.io, no netlink.
package detach

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/plexus-cni/plexus/pkg/delegate"
	"github.com/plexus-cni/plexus/pkg/store"
)

// Detach runs DEL, in reverse order, for every attachment recorded for
// containerID, then removes the record. A missing record means nothing was
// attached: success. If any delegate DEL fails the record is kept (so the
// runtime's retry, or GC, can finish the job) and the joined errors are
// returned. netns is the runtime's; when empty the recorded one is used.
//
// A record that exists but cannot be decoded falls back to libcni's result
// cache, which holds each completed attachment's config and arguments.
func Detach(ctx context.Context, inv *delegate.Invoker, st store.Store, containerID, netns, cniPath string) (*store.Record, error) {
	rec, err := st.Load(containerID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, nil
	case errors.Is(err, store.ErrCorrupt):
		return nil, fromCache(ctx, inv, st, containerID, netns, cniPath, err)
	case err != nil:
		return nil, err
	}
	if netns == "" {
		// The runtime may omit the netns on DEL; the recorded one lets
		// plugins clean inside it if it still exists.
		netns = rec.Netns
	}
	t := delegate.Target{ContainerID: containerID, Netns: netns, CNIPath: cniPath}
	if err := inv.Del(ctx, t, rec.Attachments); err != nil {
		return rec, fmt.Errorf("pod %s container %s: %w", rec.Pod, containerID, err)
	}
	return rec, st.Delete(containerID)
}

func fromCache(ctx context.Context, inv *delegate.Invoker, st store.Store, containerID, netns, cniPath string, cause error) error {
	cached, err := inv.CachedAttachments(containerID)
	if err != nil {
		return errors.Join(cause, fmt.Errorf("read libcni cache: %w", err))
	}
	// Secondary ifnames sort after the default one in practice (eth0 <
	// net1 …); delete in reverse name order.
	sort.Slice(cached, func(i, j int) bool { return cached[i].IfName > cached[j].IfName })
	var errs []error
	for _, a := range cached {
		spec := delegate.Spec{Network: a.Network, IfName: a.IfName, ConfList: a.Config, Args: a.CniArgs, CapabilityArgs: a.CapabilityArgs}
		ns := netns
		if ns == "" {
			ns = a.NetNS
		}
		t := delegate.Target{ContainerID: containerID, Netns: ns, CNIPath: cniPath}
		if err := inv.Del(ctx, t, []delegate.Spec{spec}); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(append([]error{cause}, errs...)...)
	}
	return st.Delete(containerID)
}
