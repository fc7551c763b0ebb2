package devices

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/plexus-cni/plexus/pkg/delegate"
	"github.com/plexus-cni/plexus/pkg/netselect"
	"github.com/plexus-cni/plexus/pkg/podref"
)

// Defaults for the zero Options fields.
const (
	// DefaultTimeout bounds the kubelet call (Multus uses 10 s too).
	DefaultTimeout = 10 * time.Second
	// DefaultCacheTTL is how long a pod's devices are reused: long enough
	// for a retried ADD, short enough that a recreated pod is not served
	// its predecessor's devices (the key includes the UID anyway).
	DefaultCacheTTL = 2 * time.Second
)

// Capability keys offered to the delegates (runtimeConfig).
const (
	CapDeviceID       = "deviceID"
	CapDeviceInfoFile = "CNIDeviceInfoFile"
)

// Options locate the kubelet socket and the device-info directory.
type Options struct {
	PodResourcesSocket string
	// DeviceInfoDir is the device-info root (dp/ and cni/ below it); ""
	// turns device-info handling off.
	DeviceInfoDir string
	// Timeout bounds the kubelet call; 0 means DefaultTimeout.
	Timeout time.Duration
	// CacheTTL is how long a pod's devices are reused; 0 means
	// DefaultCacheTTL, negative disables the cache.
	CacheTTL time.Duration
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.CacheTTL == 0 {
		o.CacheTTL = DefaultCacheTTL
	}
	return o
}

// Manager assigns devices to attachments: the daemon's devices step.
type Manager struct {
	opts  Options
	log   *slog.Logger
	pods  PodResources
	attrs DeviceAttributes // nil: no DRA (resource.k8s.io/v1 not served)
	now   func() time.Time
	mu    sync.Mutex
	cache map[string]cached // key: namespace/name/uid
}

type cached struct {
	alloc   Allocation
	expires time.Time
}

// New returns a Manager that asks the kubelet at opts.PodResourcesSocket,
// and looks DRA devices up in attrs (nil: DRA devices are refused).
func New(opts Options, log *slog.Logger, attrs DeviceAttributes) *Manager {
	m := newManager(opts, log, NewKubelet(opts.PodResourcesSocket), time.Now)
	m.attrs = attrs
	return m
}

func newManager(opts Options, log *slog.Logger, pods PodResources, now func() time.Time) *Manager {
	return &Manager{opts: opts.withDefaults(), log: log, pods: pods, now: now, cache: map[string]cached{}}
}

// Stage gives every attachment that names a resource its device (see
// the package documentation). It returns new specs; on error nothing it
// staged is left behind.
func (m *Manager) Stage(ctx context.Context, pod *podref.Pod, t delegate.Target, specs []delegate.Spec) ([]delegate.Spec, error) {
	return m.stage(ctx, pod, t, specs, nil)
}

// StageMore is Stage for attachments hot-plugged into a running pod: the
// devices the pod's current attachments hold are not handed out again, so
// a new device attachment needs an allocated device that is still unused.
func (m *Manager) StageMore(ctx context.Context, pod *podref.Pod, t delegate.Target, current, add []delegate.Spec) ([]delegate.Spec, error) {
	var inUse []string
	for _, s := range current {
		if s.DeviceID != "" {
			inUse = append(inUse, s.DeviceID)
		}
	}
	return m.stage(ctx, pod, t, add, inUse)
}

func (m *Manager) stage(ctx context.Context, pod *podref.Pod, t delegate.Target, specs []delegate.Spec, inUse []string) ([]delegate.Spec, error) {
	if !NeedsDevices(specs) {
		return specs, nil
	}
	if pod == nil {
		s := specs[slices.IndexFunc(specs, func(s delegate.Spec) bool { return resourceKey(s) != "" })]
		return nil, &Error{Network: s.Network, IfName: s.IfName, Resource: resourceKey(s), Code: types.ErrInvalidNetworkConfig,
			Reason: "no K8S_POD_* args: cannot ask the kubelet for the pod's devices"}
	}
	podRef := pod.Namespace + "/" + pod.Name
	alloc, err := m.podAllocation(ctx, pod)
	if err != nil {
		return nil, &Error{Pod: podRef, Reason: "kubelet PodResources API (" + m.opts.PodResourcesSocket + ")", Code: types.ErrTryAgainLater, Err: err}
	}
	devs, origin, unresolved := draDevices(pod, alloc, m.attrs)
	withUnresolved := func(err error) error {
		var de *Error
		if len(unresolved) > 0 && errors.As(err, &de) {
			de.Reason += "; DRA devices of the pod that could not be looked up: " + strings.Join(unresolved, "; ")
		}
		return err
	}
	if err := checkClaims(podRef, pod, specs, devs); err != nil {
		return nil, withUnresolved(err)
	}
	if len(inUse) > 0 {
		free := make(Devices, len(devs))
		for r, ids := range devs {
			free[r] = slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return slices.Contains(inUse, id) })
		}
		devs = free
	}
	ids, err := Assign(podRef, specs, devs)
	if err != nil {
		err = withUnresolved(err)
		if len(inUse) > 0 {
			var de *Error
			if errors.As(err, &de) {
				de.Reason = "hot-plug needs a device the pod was allocated and does not use yet (in use: " + strings.Join(inUse, ", ") + "): " + de.Reason
			}
		}
		return nil, err
	}
	out := slices.Clone(specs)
	var staged []string
	committed := false
	defer func() {
		if !committed {
			m.removeFiles(staged)
		}
	}()
	for i := range out {
		if ids[i] == "" {
			continue
		}
		if err := m.attach(podRef, t.ContainerID, &out[i], ids[i]); err != nil {
			return nil, err
		}
		if cd, ok := origin[ids[i]]; ok {
			out[i].Claim = &cd
		}
		if f := out[i].DeviceInfoFile; f != "" {
			staged = append(staged, f)
		}
	}
	committed = true
	return out, nil
}

// attach gives s the device id and stages its device-info file. A failed
// stage leaves no file of s behind (the copy is atomic).
func (m *Manager) attach(podRef, containerID string, s *delegate.Spec, id string) error {
	fail := func(code uint, reason string, err error) error {
		return &Error{Pod: podRef, Network: s.Network, IfName: s.IfName, Resource: s.ResourceName, Code: code, Reason: reason, Err: err}
	}
	infoFile := ""
	if m.opts.DeviceInfoDir != "" {
		infoFile = CNIDeviceInfoPath(m.opts.DeviceInfoDir, s.Network, containerID, s.IfName)
	}
	if err := withDevice(s, id, infoFile); err != nil {
		return fail(types.ErrInvalidNetworkConfig, "injecting the device ID", err)
	}
	copied := false
	if infoFile != "" {
		var dpErr, err error
		copied, dpErr, err = stageDeviceInfo(m.opts.DeviceInfoDir, *s)
		if dpErr != nil {
			m.log.Warn("ignoring the device plugin's device-info file", "pod", podRef, "network", s.Network, "ifname", s.IfName, "err", dpErr)
		}
		if err != nil {
			return fail(types.ErrInternal, "staging device-info file "+infoFile, err)
		}
	}
	m.log.Debug("device assigned", "pod", podRef, "network", s.Network, "ifname", s.IfName,
		"resource", s.ResourceName, "deviceID", id, "deviceInfoCopied", copied)
	return nil
}

// podAllocation asks the kubelet, through the short per-pod cache.
func (m *Manager) podAllocation(ctx context.Context, pod *podref.Pod) (Allocation, error) {
	key := pod.Namespace + "/" + pod.Name + "/" + pod.UID
	now := m.now()
	m.mu.Lock()
	c, ok := m.cache[key]
	m.mu.Unlock()
	if ok && now.Before(c.expires) {
		return c.alloc, nil
	}
	ctx, cancel := context.WithTimeout(ctx, m.opts.Timeout)
	defer cancel()
	alloc, err := m.pods.PodDevices(ctx, pod.Namespace, pod.Name)
	if err != nil {
		return Allocation{}, err
	}
	if m.opts.CacheTTL > 0 {
		m.mu.Lock()
		for k, e := range m.cache {
			if !now.Before(e.expires) {
				delete(m.cache, k)
			}
		}
		m.cache[key] = cached{alloc: alloc, expires: now.Add(m.opts.CacheTTL)}
		m.mu.Unlock()
	}
	return alloc, nil
}

// withDevice records id in s: top-level "deviceID" and "pciBusID" in every
// plugin of the conflist, and the deviceID and (unless infoFile is "")
// CNIDeviceInfoFile capabilities.
func withDevice(s *delegate.Spec, id, infoFile string) error {
	v, err := json.Marshal(id)
	if err != nil {
		return err
	}
	conf, err := netselect.InjectPluginFields(s.ConfList, map[string]json.RawMessage{"deviceID": v, "pciBusID": v})
	if err != nil {
		return err
	}
	s.ConfList = conf
	caps := maps.Clone(s.CapabilityArgs)
	if caps == nil {
		caps = make(map[string]interface{}, 2)
	}
	caps[CapDeviceID] = id
	if infoFile != "" {
		caps[CapDeviceInfoFile] = infoFile
	}
	s.CapabilityArgs = caps
	s.DeviceID = id
	s.DeviceInfoFile = infoFile
	return nil
}

// removeFiles is the best-effort cleanup of a failed Stage.
func (m *Manager) removeFiles(paths []string) {
	for _, p := range paths {
		if err := removeIfExists(p); err != nil {
			m.log.Warn("remove device-info file after a failed ADD", "file", p, "err", err)
		}
	}
}

// Release removes the attachments' CNI device-info files; missing files
// are fine, other failures are joined.
func (m *Manager) Release(_ context.Context, _ delegate.Target, specs []delegate.Spec) error {
	var errs []error
	for _, s := range specs {
		if s.DeviceInfoFile == "" {
			continue
		}
		if err := removeIfExists(s.DeviceInfoFile); err != nil {
			errs = append(errs, fmt.Errorf("network %q (%s): remove device-info file: %w", s.Network, s.IfName, err))
		}
	}
	return errors.Join(errs...)
}

// ReleaseSandbox removes every CNI device-info file of the sandbox, for a
// DEL whose record cannot name them (rebuilt from libcni's cache, or gone
// after a DEL the shim replayed): the container ID is in every one's name.
func (m *Manager) ReleaseSandbox(_ context.Context, t delegate.Target) error {
	if m.opts.DeviceInfoDir == "" || t.ContainerID == "" {
		return nil
	}
	left, _ := filepath.Glob(CNIDeviceInfoPath(m.opts.DeviceInfoDir, "*", t.ContainerID, "*")) // the pattern is valid
	var errs []error
	for _, p := range left {
		if err := removeIfExists(p); err != nil {
			errs = append(errs, fmt.Errorf("remove device-info file: %w", err))
		}
	}
	return errors.Join(errs...)
}
