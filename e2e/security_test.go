package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"
)

// The shipped DaemonSet mounts the CNI bin dir read-only in the daemon
// container (only the init container that installs the shim writes it),
// and declares no port but the metrics one, which the shipped config binds
// to the node's loopback.
func TestDaemonSetShape(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root, "deployments", "daemonset.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var ds appsv1.DaemonSet
	if err := yaml.Unmarshal(data, &ds); err != nil {
		t.Fatal(err)
	}
	binVolume := ""
	for _, v := range ds.Spec.Template.Spec.Volumes {
		if v.HostPath != nil && v.HostPath.Path == "/opt/cni/bin" {
			binVolume = v.Name
		}
	}
	if binVolume == "" {
		t.Fatal("no hostPath volume for /opt/cni/bin")
	}
	cmData, err := os.ReadFile(filepath.Join(root, "deployments", "configmap.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cmData), `"metricsBindAddress": "127.0.0.1"`) {
		t.Error("the shipped config does not bind metrics to loopback")
	}
	for _, c := range ds.Spec.Template.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name != "metrics" {
				t.Errorf("container %s exposes port %v", c.Name, p)
			}
		}
		for _, m := range c.VolumeMounts {
			if m.Name == binVolume && !m.ReadOnly {
				t.Errorf("container %s mounts the CNI bin dir read-write", c.Name)
			}
		}
	}
}

// plexusd listens on no TCP or UDP port by default: its netns (the test's
// host netns, where only it runs) has no listening socket.
func TestNoNetworkListenerByDefault(t *testing.T) {
	e := newEnv(t)
	out, err := exec.Command("nsenter", "--net="+e.host.Path(), "ss", "-Hltun").CombinedOutput()
	if err != nil {
		t.Fatalf("ss: %v: %s", err, out)
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		t.Errorf("listening sockets in plexusd's netns:\n%s", s)
	}
}

// A second ADD for a sandbox already attached, without a DEL between:
// CNI error 4 naming the container, and no second IP or interface.
func TestDuplicateAddRefused(t *testing.T) {
	e := newEnv(t)
	e.writeManifest("nad.yaml", nadManifest("default", "mv1", macvlanConf("mv1", "1.0.0", "192.168.10.0/24", e.ipamDir)))
	e.writeManifest("pods.yaml", podManifest("default", "a", "mv1"))
	a := e.newPod("default", "a")
	e.mustAdd(a)
	ips, links := len(files(e.ipamDir)), len(e.links(a))
	r := e.add(a)
	if r.err == nil || r.err.Code != 4 || !strings.Contains(r.err.Msg, a.containerID) {
		t.Errorf("second ADD: %s; want code 4 naming the container", r)
	}
	if n := len(files(e.ipamDir)); n != ips {
		t.Errorf("IP allocations %d → %d after the refused ADD", ips, n)
	}
	if n := len(e.links(a)); n != links {
		t.Errorf("interfaces %d → %d after the refused ADD", links, n)
	}
	e.mustDel(a)
	e.assertClean()
}
