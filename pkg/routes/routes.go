// Package routes applies the NPWG "default-route" selection (spec
// 4.1.2.1.9) inside the pod's network namespace after the delegates ran.
package routes

import (
	"context"
	"log/slog"

	"github.com/plexus-cni/plexus/pkg/delegate"
	"github.com/plexus-cni/plexus/pkg/netselect"
)

// Fixer moves default routes to the interfaces that asked for them.
type Fixer struct {
	log *slog.Logger
}

// New returns a Fixer.
func New(log *slog.Logger) *Fixer { return &Fixer{log: log} }

// BeforeAdd changes nothing.
func (f *Fixer) BeforeAdd(_ context.Context, _ *netselect.Pod, _ delegate.Target, specs []delegate.Spec) ([]delegate.Spec, error) {
	return specs, nil
}

// AfterAdd is not implemented yet.
func (f *Fixer) AfterAdd(_ context.Context, _ delegate.Target, outcomes []delegate.Outcome) ([]delegate.Outcome, error) {
	return outcomes, nil
}

// Check is not implemented yet.
func (f *Fixer) Check(context.Context, delegate.Target, []delegate.Spec) error { return nil }

// AfterDel has nothing to undo: routes go with the interfaces.
func (f *Fixer) AfterDel(context.Context, delegate.Target, []delegate.Spec) error { return nil }
