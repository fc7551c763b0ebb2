package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	podresourcesv1 "k8s.io/kubelet/pkg/apis/podresources/v1"

	"github.com/plexus-cni/plexus/internal/testutil"
)

var vfPlugin = filepath.Join(root, "bin", "test", "vfplugin")

const (
	vfResource = "example.com/vf"
	// vfDPInfo is what an SR-IOV device plugin writes for vf-a1.
	vfDPInfo = `{"type":"pci","version":"1.1.0","pci":{"pci-address":"0000:03:02.1","pf-pci-address":"0000:03:00.0"}}`
)

// vfPod is a pod whose containers hold devices of vfResource.
func vfPod(name string, perContainer ...[]string) *podresourcesv1.PodResources {
	p := &podresourcesv1.PodResources{Namespace: "default", Name: name}
	for i, ids := range perContainer {
		p.Containers = append(p.Containers, &podresourcesv1.ContainerResources{
			Name:    fmt.Sprintf("c%d", i),
			Devices: []*podresourcesv1.ContainerDevices{{ResourceName: vfResource, DeviceIds: ids}},
		})
	}
	return p
}

func resourceNADManifest(namespace, name, resource, config string) string {
	q, _ := json.Marshal(config)
	return fmt.Sprintf("apiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\nmetadata:\n  name: %s\n  namespace: %s\n"+
		"  annotations:\n    k8s.v1.cni.cncf.io/resourceName: %s\nspec:\n  config: %s\n", name, namespace, resource, q)
}

// linkMAC is the MAC of a link in the host netns.
func (e *env) linkMAC(name string) string {
	e.t.Helper()
	var ls []struct {
		Address string `json:"address"`
	}
	if err := json.Unmarshal([]byte(e.hostIP("-j", "link", "show", "dev", name)), &ls); err != nil || len(ls) != 1 {
		e.t.Fatalf("link %s: %v", name, err)
	}
	return ls[0].Address
}

// Two pods with two VF attachments each: every attachment gets its own
// device, in sorted order, with deviceID/pciBusID injected and the device
// plugin's device-info copied and reported; a third attachment fails
// cleanly; DEL returns the devices; the kubelet is asked once per ADD.
func TestDevices(t *testing.T) {
	kubelet := &testutil.FakeKubelet{Pods: []*podresourcesv1.PodResources{
		vfPod("a", []string{"vf-a2"}, []string{"vf-a1"}), // unsorted, over two containers
		vfPod("b", []string{"vf-b1", "vf-b2"}),
	}}
	devInfoDir := t.TempDir()
	sock := kubelet.Serve(t)
	e := newEnv(t, withConfig("podResourcesSocket", sock), withConfig("deviceInfoDir", devInfoDir))
	if _, err := os.Stat(vfPlugin); err != nil {
		t.Fatalf("%s missing: run `make testbins` first", vfPlugin)
	}

	// The "VFs": macvlan links in the host netns named by device ID.
	vfs := []string{"vf-a1", "vf-a2", "vf-b1", "vf-b2"}
	macs := map[string]string{}
	for _, vf := range vfs {
		e.hostIP("link", "add", vf, "link", "plexus-demo0", "type", "macvlan", "mode", "bridge")
		macs[vf] = e.linkMAC(vf)
	}
	dpFile := filepath.Join(devInfoDir, "dp", "example.com-vf-vf-a1-device.json")
	if err := os.MkdirAll(filepath.Dir(dpFile), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dpFile, []byte(vfDPInfo), 0o644); err != nil {
		t.Fatal(err)
	}
	cniInfo := func(p *pod, ifName string) string {
		return filepath.Join(devInfoDir, "cni", "default-vf-net-"+p.containerID+"_"+ifName)
	}
	e.writeManifest("nad.yaml", resourceNADManifest("default", "vf-net", vfResource,
		`{"cniVersion":"1.0.0","name":"vf-net","type":"vfplugin","capabilities":{"deviceID":true}}`))
	pods := func(aNetworks string) string {
		return podManifest("default", "a", aNetworks) + "---\n" + podManifest("default", "b", "vf-net, vf-net")
	}
	e.writeManifest("pods.yaml", pods("vf-net, vf-net, vf-net"))
	a, b := e.newPod("default", "a"), e.newPod("default", "b")
	hostHas := func(want ...string) {
		t.Helper()
		have := e.hostLinks()
		for _, vf := range vfs {
			if in := slices.Contains(have, vf); in != slices.Contains(want, vf) {
				t.Errorf("host has %s: %v, want %v (host links %v)", vf, in, !in, have)
			}
		}
	}

	t.Run("third attachment: more attachments than devices", func(t *testing.T) {
		t0 := time.Now()
		for try := 0; try < 2; try++ { // the runtime retries
			r := e.add(a)
			if r.err == nil {
				t.Fatalf("ADD with 3 VF attachments and 2 devices succeeded: %s", r)
			}
			if r.err.Code != 7 {
				t.Errorf("code %d, want 7: %s", r.err.Code, r)
			}
			for _, want := range []string{`"default/a"`, `network "default/vf-net" (net3)`, `resource "example.com/vf"`, "more attachments than devices"} {
				if !strings.Contains(r.err.Msg, want) {
					t.Errorf("error %q lacks %q", r.err.Msg, want)
				}
			}
		}
		// Within the daemon's 2 s cache TTL the retry costs no call.
		if g, l := kubelet.Calls(); l != 0 || g != 1 && time.Since(t0) < 2*time.Second || g > 2 {
			t.Errorf("kubelet Get×%d List×%d for an ADD and its retry, want Get×1", g, l)
		}
		if l := e.links(a); len(l) != 1 {
			t.Errorf("pod has interfaces after the failed ADD: %v", keys(l))
		}
		hostHas(vfs...)
		if left := files(filepath.Join(devInfoDir, "cni")); len(left) > 0 {
			t.Errorf("CNI device-info files left: %v", left)
		}
		if left := files(filepath.Join(e.cniDir, "attachments")); len(left) > 0 {
			t.Errorf("attachment records left: %v", left)
		}
	})

	e.writeManifest("pods.yaml", pods("vf-net, vf-net"))
	t.Run("pod a: its two devices in sorted order", func(t *testing.T) {
		// The manifest watcher reloads asynchronously; until then the ADD
		// fails as above and leaves nothing.
		var r cniResult
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			if r = e.add(a); r.err == nil || time.Now().After(deadline) {
				break
			}
		}
		if r.err != nil {
			t.Fatalf("ADD a: %s", r)
		}
		if g, l := kubelet.Calls(); l != 0 || g > 3 {
			t.Errorf("kubelet Get×%d List×%d so far, want at most one Get per cache period", g, l)
		}
		links := e.links(a)
		for ifName, vf := range map[string]string{"net1": "vf-a1", "net2": "vf-a2"} {
			if l, ok := links[ifName]; !ok || l.Address != macs[vf] {
				t.Errorf("pod a %s: %+v, want device %s (mac %s); pod links %v", ifName, l, vf, macs[vf], keys(links))
			}
		}
		hostHas("vf-b1", "vf-b2")

		// vf-a1's device-info is copied, read-only; vf-a2 has none.
		data, err := os.ReadFile(cniInfo(a, "net1"))
		if err != nil || string(data) != vfDPInfo {
			t.Errorf("CNI device-info for net1: %q, %v; want the DP file's content", data, err)
		}
		if fi, err := os.Stat(cniInfo(a, "net1")); err == nil && fi.Mode().Perm() != 0o444 {
			t.Errorf("CNI device-info mode %v, want 0444", fi.Mode().Perm())
		}
		if _, err := os.Stat(cniInfo(a, "net2")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("CNI device-info for net2 (no DP file): %v", err)
		}
		st := e.status(a)
		if len(st) != 3 {
			t.Fatalf("network-status has %d entries, want 3: %v", len(st), st)
		}
		di, _ := st[1]["device-info"].(map[string]interface{})
		pci, _ := di["pci"].(map[string]interface{})
		if st[1]["interface"] != "net1" || di["type"] != "pci" || di["version"] != "1.1.0" || pci["pci-address"] != "0000:03:02.1" {
			t.Errorf("net1 status %v, want device-info pci 1.1.0 0000:03:02.1", st[1])
		}
		if _, ok := st[2]["device-info"]; ok || st[2]["interface"] != "net2" {
			t.Errorf("net2 status %v, want no device-info", st[2])
		}
	})

	t.Run("pod b: its own devices, none shared", func(t *testing.T) {
		g0, _ := kubelet.Calls()
		e.mustAdd(b)
		if g, l := kubelet.Calls(); g != g0+1 || l != 0 {
			t.Errorf("kubelet Get×%d List×%d for pod b's ADD, want one Get", g-g0, l)
		}
		links := e.links(b)
		for ifName, vf := range map[string]string{"net1": "vf-b1", "net2": "vf-b2"} {
			if l, ok := links[ifName]; !ok || l.Address != macs[vf] {
				t.Errorf("pod b %s: %+v, want device %s; pod links %v", ifName, l, vf, keys(links))
			}
		}
		if la := e.links(a); la["net1"].Address != macs["vf-a1"] || la["net2"].Address != macs["vf-a2"] {
			t.Errorf("pod a's devices changed after pod b's ADD: %v", la)
		}
		hostHas()
		for _, s := range e.status(b) {
			if _, ok := s["device-info"]; ok {
				t.Errorf("pod b status has device-info without a DP file: %v", s)
			}
		}
		for _, p := range []*pod{a, b} {
			if r := e.chk(p); r.err != nil {
				t.Errorf("CHECK %s: %s", p.name, r)
			}
		}
	})

	t.Run("DEL returns the devices and removes device-info", func(t *testing.T) {
		e.mustDel(a)
		e.mustDel(b)
		e.mustDel(a) // idempotent
		hostHas(vfs...)
		for _, vf := range vfs {
			if m := e.linkMAC(vf); m != macs[vf] {
				t.Errorf("host %s has mac %s, want its own %s", vf, m, macs[vf])
			}
		}
		for _, p := range []*pod{a, b} {
			if l := e.links(p); len(l) != 1 {
				t.Errorf("pod %s keeps interfaces: %v", p.name, keys(l))
			}
		}
		if left := files(filepath.Join(devInfoDir, "cni")); len(left) > 0 {
			t.Errorf("CNI device-info files left: %v", left)
		}
		if _, err := os.Stat(dpFile); err != nil {
			t.Errorf("the device plugin's file must stay: %v", err)
		}
		for _, vf := range vfs {
			e.hostIP("link", "del", vf)
		}
		e.assertClean()
	})
}

// The kubelet's PodResources socket missing, or a kubelet that never
// answers: the ADD of a pod with a device NAD fails with "try again later"
// naming the socket, within the call's deadline, and leaves nothing.
func TestDevicesKubeletMissingOrHung(t *testing.T) {
	hung := &testutil.FakeKubelet{Mode: testutil.Hangs}
	for _, c := range []struct {
		name, sock string
	}{
		{"missing", filepath.Join(t.TempDir(), "no-kubelet.sock")},
		{"hung", hung.Serve(t)},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, withConfig("podResourcesSocket", c.sock), withConfig("deviceInfoDir", t.TempDir()))
			e.writeManifest("nad.yaml", resourceNADManifest("default", "vf-net", vfResource, `{"cniVersion":"1.0.0","name":"vf-net","type":"vfplugin"}`))
			e.writeManifest("pod.yaml", podManifest("default", "a", "vf-net"))
			a := e.newPod("default", "a")
			start := time.Now()
			r := e.add(a)
			if r.err == nil || r.err.Code != 11 || !strings.Contains(r.err.Msg, c.sock) {
				t.Errorf("ADD: %s; want code 11 naming %s", r, c.sock)
			}
			if d := time.Since(start); d > 30*time.Second {
				t.Errorf("ADD took %s: the kubelet call is not bounded", d)
			}
			if l := e.links(a); len(l) > 1 {
				t.Errorf("pod has %v after the failed ADD", keys(l))
			}
			e.mustDel(a)
			e.assertClean()
		})
	}
}
