// Package devices gives attachments whose NAD names a device-plugin
// resource (k8s.v1.cni.cncf.io/resourceName) the device the kubelet
// allocated to the pod, read from the kubelet PodResources API, and
// handles the device-info spec v1.1.0 files.
package devices

import (
	"context"
	"log/slog"

	"github.com/plexus-cni/plexus/pkg/delegate"
	"github.com/plexus-cni/plexus/pkg/netselect"
)

// Options locate the kubelet socket and the device-info directory.
type Options struct {
	PodResourcesSocket string
	DeviceInfoDir      string
}

// Manager assigns devices to attachments.
type Manager struct {
	opts Options
	log  *slog.Logger
}

// New returns a Manager.
func New(opts Options, log *slog.Logger) *Manager { return &Manager{opts: opts, log: log} }

// BeforeAdd is not implemented yet.
func (m *Manager) BeforeAdd(_ context.Context, _ *netselect.Pod, _ delegate.Target, specs []delegate.Spec) ([]delegate.Spec, error) {
	return specs, nil
}

// AfterAdd changes nothing.
func (m *Manager) AfterAdd(_ context.Context, _ delegate.Target, outcomes []delegate.Outcome) ([]delegate.Outcome, error) {
	return outcomes, nil
}

// Check has nothing to verify.
func (m *Manager) Check(context.Context, delegate.Target, []delegate.Spec) error { return nil }

// AfterDel is not implemented yet.
func (m *Manager) AfterDel(context.Context, delegate.Target, []delegate.Spec) error { return nil }
