package devices

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"

	"github.com/plexus-cni/plexus/pkg/delegate"
	"github.com/plexus-cni/plexus/pkg/podref"
)

const (
	vfRes       = "example.com/vf"
	containerID = "c0ffee"
	dpInfo      = `{"type":"pci","version":"1.1.0","pci":{"pci-address":"0000:03:02.1","pf-pci-address":"0000:03:00.0"}}`
)

// fakePods is a PodResources that counts calls.
type fakePods struct {
	mu     sync.Mutex
	devs   map[string]Devices                // "ns/name"
	claims map[string][]delegate.ClaimDevice // "ns/name"
	err    error
	calls  int
}

func (f *fakePods) PodDevices(ctx context.Context, namespace, name string) (Allocation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if _, ok := ctx.Deadline(); !ok {
		return Allocation{}, errors.New("no deadline on the kubelet call")
	}
	if f.err != nil {
		return Allocation{}, f.err
	}
	return Allocation{Devices: f.devs[namespace+"/"+name], Claims: f.claims[namespace+"/"+name]}, nil
}

func (f *fakePods) count() int { f.mu.Lock(); defer f.mu.Unlock(); return f.calls }

// clock is a settable now().
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type fixture struct {
	m     *Manager
	pods  *fakePods
	clock *clock
	dir   string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{
		pods:  &fakePods{devs: map[string]Devices{"ns/a": {vfRes: {"vf-a2", "vf-a1"}}, "ns/b": {vfRes: {"vf-b1"}}}},
		clock: &clock{t: time.Unix(1_700_000_000, 0)},
		dir:   t.TempDir(),
	}
	f.m = newManager(Options{PodResourcesSocket: "/kubelet.sock", DeviceInfoDir: f.dir}, slog.New(slog.NewTextHandler(io.Discard, nil)), f.pods, f.clock.now)
	return f
}

func (f *fixture) writeDP(t *testing.T, deviceID, content string) {
	t.Helper()
	p := DPDeviceInfoPath(f.dir, vfRes, deviceID)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func podA() *podref.Pod { return &podref.Pod{Namespace: "ns", Name: "a", UID: "uid-a"} }

var target = delegate.Target{ContainerID: containerID, Netns: "/var/run/netns/x"}

// plan is a pod's resolved attachments: the cluster network, a macvlan
// and n VF attachments of a two-plugin conflist.
func plan(n int) []delegate.Spec {
	specs := []delegate.Spec{
		{Network: "kube-system/cluster", IfName: "eth0", Default: true, ConfList: json.RawMessage(`{"cniVersion":"1.0.0","name":"cluster","plugins":[{"type":"bridge"}]}`)},
		{Network: "ns/mv", IfName: "net1", ConfList: json.RawMessage(`{"cniVersion":"1.0.0","name":"mv","plugins":[{"type":"macvlan"}]}`)},
	}
	for i := 0; i < n; i++ {
		specs = append(specs, delegate.Spec{
			Network: "ns/vf-net", IfName: "net" + string(rune('2'+i)), ResourceName: vfRes,
			ConfList:       json.RawMessage(`{"cniVersion":"1.0.0","name":"vf-net","plugins":[{"type":"sriov","capabilities":{"deviceID":true}},{"type":"tuning","sysctl":{}}]}`),
			CapabilityArgs: map[string]interface{}{"mac": "02:00:00:00:00:0" + string(rune('1'+i))},
		})
	}
	return specs
}

func TestStageWithoutResourcesIsFree(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.pods.err = errors.New("must not be called")
	in := plan(0)
	out, err := f.m.Stage(context.Background(), nil, target, in)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out, in) {
		t.Errorf("specs changed without resources")
	}
	if f.pods.count() != 0 {
		t.Errorf("kubelet asked %d times without resources", f.pods.count())
	}
}

func TestStageAssignsAndStages(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.writeDP(t, "vf-a1", dpInfo) // vf-a2 has no DP file
	in := plan(2)
	inCopy := plan(2)
	out, err := f.m.Stage(context.Background(), podA(), target, in)
	if err != nil {
		t.Fatalf("Stage: %v", err)
	}
	if !reflect.DeepEqual(in, inCopy) {
		t.Errorf("Stage modified its input specs")
	}
	for i := 0; i < 2; i++ {
		if !reflect.DeepEqual(out[i], in[i]) {
			t.Errorf("spec %d without a resource changed: %+v", i, out[i])
		}
	}
	for i, wantID := range map[int]string{2: "vf-a1", 3: "vf-a2"} {
		s := out[i]
		wantFile := filepath.Join(f.dir, "cni", "ns-vf-net-"+containerID+"_"+s.IfName)
		if s.DeviceID != wantID || s.DeviceInfoFile != wantFile {
			t.Errorf("%s: DeviceID %q DeviceInfoFile %q, want %q %q", s.IfName, s.DeviceID, s.DeviceInfoFile, wantID, wantFile)
		}
		wantCaps := map[string]interface{}{"mac": in[i].CapabilityArgs["mac"], "deviceID": wantID, "CNIDeviceInfoFile": wantFile}
		if !reflect.DeepEqual(s.CapabilityArgs, wantCaps) {
			t.Errorf("%s: capability args %v, want %v", s.IfName, s.CapabilityArgs, wantCaps)
		}
		var conf struct {
			Plugins []map[string]interface{} `json:"plugins"`
		}
		if err := json.Unmarshal(s.ConfList, &conf); err != nil {
			t.Fatal(err)
		}
		for j, p := range conf.Plugins {
			if p["deviceID"] != wantID || p["pciBusID"] != wantID {
				t.Errorf("%s plugin %d (%v): deviceID %v pciBusID %v, want %s", s.IfName, j, p["type"], p["deviceID"], p["pciBusID"], wantID)
			}
		}
	}
	// vf-a1's DP file is copied read-only; vf-a2 gets none (a plugin may
	// write it).
	info, err := os.Stat(out[2].DeviceInfoFile)
	if err != nil {
		t.Fatalf("CNI device-info file: %v", err)
	}
	if info.Mode().Perm() != 0o444 {
		t.Errorf("CNI device-info file mode %v, want 0444", info.Mode().Perm())
	}
	if got, _ := os.ReadFile(out[2].DeviceInfoFile); string(got) != dpInfo {
		t.Errorf("CNI device-info file %q, want the DP file's %q", got, dpInfo)
	}
	if _, err := os.Stat(out[3].DeviceInfoFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("device-info file for vf-a2 without a DP file: %v", err)
	}
	di, err := ReadDeviceInfo(out[2])
	if err != nil {
		t.Fatal(err)
	}
	want := &nadv1.DeviceInfo{Type: "pci", Version: "1.1.0", Pci: &nadv1.PciDevice{PciAddress: "0000:03:02.1", PfPciAddress: "0000:03:00.0"}}
	if !reflect.DeepEqual(di, want) {
		t.Errorf("ReadDeviceInfo = %+v, want %+v", di, want)
	}
	if di, err := ReadDeviceInfo(out[3]); di != nil || err != nil {
		t.Errorf("ReadDeviceInfo without a file = %v, %v; want nil, nil", di, err)
	}

	// DEL removes the files; a second DEL finds nothing and is fine. A
	// file the specs do not name (a record rebuilt from libcni's cache)
	// goes with ReleaseSandbox.
	stray := CNIDeviceInfoPath(f.dir, "other/net", target.ContainerID, "net9")
	if err := os.WriteFile(stray, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.m.ReleaseSandbox(context.Background(), target); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stray); err == nil {
		t.Error("ReleaseSandbox left a device-info file named after the sandbox")
	}
	for i := 0; i < 2; i++ {
		if err := f.m.Release(context.Background(), target, out); err != nil {
			t.Fatalf("Release %d: %v", i, err)
		}
	}
	if left, _ := os.ReadDir(filepath.Join(f.dir, "cni")); len(left) != 0 {
		t.Errorf("files left after Release: %v", left)
	}
}

func TestStageShortageLeavesNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.writeDP(t, "vf-a1", dpInfo)
	_, err := f.m.Stage(context.Background(), podA(), target, plan(3))
	var de *Error
	if !errors.As(err, &de) || de.CNICode() != 7 || de.IfName != "net4" {
		t.Fatalf("err = %v, want a code 7 *Error for net4", err)
	}
	for _, part := range []string{`pod "ns/a"`, `network "ns/vf-net" (net4)`, `resource "example.com/vf"`, "more attachments than devices"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q lacks %q", err, part)
		}
	}
	if left, _ := os.ReadDir(filepath.Join(f.dir, "cni")); len(left) != 0 {
		t.Errorf("files left after a failed Stage: %v", left)
	}
}

func TestStageStagingFailureLeavesNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.writeDP(t, "vf-a1", dpInfo)
	f.writeDP(t, "vf-a2", dpInfo)
	// The second attachment's CNI path is a non-empty directory: its
	// stale-file removal and its copy both fail.
	blocker := CNIDeviceInfoPath(f.dir, "ns/vf-net", containerID, "net3")
	if err := os.MkdirAll(filepath.Join(blocker, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := f.m.Stage(context.Background(), podA(), target, plan(2))
	var de *Error
	if !errors.As(err, &de) || de.IfName != "net3" {
		t.Fatalf("err = %v, want an *Error for net3", err)
	}
	if _, err := os.Stat(CNIDeviceInfoPath(f.dir, "ns/vf-net", containerID, "net2")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("net2's device-info file survived the failed Stage: %v", err)
	}
}

func TestStageDPFileProblems(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.writeDP(t, "vf-a1", `{"type":`) // malformed: ignored, not copied
	stale := CNIDeviceInfoPath(f.dir, "ns/vf-net", containerID, "net3")
	if err := os.MkdirAll(filepath.Dir(stale), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stale, []byte(dpInfo), 0o444); err != nil { // left by an earlier attempt
		t.Fatal(err)
	}
	out, err := f.m.Stage(context.Background(), podA(), target, plan(2))
	if err != nil {
		t.Fatalf("Stage: %v", err)
	}
	for _, s := range out[2:] {
		if _, err := os.Stat(s.DeviceInfoFile); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: device-info file present (%v); want none (malformed DP file, stale file removed)", s.IfName, err)
		}
	}
	// A file a plugin wrote badly fails the read, naming the file.
	if err := os.WriteFile(out[2].DeviceInfoFile, []byte("nope"), 0o444); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadDeviceInfo(out[2]); err == nil || !strings.Contains(err.Error(), out[2].DeviceInfoFile) {
		t.Errorf("ReadDeviceInfo of a malformed file: %v", err)
	}
}

func TestStageCache(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	add := func(p *podref.Pod) {
		t.Helper()
		if _, err := f.m.Stage(ctx, p, target, plan(1)); err != nil {
			t.Fatal(err)
		}
	}
	add(podA())
	add(podA()) // a retry within the TTL
	if n := f.pods.count(); n != 1 {
		t.Fatalf("%d kubelet calls for an ADD and its retry, want 1", n)
	}
	add(&podref.Pod{Namespace: "ns", Name: "b", UID: "uid-b"})
	if n := f.pods.count(); n != 2 {
		t.Fatalf("%d kubelet calls after a second pod, want 2", n)
	}
	add(&podref.Pod{Namespace: "ns", Name: "a", UID: "uid-a2"}) // recreated pod
	if n := f.pods.count(); n != 3 {
		t.Fatalf("%d kubelet calls after the pod was recreated, want 3", n)
	}
	f.clock.advance(DefaultCacheTTL)
	add(podA())
	if n := f.pods.count(); n != 4 {
		t.Fatalf("%d kubelet calls after the TTL, want 4", n)
	}
	f.m.mu.Lock()
	entries := len(f.m.cache)
	f.m.mu.Unlock()
	if entries != 1 {
		t.Errorf("%d cache entries after expiry, want 1 (expired ones pruned)", entries)
	}
}

func TestStageKubeletFailure(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.pods.err = ErrPodNotListed
	_, err := f.m.Stage(context.Background(), podA(), target, plan(1))
	var de *Error
	if !errors.As(err, &de) || de.CNICode() != 11 || !errors.Is(err, ErrPodNotListed) || !strings.Contains(err.Error(), "/kubelet.sock") {
		t.Fatalf("err = %v, want a code 11 *Error wrapping the cause and naming the socket", err)
	}
	f.pods.err = nil
	if _, err := f.m.Stage(context.Background(), podA(), target, plan(1)); err != nil {
		t.Fatalf("failures must not be cached: %v", err)
	}
}

func TestStageWithoutPod(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, err := f.m.Stage(context.Background(), nil, target, plan(1))
	var de *Error
	if !errors.As(err, &de) || de.CNICode() != 7 || de.Network != "ns/vf-net" {
		t.Fatalf("err = %v, want a code 7 *Error naming the network", err)
	}
	if f.pods.count() != 0 {
		t.Errorf("kubelet asked without a pod")
	}
}

func TestPaths(t *testing.T) {
	t.Parallel()
	if got, want := DPDeviceInfoPath("/run/devinfo", "intel.com/sriov_netdevice", "0000:03:02.1"), "/run/devinfo/dp/intel.com-sriov_netdevice-0000:03:02.1-device.json"; got != want {
		t.Errorf("DPDeviceInfoPath = %s, want %s", got, want)
	}
	if got, want := CNIDeviceInfoPath("/run/devinfo", "default/sriov-net", "abc123", "net1"), "/run/devinfo/cni/default-sriov-net-abc123_net1"; got != want {
		t.Errorf("CNIDeviceInfoPath = %s, want %s", got, want)
	}
}

func TestStageWithoutDeviceInfoDir(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.m.opts.DeviceInfoDir = ""
	out, err := f.m.Stage(context.Background(), podA(), target, plan(1))
	if err != nil {
		t.Fatal(err)
	}
	s := out[2]
	if s.DeviceID != "vf-a1" || s.DeviceInfoFile != "" {
		t.Errorf("DeviceID %q DeviceInfoFile %q, want vf-a1 and none", s.DeviceID, s.DeviceInfoFile)
	}
	if _, ok := s.CapabilityArgs[CapDeviceInfoFile]; ok || s.CapabilityArgs[CapDeviceID] != "vf-a1" {
		t.Errorf("capability args %v: want deviceID only", s.CapabilityArgs)
	}
}

// Hot-plug: a new device attachment gets an allocated device the pod's
// attachments do not use; with none left it is refused, saying which are
// in use, and nothing is staged.
func TestStageMoreUsesOnlyFreeDevices(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	current, err := f.m.Stage(context.Background(), podA(), target, plan(1)) // net2 takes vf-a1
	if err != nil {
		t.Fatal(err)
	}
	add := plan(2)[3:] // net3
	out, err := f.m.StageMore(context.Background(), podA(), target, current, add)
	if err != nil {
		t.Fatal(err)
	}
	if out[0].DeviceID != "vf-a2" {
		t.Errorf("hot-plugged attachment got %q, want the unused vf-a2", out[0].DeviceID)
	}
	_, err = f.m.StageMore(context.Background(), podA(), target, append(current, out...), plan(3)[4:])
	var de *Error
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "hot-plug needs a device the pod was allocated and does not use yet (in use: vf-a1, vf-a2)") {
		t.Fatalf("err = %v", err)
	}
}
