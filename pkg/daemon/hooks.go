package daemon

import (
	"context"

	"github.com/plexus-cni/plexus/pkg/delegate"
	"github.com/plexus-cni/plexus/pkg/podref"
)

// Devices is the devices step (pkg/devices): before the delegates run it
// puts the devices the kubelet allocated into the plan and stages their
// device-info files; Release removes those files (DEL, undo).
type Devices interface {
	Stage(ctx context.Context, pod *podref.Pod, t delegate.Target, specs []delegate.Spec) ([]delegate.Spec, error)
	// StageMore is Stage for attachments hot-plugged into a running pod
	// whose attachments are current: their devices are not handed out.
	StageMore(ctx context.Context, pod *podref.Pod, t delegate.Target, current, add []delegate.Spec) ([]delegate.Spec, error)
	Release(ctx context.Context, t delegate.Target, specs []delegate.Spec) error
	// ReleaseSandbox removes every device-info file of the sandbox, for a
	// DEL whose record does not name them.
	ReleaseSandbox(ctx context.Context, t delegate.Target) error
}

// Routes is the routes step (pkg/routes): after the delegates it moves the
// default routes to the interfaces that asked for them; Check verifies
// that on CHECK.
type Routes interface {
	Apply(ctx context.Context, t delegate.Target, outcomes []delegate.Outcome) ([]delegate.Outcome, error)
	Check(ctx context.Context, t delegate.Target, specs []delegate.Spec) error
}
