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
			if _, err := m.detach(ctx, id, "", req.Path); err != nil {
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
	// Sandboxes Multus attached before the switch use the same networks:
	// the live ones' attachments are valid too, the others are stale.
	if !m.collectMultus(ctx, log, req, valid, ids, byConf, &errs) {
		unknown = true
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

// collectMultus adds the attachments of live sandboxes that Multus attached
// (a plan in Multus's cache, no Plexus record) to byConf and tears down
// the stale ones. false: a live one's plan is unreadable, so which
// attachments are in use is unknown.
func (m *Multiplexer) collectMultus(ctx context.Context, log *slog.Logger, req *api.Request, valid map[string]bool, records []string, byConf map[string]*gcNetwork, errs *[]error) bool {
	if m.multusInv == nil {
		return true
	}
	ids, err := detach.MultusPlans(m.multusInv.CacheDir)
	if err != nil {
		*errs = append(*errs, err)
		return false
	}
	ours := map[string]bool{}
	for _, id := range records {
		ours[id] = true
	}
	known := true
	for _, id := range ids {
		if ours[id] {
			continue // Plexus's own sandbox (its plan written for Multus)
		}
		plan, err := detach.FromMultus(m.multusInv.CacheDir, id, "eth0", nil)
		switch {
		case err != nil && valid[id]:
			log.Error("GC: live sandbox attached by Multus whose plan cannot be read; skipping the delegate GC", "live", id, "err", err)
			*errs, known = append(*errs, err), false
		case err != nil || plan == nil:
		case valid[id]:
			for _, s := range plan.Specs {
				addGCAttachment(byConf, s, id)
			}
		default:
			log.Info("GC: removing a stale sandbox attached by Multus", "stale", id)
			if err := detach.DetachMultus(ctx, m.multusInv, plan, id, "", req.Path); err != nil {
				*errs = append(*errs, fmt.Errorf("GC %s: %w", id, err))
			}
		}
	}
	return known
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
