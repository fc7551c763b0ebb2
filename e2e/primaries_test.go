package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/plexus-cni/plexus/internal/testutil"
)

// primarySamples are the published CNI configs of primaries that cannot
// run here (pkg/cniconf/testdata/primaries, SOURCES.md says where each
// comes from), under the file name each installs.
var primarySamples = map[string]string{
	"antrea.conflist":                  "10-antrea.conflist",
	"aws-vpc-cni.conflist":             "10-aws.conflist",
	"azure-cni-overlay.conflist":       "10-azure.conflist",
	"azure-cni.conflist":               "10-azure.conflist",
	"calico-operator.conflist":         "10-calico.conflist",
	"calico.conflist":                  "10-calico.conflist",
	"canal.conflist":                   "10-canal.conflist",
	"cilium-legacy.conf":               "05-cilium.conf",
	"cilium.conflist":                  "05-cilium.conflist",
	"flannel.conflist":                 "10-flannel.conflist",
	"kopeio.conf":                      "10-kopeio.conf",
	"kube-ovn.conflist":                "01-kube-ovn.conflist",
	"kube-router-hostport.conflist":    "10-kuberouter.conflist",
	"kube-router.conflist":             "10-kuberouter.conflist",
	"kubenet-containerd.conflist":      "10-containerd-net.conflist",
	"lyft-cni-ipvlan-vpc-k8s.conflist": "10-cni-ipvlan-vpc-k8s.conflist",
	"ovn-kubernetes.conf":              "10-ovn-kubernetes.conf",
	"romana.conf":                      "10-romana.conf",
	"weave.conflist":                   "10-weave.conflist",
}

// Each published primary config, as the cluster's only CNI config:
// plexusd layers 00-plexus.conflist over it (the primary's cniVersion, the
// union of its capabilities) and delegates eth0 to it. Every plugin of the
// chain (a recorder standing in under the plugin's name) gets its object
// exactly as published, plus only what the runtime adds (name,
// cniVersion, prevResult, runtimeConfig for the capabilities), on ADD and
// on DEL.
func TestPrimarySamplesLayeredAndDelegated(t *testing.T) {
	samplesDir := filepath.Join(root, "pkg", "cniconf", "testdata", "primaries")
	base := t.TempDir()
	confDir, bin, stdin := filepath.Join(base, "net.d"), filepath.Join(base, "bin"), filepath.Join(base, "stdin")
	for _, d := range []string{confDir, bin, stdin} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	samples := map[string]sample{}
	for file := range primarySamples {
		s := loadSample(t, filepath.Join(samplesDir, file))
		samples[file] = s
		for _, p := range s.plugins {
			if err := copyExecutable(recorder, filepath.Join(bin, p["type"].(string))); err != nil {
				t.Fatal(err)
			}
		}
	}
	if ents, _ := os.ReadDir(samplesDir); len(ents) != len(primarySamples)+2 { // + SOURCES.md, kubenet.conf
		t.Errorf("%s has %d entries; every sample must be in primarySamples (or be kubenet.conf)", samplesDir, len(ents))
	}
	e := newEnv(t, withConfig("cniConfigDir", confDir), withConfig("clusterNetwork", nil), withConfig("binDir", []string{bin, cniBin}), withoutReadyWait())
	ours := filepath.Join(confDir, "00-plexus.conflist")
	names := make([]string, 0, len(samples))
	for f := range samples {
		names = append(names, f)
	}
	sort.Strings(names)
	for i, file := range names {
		s := samples[file]
		t.Run(file, func(t *testing.T) {
			installed := filepath.Join(confDir, primarySamples[file])
			if err := os.WriteFile(installed, s.raw, 0o644); err != nil {
				t.Fatal(err)
			}
			defer func() {
				// Gone before the next: plexusd has no primary (not ready).
				os.Remove(installed)
				testutil.Eventually(t, 10*time.Second, "not ready without a primary", func() bool { code, _ := e.get("/readyz"); return code == 503 })
			}()
			testutil.Eventually(t, 10*time.Second, "ready on "+primarySamples[file], func() bool { code, _ := e.get("/readyz"); return code == 200 })
			gen := waitGenerated(t, ours, s.version, s.caps)
			for _, f := range files(stdin) {
				os.Remove(filepath.Join(stdin, f))
			}
			e.writeManifest("pod.yaml", podManifest("default", fmt.Sprintf("p%d", i), ""))
			p := e.newPod("default", fmt.Sprintf("p%d", i))
			conf := runtimeConfFrom(t, gen)
			if r := e.exec("ADD", p, "eth0", conf); r.err != nil {
				t.Fatalf("ADD: %s", r)
			}
			if r := e.exec("DEL", p, "eth0", conf); r.err != nil {
				t.Fatalf("DEL: %s", r)
			}
			for _, cmd := range []string{"ADD", "DEL"} {
				for _, pl := range s.plugins {
					checkDelegated(t, filepath.Join(stdin, fmt.Sprintf("%s-%s-eth0.json", cmd, pl["type"])), cmd, s, pl)
				}
			}
			e.assertClean()
		})
	}
	// kubenet never wrote a file, and its 0.1.0 is older than any version
	// Plexus speaks: refused with a reason, nothing generated.
	t.Run("kubenet.conf", func(t *testing.T) {
		raw, err := os.ReadFile(filepath.Join(samplesDir, "kubenet.conf"))
		if err != nil {
			t.Fatal(err)
		}
		os.Remove(ours)
		if err := os.WriteFile(filepath.Join(confDir, "10-kubenet.conf"), raw, 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(filepath.Join(confDir, "10-kubenet.conf"))
		testutil.Eventually(t, 10*time.Second, "/readyz naming cniVersion 0.1.0", func() bool {
			code, body := e.get("/readyz")
			return code == 503 && strings.Contains(body, "0.1.0")
		})
		if _, err := os.Stat(ours); err == nil {
			t.Error("generated a config over a 0.1.0 primary")
		}
	})
}

type sample struct {
	raw     []byte
	version string
	caps    []string
	list    bool
	plugins []map[string]any
}

func loadSample(t *testing.T, path string) sample {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	s := sample{raw: raw, version: doc["cniVersion"].(string)}
	if pl, ok := doc["plugins"].([]any); ok {
		s.list = true
		for _, p := range pl {
			s.plugins = append(s.plugins, p.(map[string]any))
		}
	} else {
		s.plugins = []map[string]any{doc}
	}
	caps := map[string]bool{"io.kubernetes.cri.pod-annotations": true}
	for _, p := range s.plugins {
		c, _ := p["capabilities"].(map[string]any)
		for k, v := range c {
			if v == true {
				caps[k] = true
			}
		}
	}
	for k := range caps {
		s.caps = append(s.caps, k)
	}
	sort.Strings(s.caps)
	return s
}

// waitGenerated waits for 00-plexus.conflist with this cniVersion and
// these capabilities, and returns it.
func waitGenerated(t *testing.T, path, version string, caps []string) []byte {
	t.Helper()
	var last []byte
	ok := testutil.Within(10*time.Second, func() bool {
		b, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		last = b
		var g struct {
			CNIVersion string `json:"cniVersion"`
			Plugins    []struct {
				Type         string          `json:"type"`
				Capabilities map[string]bool `json:"capabilities"`
			} `json:"plugins"`
		}
		if json.Unmarshal(b, &g) != nil || len(g.Plugins) != 1 || g.Plugins[0].Type != "plexus" || g.CNIVersion != version {
			return false
		}
		var got []string
		for k, v := range g.Plugins[0].Capabilities {
			if v {
				got = append(got, k)
			}
		}
		sort.Strings(got)
		return reflect.DeepEqual(got, caps)
	})
	if !ok {
		t.Fatalf("generated config never had cniVersion %s and capabilities %v; last:\n%s", version, caps, last)
	}
	return last
}

// runtimeConfFrom is what the runtime hands the plexus plugin of a
// generated conflist.
func runtimeConfFrom(t *testing.T, conflist []byte) []byte {
	t.Helper()
	var l struct {
		CNIVersion string           `json:"cniVersion"`
		Name       string           `json:"name"`
		Plugins    []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal(conflist, &l); err != nil {
		t.Fatal(err)
	}
	p := l.Plugins[0]
	p["name"], p["cniVersion"] = l.Name, l.CNIVersion
	b, _ := json.Marshal(p)
	return b
}

// checkDelegated compares what one plugin of the primary's chain was given
// with its published object: equal but for the keys the runtime sets.
func checkDelegated(t *testing.T, path, cmd string, s sample, want map[string]any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("%s: plugin %v was not called: %v", cmd, want["type"], err)
		return
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if got["cniVersion"] != s.version {
		t.Errorf("%s %v: cniVersion %v, want the primary's %s", cmd, want["type"], got["cniVersion"], s.version)
	}
	// runtimeConfig: what the file had stays; the runtime may add.
	if rc, ok := want["runtimeConfig"].(map[string]any); ok {
		grc, _ := got["runtimeConfig"].(map[string]any)
		for k := range rc {
			if _, ok := grc[k]; !ok {
				t.Errorf("%s %v: runtimeConfig lost %q: %v", cmd, want["type"], k, grc)
			}
		}
	}
	strip := func(m map[string]any) map[string]any {
		out := map[string]any{}
		for k, v := range m {
			switch k {
			case "cniVersion", "prevResult", "runtimeConfig":
				continue
			case "name":
				if s.list {
					continue // a conflist plugin gets the list's name
				}
			}
			out[k] = v
		}
		return out
	}
	if g, w := strip(got), strip(want); !reflect.DeepEqual(g, w) {
		gj, _ := json.Marshal(g)
		wj, _ := json.Marshal(w)
		t.Errorf("%s %v: delegated config differs from the published one\n got %s\nwant %s", cmd, want["type"], gj, wj)
	}
}
