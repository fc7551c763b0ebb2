package devices

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/plexus-cni/plexus/pkg/delegate"
	"github.com/plexus-cni/plexus/pkg/podref"
)

// fakeAttrs is the node's ResourceSlices: device name → attributes.
type fakeAttrs map[string]map[string]string

func (f fakeAttrs) DeviceAttributes(driver, pool, device string) (map[string]string, bool) {
	if driver != "vf.example.com" || pool != "node1" {
		return nil, false
	}
	a, ok := f[device]
	return a, ok
}

const draRes = "example.com/vf-dra"

func draFixture(t *testing.T) (*fixture, *podref.Pod) {
	t.Helper()
	f := newFixture(t)
	cd := func(dev string) delegate.ClaimDevice {
		return delegate.ClaimDevice{Namespace: "ns", Name: "d-vfs-7x", Driver: "vf.example.com", Pool: "node1", Device: dev}
	}
	f.pods.claims = map[string][]delegate.ClaimDevice{"ns/d": {cd("pci-b1"), cd("pci-b0"), cd("gpu0")}}
	f.m.attrs = fakeAttrs{
		"pci-b0": {AttrResourceName: draRes, AttrDeviceID: "0000:00:0b.0"},
		"pci-b1": {AttrResourceName: draRes, AttrPCIBusID: "0000:00:0b.1"}, // the standard attribute serves too
		"gpu0":   {"gpu.example.com/model": "x"},                           // no device ID: not a network device
	}
	return f, &podref.Pod{Namespace: "ns", Name: "d", UID: "uid-d", ResourceClaims: map[string]string{"vfs": "d-vfs-7x", "other": ""}}
}

func draSpec(ifName, resource, claim string) delegate.Spec {
	return delegate.Spec{Network: "ns/dra-net", IfName: ifName, ResourceName: resource, ResourceClaim: claim,
		ConfList: json.RawMessage(`{"cniVersion":"1.0.0","name":"dra-net","plugins":[{"type":"sriov","capabilities":{"deviceID":true}}]}`)}
}

// Multus's convention (the NAD's resourceName matches the devices'
// k8s.cni.cncf.io/resourceName) and Plexus's (the NAD names the pod's
// claim) hand out distinct devices of the pod's claims, sorted, and each
// attachment records the claim device it got.
func TestStageDRADevices(t *testing.T) {
	t.Parallel()
	f, pod := draFixture(t)
	out, err := f.m.Stage(context.Background(), pod, target, []delegate.Spec{draSpec("net1", draRes, ""), draSpec("net2", "", "vfs")})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []struct{ id, dev string }{{"0000:00:0b.0", "pci-b0"}, {"0000:00:0b.1", "pci-b1"}} {
		s := out[i]
		if s.DeviceID != want.id || s.Claim == nil || s.Claim.Device != want.dev || s.Claim.Name != "d-vfs-7x" || !strings.Contains(string(s.ConfList), `"deviceID":"`+want.id+`"`) {
			t.Errorf("%s: deviceID %q claim %+v conf %s; want %s from %s", s.IfName, s.DeviceID, s.Claim, s.ConfList, want.id, want.dev)
		}
	}
}

func TestStageDRAErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		specs []delegate.Spec
		tweak func(*fixture)
		want  []string
	}{
		{"a claim the pod does not have", []delegate.Spec{draSpec("net1", "", "nosuch")}, nil,
			[]string{`pod "ns/d"`, `network "ns/dra-net" (net1)`, `claim nosuch`, "the pod has no resource claim"}},
		{"a claim with no device prepared", []delegate.Spec{draSpec("net1", "", "other")}, nil,
			[]string{`pod "ns/d"`, `claim other`, "no container uses it"}},
		{"not a claim name", []delegate.Spec{draSpec("net1", "", "../x")}, nil,
			[]string{`claim ../x`, "plexus-cni.io/resource-claim"}},
		{"more attachments than devices", []delegate.Spec{draSpec("net1", draRes, ""), draSpec("net2", draRes, ""), draSpec("net3", draRes, "")}, nil,
			[]string{`resource "example.com/vf-dra"`, "more attachments than devices"}},
		{"a device in no ResourceSlice of the node, needed", []delegate.Spec{draSpec("net1", draRes, ""), draSpec("net2", draRes, "")},
			func(f *fixture) { delete(f.m.attrs.(fakeAttrs), "pci-b1") },
			[]string{`pod "ns/d"`, "more attachments than devices", `"pci-b1"`, "ResourceClaim ns/d-vfs-7x", "no ResourceSlice"}},
		{"no DRA on the API server", []delegate.Spec{draSpec("net1", draRes, "")},
			func(f *fixture) { f.m.attrs = nil },
			[]string{"allocated no device of the resource", "resource.k8s.io/v1 is not served"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, pod := draFixture(t)
			if tc.tweak != nil {
				tc.tweak(f)
			}
			_, err := f.m.Stage(context.Background(), pod, target, tc.specs)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// A DRA device that cannot be looked up (another driver's claim, DRA off)
// fails only an ADD that lacks a device for it: a device-plugin network,
// or a DRA network whose devices are resolved, goes ahead.
func TestStageUnresolvedDRADeviceNotNeeded(t *testing.T) {
	t.Parallel()
	f, pod := draFixture(t)
	delete(f.m.attrs.(fakeAttrs), "gpu0") // the GPU's driver publishes no slice here
	f.pods.devs = map[string]Devices{"ns/d": {vfRes: {"vf-d1"}}}
	out, err := f.m.Stage(context.Background(), pod, target, []delegate.Spec{draSpec("net1", vfRes, ""), draSpec("net2", draRes, "")})
	if err != nil {
		t.Fatal(err)
	}
	if out[0].DeviceID != "vf-d1" || out[0].Claim != nil || out[1].DeviceID != "0000:00:0b.0" || out[1].Claim == nil {
		t.Errorf("got %+v / %+v", out[0], out[1])
	}
	f2, pod2 := draFixture(t)
	f2.m.attrs = nil
	f2.pods.devs = map[string]Devices{"ns/d": {vfRes: {"vf-d1"}}}
	if _, err := f2.m.Stage(context.Background(), pod2, target, []delegate.Spec{draSpec("net1", vfRes, "")}); err != nil {
		t.Errorf("a device-plugin network with DRA off failed because of the pod's claims: %v", err)
	}
}
