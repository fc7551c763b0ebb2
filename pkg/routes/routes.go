package routes

import (
	"context"
	"errors"
	"log/slog"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/plexus-cni/plexus/pkg/delegate"
	"github.com/plexus-cni/plexus/pkg/hostroot"
)

// Fixer moves default routes to the interfaces that asked for them: the
// daemon's routes step (Apply after the delegates, Check on CHECK).
type Fixer struct {
	log *slog.Logger
	// cacheDir is libcni's cache directory; results under
	// <cacheDir>/results are rewritten when rewriteCache is set.
	cacheDir     string
	rewriteCache bool
	// hostRoot is where the host's root is seen (the daemon's chrootDir):
	// netns paths from the runtime are host paths, opened below it.
	hostRoot string
}

// InHostRoot makes f open netns paths below root (the daemon's chrootDir);
// "" opens them as they are.
func (f *Fixer) InHostRoot(root string) *Fixer {
	f.hostRoot = root
	return f
}

func (f *Fixer) netnsPath(p string) string { return hostroot.Path(f.hostRoot, p) }

// New returns a Fixer that does not rewrite libcni's cached results: the
// routes, the returned outcomes and CHECK are right, but the prevResult
// libcni hands the delegates on CHECK and DEL still lists the routes the
// plugins set. Prefer NewWithCache.
func New(log *slog.Logger) *Fixer { return newFixer("", false, log) }

// NewWithCache returns a Fixer that also rewrites libcni's cached results
// under cacheDir, which must be the cache directory the delegates ran with
// (the daemon's cniDir). An empty cacheDir means libcni's default.
func NewWithCache(cacheDir string, log *slog.Logger) *Fixer {
	if cacheDir == "" {
		cacheDir = libcni.CacheDir
	}
	return newFixer(cacheDir, true, log)
}

func newFixer(cacheDir string, rewrite bool, log *slog.Logger) *Fixer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Fixer{log: log, cacheDir: cacheDir, rewriteCache: rewrite}
}

// Apply applies the requested default routes in the pod netns, then
// rewrites the results (returned and cached) to match. Without a request
// it returns outcomes untouched and never enters the netns.
func (f *Fixer) Apply(ctx context.Context, t delegate.Target, outcomes []delegate.Outcome) ([]delegate.Outcome, error) {
	specs := make([]delegate.Spec, len(outcomes))
	for i := range outcomes {
		specs[i] = outcomes[i].Spec
	}
	reqs, err := requests(specs)
	if err != nil {
		return nil, withNetns(err, t.Netns)
	}
	if len(reqs) == 0 {
		return outcomes, nil // the hot path: the netns is not entered
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	err = ns.WithNetNSPath(f.netnsPath(t.Netns), func(ns.NetNS) error {
		for _, r := range reqs {
			if err := apply(r); err != nil {
				return &Error{Netns: t.Netns, IfName: r.IfName, Family: r.Family.String(), Op: "apply", Err: err}
			}
		}
		return nil
	})
	if err != nil {
		return nil, enterErr(err, t.Netns)
	}
	out, err := f.rewriteOutcomes(t, outcomes, reqs)
	if err != nil {
		return nil, err
	}
	for _, r := range reqs {
		f.log.Debug("default route set", "netns", t.Netns, "ifname", r.IfName, "family", r.Family.String(), "gateway", r.GW.String())
	}
	return out, nil
}

// rewriteOutcomes returns a copy of outcomes whose results match reqs, and
// rewrites libcni's cached copy of every result that changed.
func (f *Fixer) rewriteOutcomes(t delegate.Target, outcomes []delegate.Outcome, reqs []request) ([]delegate.Outcome, error) {
	out := make([]delegate.Outcome, len(outcomes))
	for i, o := range outcomes {
		out[i] = o
		res, changed, err := rewriteResult(o.Result, o.Spec.IfName, reqs)
		if err != nil {
			return nil, &Error{Netns: t.Netns, IfName: o.Spec.IfName, Op: "rewrite result of " + o.Spec.Network, Err: err}
		}
		if !changed {
			continue
		}
		out[i].Result = res
		if !f.rewriteCache {
			continue
		}
		list, err := delegate.ParseConfList(o.Spec.ConfList)
		if err != nil {
			return nil, &Error{Netns: t.Netns, IfName: o.Spec.IfName, Op: "rewrite cache of " + o.Spec.Network, Err: err}
		}
		path := delegate.CachePath(f.cacheDir, list.Name, t.ContainerID, o.Spec.IfName)
		if err := rewriteCachedResult(path, res); err != nil {
			return nil, &Error{Netns: t.Netns, IfName: o.Spec.IfName, Op: "rewrite cache of " + o.Spec.Network, Err: err}
		}
	}
	return out, nil
}

// Check verifies, for each family some spec asked a gateway for, that the
// pod netns has exactly one default route of that family and that it goes
// via the requested gateway on the requesting interface.
func (f *Fixer) Check(ctx context.Context, t delegate.Target, specs []delegate.Spec) error {
	reqs, err := requests(specs)
	if err != nil {
		return withNetns(err, t.Netns)
	}
	if len(reqs) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var errs []error
	err = ns.WithNetNSPath(f.netnsPath(t.Netns), func(ns.NetNS) error {
		for _, r := range reqs {
			if err := verify(r); err != nil {
				errs = append(errs, &Error{Netns: t.Netns, IfName: r.IfName, Family: r.Family.String(), Op: "check", Err: err})
			}
		}
		return nil
	})
	if err != nil {
		return enterErr(err, t.Netns)
	}
	return errors.Join(errs...)
}

// withNetns fills in the netns of a request-parsing error.
func withNetns(err error, netns string) error {
	var e *Error
	if errors.As(err, &e) {
		e.Netns = netns
	}
	return err
}

// enterErr names the netns when entering it failed; errors from inside
// the closure already do.
func enterErr(err error, netns string) error {
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return &Error{Netns: netns, Op: "enter netns", Err: err}
}
