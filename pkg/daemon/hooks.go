package daemon

import (
	"context"
	"errors"

	"github.com/plexus-cni/plexus/pkg/delegate"
	"github.com/plexus-cni/plexus/pkg/netselect"
)

// AttachHook adjusts an attachment around the delegate chain: devices
// (device IDs and device-info before ADD) and default routes (after ADD).
// Hooks run in order for ADD and CHECK, and in reverse for DEL.
type AttachHook interface {
	// BeforeAdd may rewrite specs (e.g. inject a device ID into the
	// conflist). It runs before the attachment record is written.
	BeforeAdd(ctx context.Context, pod *netselect.Pod, t delegate.Target, specs []delegate.Spec) ([]delegate.Spec, error)
	// AfterAdd runs once every delegate succeeded; it may adjust the
	// outcomes (e.g. routes moved). An error rolls the ADD back.
	AfterAdd(ctx context.Context, t delegate.Target, outcomes []delegate.Outcome) ([]delegate.Outcome, error)
	// Check verifies what AfterAdd did.
	Check(ctx context.Context, t delegate.Target, specs []delegate.Spec) error
	// AfterDel removes what BeforeAdd staged; it must be idempotent.
	AfterDel(ctx context.Context, t delegate.Target, specs []delegate.Spec) error
}

// beforeAdd runs every hook's BeforeAdd; on failure it returns the specs as
// the hooks before the failing one left them, for AfterDel to undo.
func (m *Multiplexer) beforeAdd(ctx context.Context, pod *netselect.Pod, t delegate.Target, specs []delegate.Spec) ([]delegate.Spec, error) {
	for _, h := range m.hooks {
		next, err := h.BeforeAdd(ctx, pod, t, specs)
		if err != nil {
			return specs, err
		}
		specs = next
	}
	return specs, nil
}

func (m *Multiplexer) afterAdd(ctx context.Context, t delegate.Target, outcomes []delegate.Outcome) ([]delegate.Outcome, error) {
	var err error
	for _, h := range m.hooks {
		if outcomes, err = h.AfterAdd(ctx, t, outcomes); err != nil {
			return nil, err
		}
	}
	return outcomes, nil
}

func (m *Multiplexer) checkHooks(ctx context.Context, t delegate.Target, specs []delegate.Spec) error {
	var errs []error
	for _, h := range m.hooks {
		errs = append(errs, h.Check(ctx, t, specs))
	}
	return errors.Join(errs...)
}

func (m *Multiplexer) afterDel(ctx context.Context, t delegate.Target, specs []delegate.Spec) error {
	var errs []error
	for i := len(m.hooks) - 1; i >= 0; i-- {
		errs = append(errs, m.hooks[i].AfterDel(ctx, t, specs))
	}
	return errors.Join(errs...)
}
