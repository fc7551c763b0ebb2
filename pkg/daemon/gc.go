package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/plexus-cni/plexus/pkg/api"
	"github.com/plexus-cni/plexus/pkg/delegate"
	"github.com/plexus-cni/plexus/pkg/detach"
)

// collect implements CNI GC: every recorded sandbox the runtime no longer
// lists is torn down from its record; then each delegate network still in
// use gets GC with exactly the attachments the remaining records hold for
// it. Attachments are grouped by the delegate conflist name, because that
// is libcni's cache key: two NADs sharing a conf name must not GC each
// other's attachments.
func (m *Multiplexer) collect(ctx context.Context, log *slog.Logger, req *api.Request, conf *netConf) error {
	m.gc.Lock()
	defer m.gc.Unlock()
	valid := map[string]bool{}
	for _, a := range append(conf.ValidAttachments, conf.Attachments...) {
		valid[a.ContainerID] = true
	}
	ids, err := m.store.List()
	if err != nil {
		return err
	}
	var errs []error
	byConf := map[string]*gcNetwork{}
	unknown := false
	for _, id := range ids {
		if !valid[id] {
			log.Info("GC: removing stale attachment", "stale", id)
			if err := m.detach(ctx, id, "", req.Path); err != nil {
				errs = append(errs, fmt.Errorf("GC %s: %w", id, err))
			}
			continue
		}
		// A sandbox in the valid list must never lose anything: its
		// attachments come from its record, or from libcni's cache.
		rec, err := detach.Read(m.inv, m.store, id)
		if err != nil {
			// Which networks it uses is unknown: a network GC could take
			// its attachments, so none runs this time.
			log.Error("GC: live sandbox whose attachments cannot be read; skipping the delegate GC", "live", id, "err", err)
			errs = append(errs, err)
			unknown = true
			continue
		}
		for _, s := range rec.Attachments {
			addGCAttachment(byConf, s, id)
		}
	}
	if unknown {
		return errors.Join(errs...)
	}
	for name, n := range byConf {
		if err := m.inv.GC(ctx, req.Path, n.confList, n.valid); err != nil {
			errs = append(errs, fmt.Errorf("GC network %q: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

type gcNetwork struct {
	confList []byte
	valid    []types.GCAttachment
}

func addGCAttachment(byConf map[string]*gcNetwork, s delegate.Spec, containerID string) {
	list, err := delegate.ParseConfList(s.ConfList)
	if err != nil {
		return
	}
	n := byConf[list.Name]
	if n == nil {
		n = &gcNetwork{confList: s.ConfList}
		byConf[list.Name] = n
	}
	n.valid = append(n.valid, types.GCAttachment{ContainerID: containerID, IfName: s.IfName})
}
