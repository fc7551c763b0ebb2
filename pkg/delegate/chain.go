package delegate

import (
	"context"
	"errors"

	"github.com/containernetworking/cni/pkg/types"
)

// Outcome is the result of one delegate ADD.
type Outcome struct {
	Spec   Spec
	Result types.Result
}

// AddOne runs one delegate's ADD. The daemon's delegates step calls it
// for each spec in order, having pushed that spec's DEL onto its undo
// stack first (CNI spec section 4: a failed delegate is deleted too).
func (in *Invoker) AddOne(ctx context.Context, t Target, s Spec) (types.Result, error) {
	return in.add(ctx, t, &s)
}

// RollbackError wraps failures of what undoes an ADD.
type RollbackError struct{ Err error }

func (e *RollbackError) Error() string { return "rollback: " + e.Err.Error() }
func (e *RollbackError) Unwrap() error { return e.Err }

// Del runs DEL for every spec in reverse order, continuing past failures,
// and returns every failure joined (NPWG spec 7.2).
//
// A delegate whose ADD never completed (libcni caches a result only after
// the whole conflist succeeded, and drops it after a successful DEL) cannot
// hold anything its own failed ADD did not already undo: its DEL is still
// tried, but a failure is only logged. Otherwise a typo'd plugin type would
// fail every DEL and keep the pod Terminating forever.
func (in *Invoker) Del(ctx context.Context, t Target, specs []Spec) error {
	var errs []error
	for i := len(specs) - 1; i >= 0; i-- {
		added := in.added(t, &specs[i])
		if err := in.del(ctx, t, &specs[i]); err != nil {
			perr := &PluginError{Network: specs[i].Network, IfName: specs[i].IfName, Op: "DEL", Err: err}
			if !added {
				Logger(ctx).Warn("ignoring the failed DEL of a delegate whose ADD never completed", "network", specs[i].Network, "ifname", specs[i].IfName, "err", perr)
				continue
			}
			errs = append(errs, perr)
		}
	}
	return errors.Join(errs...)
}

// Check runs CHECK for every spec and joins every failure.
func (in *Invoker) Check(ctx context.Context, t Target, specs []Spec) error {
	var errs []error
	for i := range specs {
		if err := in.check(ctx, t, &specs[i]); err != nil {
			errs = append(errs, &PluginError{Network: specs[i].Network, IfName: specs[i].IfName, Op: "CHECK", Err: err})
		}
	}
	return errors.Join(errs...)
}
