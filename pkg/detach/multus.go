package detach

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/plexus-cni/plexus/pkg/atomicfile"
	"github.com/plexus-cni/plexus/pkg/delegate"
)

// A sandbox attached by Multus (before a switch to Plexus) has no Plexus
// record: Multus thick v4 kept its plan in <cniDir>/<containerID>, a JSON
// array of its DelegateNetConf, and gave libcni <cniDir> as the cache
// directory. FromMultus reads that plan so the sandbox's DEL can release
// what Multus attached, the way Multus would have.

// multusDelegate is the part of Multus's DelegateNetConf a DEL needs.
type multusDelegate struct {
	ConfList struct {
		Plugins []json.RawMessage `json:"plugins"`
	} `json:"ConfList"`
	CNINetworkConfigList struct {
		Name       string `json:"Name"`
		CNIVersion string `json:"CNIVersion"`
		Plugins    []struct {
			Bytes []byte `json:"Bytes"`
		} `json:"Plugins"`
	} `json:"CNINetworkConfigList"`
	Name          string   `json:"Name"`
	IfnameRequest string   `json:"ifnameRequest"`
	MacRequest    string   `json:"macRequest"`
	IPRequest     []string `json:"ipRequest"`
	DeviceID      string   `json:"deviceID"`
	Bytes         []byte   `json:"Bytes"`
}

// MultusPlan is a Multus-attached sandbox's delegates, in ADD order.
type MultusPlan struct {
	Path  string // the Multus cache file
	Specs []delegate.Spec
}

// FromMultus reads Multus's plan for containerID from dir (Multus's
// cniDir, as the daemon sees it). ifName is the runtime's CNI_IFNAME (the
// cluster network's); args are the K8S_* CNI_ARGS pairs the runtime gave
// (Multus passed its delegates IgnoreUnknown plus those). nil when Multus
// left no plan for the sandbox.
func FromMultus(dir, containerID, ifName string, args [][2]string) (*MultusPlan, error) {
	if dir == "" || containerID == "" || filepath.Base(containerID) != containerID {
		return nil, nil
	}
	path := filepath.Join(dir, containerID)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var dels []multusDelegate
	if err := json.Unmarshal(data, &dels); err != nil {
		return nil, fmt.Errorf("the delegate cache of Multus %s: %w", path, err)
	}
	plan := &MultusPlan{Path: path}
	delArgs := append([][2]string{{"IgnoreUnknown", "true"}}, args...)
	for i, d := range dels {
		conf, err := d.confList()
		if err != nil {
			return nil, fmt.Errorf("the delegate cache of Multus %s: delegate %d (%s): %w", path, i, d.Name, err)
		}
		s := delegate.Spec{Network: d.Name, IfName: d.IfnameRequest, ConfList: conf, Args: delArgs, Default: i == 0}
		if s.IfName == "" {
			s.IfName = fmt.Sprintf("net%d", i)
			if i == 0 {
				s.IfName = ifName
			}
		}
		caps := map[string]interface{}{}
		if i > 0 && len(d.IPRequest) > 0 {
			caps["ips"] = d.IPRequest
		}
		if i > 0 && d.MacRequest != "" {
			caps["mac"] = d.MacRequest
		}
		if d.DeviceID != "" {
			caps["deviceID"] = d.DeviceID
		}
		if len(caps) > 0 {
			s.CapabilityArgs = caps
		}
		plan.Specs = append(plan.Specs, s)
	}
	return plan, nil
}

// confList is the delegate's config as a conflist: for a conflist, the
// plugins' own bytes (Multus v4.3.0's Bytes drops their plugin-specific
// keys, which made its own DEL leak); else Bytes, a conf or a conflist.
func (d multusDelegate) confList() (json.RawMessage, error) {
	if l := d.CNINetworkConfigList; len(l.Plugins) > 0 {
		plugins := make([]json.RawMessage, len(l.Plugins))
		for i, p := range l.Plugins {
			plugins[i] = p.Bytes
		}
		return json.Marshal(map[string]interface{}{"cniVersion": l.CNIVersion, "name": l.Name, "plugins": plugins})
	}
	if len(d.Bytes) == 0 {
		return nil, errors.New("no config")
	}
	var probe struct {
		CNIVersion string          `json:"cniVersion"`
		Name       string          `json:"name"`
		Plugins    json.RawMessage `json:"plugins"`
	}
	if err := json.Unmarshal(d.Bytes, &probe); err != nil {
		return nil, err
	}
	if probe.Plugins != nil {
		return d.Bytes, nil
	}
	return json.Marshal(map[string]interface{}{"cniVersion": probe.CNIVersion, "name": probe.Name, "plugins": []json.RawMessage{d.Bytes}})
}

// DetachMultus runs the DELs of Multus's plan, in reverse, with libcni's
// cache in Multus's directory (inv's CacheDir), then removes Multus's
// cache file. On a failure the file stays for the runtime's retry.
func DetachMultus(ctx context.Context, inv *delegate.Invoker, plan *MultusPlan, containerID, netns, cniPath string) error {
	t := delegate.Target{ContainerID: containerID, Netns: netns, CNIPath: cniPath}
	if err := inv.Del(ctx, t, plan.Specs); err != nil {
		return fmt.Errorf("container %s (attached by Multus): %w", containerID, err)
	}
	if err := os.Remove(plan.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// multusPlanEntry is what WriteMultusPlan writes per delegate: the fields
// Multus thick v4's DEL reads (DelegateNetConf's JSON names).
type multusPlanEntry struct {
	ConfList struct {
		CNIVersion string            `json:"cniVersion"`
		Name       string            `json:"name"`
		Plugins    []json.RawMessage `json:"plugins"`
	} `json:"ConfList"`
	Name          string   `json:"Name"`
	IfnameRequest string   `json:"ifnameRequest,omitempty"`
	MacRequest    string   `json:"macRequest,omitempty"`
	IPRequest     []string `json:"ipRequest,omitempty"`
	DeviceID      string   `json:"deviceID,omitempty"`
	Bytes         []byte   `json:"Bytes"`
}

// WriteMultusPlan writes specs as Multus thick's plan for containerID in
// dir (<dir>/<containerID>, 0600), so that Multus, should the node be
// switched back to it, tears the sandbox down: every delegate as a
// conflist with its interface name requested explicitly.
func WriteMultusPlan(dir, containerID string, specs []delegate.Spec) error {
	entries := make([]multusPlanEntry, len(specs))
	for i, s := range specs {
		e := &entries[i]
		if err := json.Unmarshal(s.ConfList, &e.ConfList); err != nil {
			return fmt.Errorf("%s (%s): %w", s.Network, s.IfName, err)
		}
		e.Name, e.IfnameRequest, e.DeviceID, e.Bytes = s.Network, s.IfName, s.DeviceID, s.ConfList
		switch ips := s.CapabilityArgs["ips"].(type) {
		case []string:
			e.IPRequest = ips
		case []interface{}: // a record read back from disk
			for _, ip := range ips {
				if str, ok := ip.(string); ok {
					e.IPRequest = append(e.IPRequest, str)
				}
			}
		}
		if mac, ok := s.CapabilityArgs["mac"].(string); ok {
			e.MacRequest = mac
		}
	}
	data, err := json.Marshal(entries)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, containerID), data, 0o600)
}

// MultusPlans lists the container IDs with a plan in Multus's cache dir.
func MultusPlans(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range ents {
		if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}

// RemoveMultusPlan removes what WriteMultusPlan wrote (or Multus did).
func RemoveMultusPlan(dir, containerID string) error {
	if dir == "" || filepath.Base(containerID) != containerID {
		return nil
	}
	if err := os.Remove(filepath.Join(dir, containerID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
