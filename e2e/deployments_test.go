package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// The shipped DaemonSet and ConfigMap agree on every path: the daemon's
// own paths are reached through the host-root mount, the paths the shim or
// the plugins share with plexusd are mounted at the same path, the host
// root is mounted with HostToContainer propagation (netns made later), the
// pod shares the host's PID namespace (chrooted plugins read the host's
// /proc), and every mount says why it is there.
func TestShippedMountsMatchConfig(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(root, "deployments", "daemonset.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var ds appsv1.DaemonSet
	if err := yaml.Unmarshal(raw, &ds); err != nil {
		t.Fatal(err)
	}
	cmRaw, err := os.ReadFile(filepath.Join(root, "deployments", "configmap.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	if err := yaml.Unmarshal(cmRaw, &cm); err != nil {
		t.Fatal(err)
	}
	cfg := map[string]any{}
	if err := json.Unmarshal([]byte(cm.Data["plexusd.json"]), &cfg); err != nil {
		t.Fatal(err)
	}
	spec := ds.Spec.Template.Spec
	for _, c := range spec.Containers {
		if c.Name != "plexusd" {
			continue
		}
		if len(c.Ports) != 1 || c.Ports[0].Name != "metrics" || float64(c.Ports[0].ContainerPort) != cfg["metricsPort"] {
			t.Errorf("plexusd ports %+v, want one named metrics on the config's metricsPort %v", c.Ports, cfg["metricsPort"])
		}
	}
	if !spec.HostPID {
		t.Error("hostPID is off: chrooted plugins would name their netns by a pid the host's /proc does not know")
	}
	hostPaths := map[string]string{}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
	}
	var plexusd *corev1.Container
	for i := range spec.Containers {
		if spec.Containers[i].Name == "plexusd" {
			plexusd = &spec.Containers[i]
		}
	}
	if plexusd == nil {
		t.Fatal("no plexusd container")
	}
	mounts := map[string]corev1.VolumeMount{} // by mountPath
	for _, m := range plexusd.VolumeMounts {
		mounts[m.MountPath] = m
	}
	chroot, _ := cfg["chrootDir"].(string)
	m, ok := mounts[chroot]
	switch {
	case chroot == "" || !ok:
		t.Fatalf("chrootDir %q is not a mount of the plexusd container", chroot)
	case hostPaths[m.Name] != "/":
		t.Errorf("chrootDir mount %s is hostPath %q, want /", m.Name, hostPaths[m.Name])
	case m.MountPropagation == nil || *m.MountPropagation != corev1.MountPropagationHostToContainer:
		t.Errorf("chrootDir mount %s has no HostToContainer propagation", m.Name)
	}
	for _, key := range []string{"cniConfigDir", "confDir", "criSocket", "podResourcesSocket"} {
		if p, _ := cfg[key].(string); !strings.HasPrefix(p, chroot+"/") {
			t.Errorf("%s %q is not reached through chrootDir %s", key, p, chroot)
		}
	}
	if b, _ := cfg["binDir"].(string); b != "/opt/cni/bin" {
		t.Errorf("binDir %q, want the host's /opt/cni/bin (a host path under chrootDir)", b)
	}
	for _, key := range []string{"cniDir", "socketDir", "deviceInfoDir"} {
		p, _ := cfg[key].(string)
		m, ok := mounts[p]
		if !ok || hostPaths[m.Name] != p {
			t.Errorf("%s %q: want a hostPath mounted at the same path (shared with the shim or the plugins)", key, p)
		}
	}
	// Every mount of every container (but the config) has a comment
	// right above it saying why.
	lines := strings.Split(string(raw), "\n")
	inMounts, indent := false, 0
	for i, l := range lines {
		trimmed := strings.TrimSpace(l)
		depth := len(l) - len(strings.TrimLeft(l, " "))
		switch {
		case trimmed == "volumeMounts:":
			inMounts, indent = true, depth
			continue
		case inMounts && trimmed != "" && depth <= indent && !strings.HasPrefix(trimmed, "- "):
			inMounts = false
		}
		if inMounts && strings.HasPrefix(trimmed, "- name:") && trimmed != "- name: config" && !strings.HasPrefix(strings.TrimSpace(lines[i-1]), "#") {
			t.Errorf("daemonset.yaml:%d: mount %q has no comment saying why", i+1, strings.TrimPrefix(trimmed, "- name: "))
		}
	}
}
