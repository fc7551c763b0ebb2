// Command vfplugin is a CNI plugin for tests that consumes "deviceID" the
// way sriov-cni does: on ADD it moves the link named deviceID from its own
// (the "host") network namespace into the sandbox and renames it to
// CNI_IFNAME; on DEL it renames it back and returns it to the host. Links
// stand in for SR-IOV VFs (the e2e tests use macvlan links named after the
// device IDs).
//
// A device ID that is not a valid link name (a PCI address such as
// 0000:00:0a.0, as a device plugin reports a VF) stands for the link named
// "vf" plus its letters and digits (vf0000000a0), as sysfs would lead from
// a VF's PCI address to its netdev.
//
// It is strict about what the meta-plugin must inject: "deviceID" and
// "pciBusID" (top level, equal), and, when the plugin declares the
// deviceID capability, runtimeConfig.deviceID with the same value. It does
// no IPAM. Links are handled with ip(8) and nsenter(1), to keep netlink out
// of the module for a test binary.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
)

type conf struct {
	types.PluginConf
	DeviceID      string `json:"deviceID"`
	PCIBusID      string `json:"pciBusID"`
	RuntimeConfig struct {
		DeviceID string `json:"deviceID"`
	} `json:"runtimeConfig"`
}

func load(a *skel.CmdArgs) (*conf, error) {
	var c conf
	if err := json.Unmarshal(a.StdinData, &c); err != nil {
		return nil, fmt.Errorf("vfplugin: parse config: %w", err)
	}
	switch {
	case c.IPAM.Type != "":
		return nil, errors.New("vfplugin: IPAM is not supported")
	case c.DeviceID == "":
		return nil, errors.New(`vfplugin: no "deviceID" in the config`)
	case c.PCIBusID != c.DeviceID:
		return nil, fmt.Errorf(`vfplugin: "pciBusID" %q differs from "deviceID" %q`, c.PCIBusID, c.DeviceID)
	case c.Capabilities["deviceID"] && c.RuntimeConfig.DeviceID != c.DeviceID:
		return nil, fmt.Errorf(`vfplugin: runtimeConfig.deviceID %q differs from "deviceID" %q`, c.RuntimeConfig.DeviceID, c.DeviceID)
	}
	return &c, nil
}

// linkName is the host link of a device ID.
func linkName(deviceID string) string {
	if !strings.ContainsAny(deviceID, ":./") {
		return deviceID
	}
	var b strings.Builder
	b.WriteString("vf")
	for _, r := range deviceID {
		if r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func add(a *skel.CmdArgs) error {
	c, err := load(a)
	if err != nil {
		return err
	}
	id := c.DeviceID
	c.DeviceID = linkName(id)
	if a.Netns == "" {
		return errors.New("vfplugin: no CNI_NETNS")
	}
	if ok, err := hasLink("", c.DeviceID); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("vfplugin: device %q (link %s) not found in the host network namespace", id, c.DeviceID)
	}
	if _, err := ip("", "link", "set", "dev", c.DeviceID, "netns", a.Netns); err != nil {
		return err
	}
	committed := false
	defer func() {
		if !committed {
			_ = giveBack(a.Netns, a.IfName, c.DeviceID) // best effort: ADD is failing anyway
		}
	}()
	for _, args := range [][]string{
		{"link", "set", "dev", c.DeviceID, "down"},
		{"link", "set", "dev", c.DeviceID, "name", a.IfName},
		{"link", "set", "dev", a.IfName, "up"},
	} {
		if _, err := ip(a.Netns, args...); err != nil {
			return err
		}
	}
	out, err := ip(a.Netns, "-j", "link", "show", "dev", a.IfName)
	if err != nil {
		return err
	}
	var links []struct {
		Address string `json:"address"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		return fmt.Errorf("vfplugin: reading %s: %w: %s", a.IfName, err, out)
	}
	committed = true
	return types.PrintResult(&current.Result{
		CNIVersion: current.ImplementedSpecVersion,
		Interfaces: []*current.Interface{{Name: a.IfName, Mac: links[0].Address, Sandbox: a.Netns}},
	}, c.CNIVersion)
}

// del returns the device to the host; a missing sandbox or interface means
// there is nothing left to do.
func del(a *skel.CmdArgs) error {
	c, err := load(a)
	if err != nil {
		return err
	}
	if a.Netns == "" {
		return nil
	}
	if _, err := os.Stat(a.Netns); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return giveBack(a.Netns, a.IfName, linkName(c.DeviceID))
}

// giveBack renames ifName in netns to deviceID and moves it to this
// process's network namespace. The device may still carry its own name
// (an ADD that failed before the rename).
func giveBack(netns, ifName, deviceID string) error {
	name := ifName
	if ok, err := hasLink(netns, ifName); err != nil {
		return err
	} else if !ok {
		if ok, err := hasLink(netns, deviceID); err != nil || !ok {
			return err
		}
		name = deviceID
	}
	host := fmt.Sprintf("/proc/%d/ns/net", os.Getpid())
	steps := [][]string{{"link", "set", "dev", name, "down"}}
	if name != deviceID {
		steps = append(steps, []string{"link", "set", "dev", name, "name", deviceID})
	}
	steps = append(steps, []string{"link", "set", "dev", deviceID, "netns", host})
	for _, args := range steps {
		if _, err := ip(netns, args...); err != nil {
			return err
		}
	}
	return nil
}

func check(a *skel.CmdArgs) error {
	if _, err := load(a); err != nil {
		return err
	}
	ok, err := hasLink(a.Netns, a.IfName)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("vfplugin: %s missing in %s", a.IfName, a.Netns)
	}
	return nil
}

// hasLink reports whether netns ("" = this one) has a link named name.
func hasLink(netns, name string) (bool, error) {
	out, err := ip(netns, "-j", "link", "show")
	if err != nil {
		return false, err
	}
	var links []struct {
		IfName string `json:"ifname"`
	}
	if err := json.Unmarshal(out, &links); err != nil {
		return false, fmt.Errorf("vfplugin: parse ip -j link: %w", err)
	}
	for _, l := range links {
		if l.IfName == name {
			return true, nil
		}
	}
	return false, nil
}

// ip runs ip(8) in netns ("" = this process's), returning stdout.
func ip(netns string, args ...string) ([]byte, error) {
	name, argv := "ip", args
	if netns != "" {
		name, argv = "nsenter", append([]string{"--net=" + netns, "ip"}, args...)
	}
	cmd := exec.Command(lookPath(name), argv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("vfplugin: %s %s: %w: %s", name, strings.Join(argv, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.Bytes(), nil
}

// lookPath finds a tool even when the runtime gives the plugin no PATH.
func lookPath(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		if _, err := os.Stat(dir + "/" + name); err == nil {
			return dir + "/" + name
		}
	}
	return name
}

func main() {
	skel.PluginMainFuncs(skel.CNIFuncs{
		Add:    add,
		Del:    del,
		Check:  check,
		Status: func(*skel.CmdArgs) error { return nil },
		GC:     func(*skel.CmdArgs) error { return nil },
	}, version.All, "vfplugin test plugin")
}
