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
	"github.com/plexus-cni/plexus/pkg/podref"
	"github.com/plexus-cni/plexus/pkg/store"
)

// Detach runs DEL, in reverse order, for every attachment recorded for
// containerID, then removes the record. A missing record means nothing was
// attached: success (nil record). If any delegate DEL fails the record is
// kept (so the runtime's retry, or GC, can finish the job) and the joined
// errors are returned. netns is the runtime's; when empty the recorded one
// is used.
//
// A record that exists but cannot be decoded is rebuilt from libcni's result
// cache, which holds each completed attachment's config and arguments (the
// returned record then has Recovered set). If a cache entry of the
// container is unreadable too, what can be deleted is, and the DEL fails
// naming the files: reporting success would leak what that entry holds.
func Detach(ctx context.Context, inv *delegate.Invoker, st store.Store, containerID, netns, cniPath string) (*store.Record, error) {
	rec, err := st.Load(containerID)
	var partial error
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, nil
	case errors.Is(err, store.ErrCorrupt):
		delegate.Logger(ctx).Error("attachment record unreadable; deleting from libcni's result cache", "reason", "AttachmentRecordCorrupt", "err", err)
		if rec, partial = FromCache(inv, containerID); rec == nil {
			if partial != nil {
				return nil, errors.Join(err, partial)
			}
			// No delegate ADD ever completed: nothing to release.
			return nil, st.Delete(containerID)
		}
		partial = errors.Join(err, partial)
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
		return rec, fmt.Errorf("pod %s container %s: %w", rec.Pod, containerID, errors.Join(err, partial))
	}
	var unreadable *delegate.UnreadableCacheError
	if errors.As(partial, &unreadable) {
		return rec, fmt.Errorf("pod %s container %s: %w", rec.Pod, containerID, partial)
	}
	return rec, st.Delete(containerID)
}

// FromCache rebuilds containerID's record from libcni's result cache: the
// attachments (in ADD order: the default interface's name sorts first in
// practice, eth0 < net1 …) and the pod from their K8S_* args. It returns
// nil when the cache holds nothing for the container, and an error naming
// the entries it could not read along with a record of the others.
func FromCache(inv *delegate.Invoker, containerID string) (*store.Record, error) {
	cached, err := inv.CachedAttachments(containerID)
	if len(cached) == 0 {
		return nil, err
	}
	sort.Slice(cached, func(i, j int) bool { return cached[i].IfName < cached[j].IfName })
	rec := &store.Record{ContainerID: containerID, Recovered: true, Complete: true}
	for _, a := range cached {
		rec.Netns = a.NetNS
		rec.Attachments = append(rec.Attachments, delegate.Spec{Network: a.Network, IfName: a.IfName, ConfList: a.Config, Args: a.CniArgs, CapabilityArgs: a.CapabilityArgs})
		for _, kv := range a.CniArgs {
			switch kv[0] {
			case "K8S_POD_NAMESPACE":
				rec.Pod.Namespace = kv[1]
			case "K8S_POD_NAME":
				rec.Pod.Name = kv[1]
			case "K8S_POD_UID":
				rec.Pod.UID = kv[1]
			}
		}
	}
	return rec, err
}

// Read returns containerID's record or, when it cannot be loaded, the one
// FromCache rebuilds. The error says what is missing: no record at all, or
// cache entries that could not be read (the record then holds the others).
func Read(inv *delegate.Invoker, st store.Store, containerID string) (*store.Record, error) {
	rec, err := st.Load(containerID)
	if err == nil {
		return rec, nil
	}
	cached, cerr := FromCache(inv, containerID)
	if cached == nil {
		return nil, errors.Join(err, cerr)
	}
	return cached, cerr
}

// PodOf is the pod of containerID's sandbox, from its record or, when that
// is unreadable, from libcni's cache; false when neither says.
func PodOf(inv *delegate.Invoker, st store.Store, containerID string) (podref.Ref, bool) {
	rec, _ := Read(inv, st, containerID)
	if rec == nil {
		return podref.Ref{}, false
	}
	return rec.Pod, rec.Pod.Name != ""
}
