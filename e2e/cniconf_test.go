package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plexus-cni/plexus/internal/testutil"
)

// plexusd generates 00-plexus.conflist over the primary CNI config; a
// runtime that reads it reaches the daemon, and the primary is the pod's
// eth0. The file is restored when removed, survives a daemon restart, and
// `plexusd --uninstall` removes it.
func TestGeneratedCNIConfig(t *testing.T) {
	confDir := filepath.Join(t.TempDir(), "net.d")
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, withConfig("cniConfigDir", confDir), withConfig("clusterNetwork", nil), withoutReadyWait())
	ours := filepath.Join(confDir, "00-plexus.conflist")
	if _, err := os.Stat(ours); err == nil {
		t.Fatal("written before there is a primary config")
	}
	if code, body := e.get("/readyz"); code != 503 || !strings.Contains(body, "primary") {
		t.Errorf("/readyz %d %q before the primary exists", code, body)
	}
	if err := os.WriteFile(filepath.Join(confDir, "10-primary.conflist"), []byte(clusterNADConfig(e.ipamDir)), 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "generated config", func() bool { _, err := os.Stat(ours); return err == nil })
	testutil.Eventually(t, 10*time.Second, "daemon ready", func() bool { code, _ := e.get("/readyz"); return code == 200 })

	e.writeManifest("pod.yaml", podManifest("default", "gen", ""))
	p := e.newPod("default", "gen")
	if r := e.exec("ADD", p, "eth0", runtimeConf(t, ours)); r.err != nil {
		t.Fatalf("ADD through the generated config: %s", r)
	}
	if ips := e.links(p)["eth0"].ipv4(); len(ips) != 1 || !strings.HasPrefix(ips[0], "10.88.") {
		t.Errorf("eth0 %v, want the primary's 10.88.x", ips)
	}

	if err := os.Remove(ours); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "restored config", func() bool { _, err := os.Stat(ours); return err == nil })

	e.stopDaemon()
	if _, err := os.Stat(ours); err != nil {
		t.Errorf("daemon stop removed the config: %v", err)
	}
	e.startDaemon()
	if r := e.exec("DEL", p, "eth0", runtimeConf(t, ours)); r.err != nil {
		t.Errorf("DEL: %s", r)
	}
	e.assertClean()
	e.stopDaemon()
	if out, err := exec.Command(daemonBin, "--config", e.cfgPath, "--uninstall").CombinedOutput(); err != nil {
		t.Fatalf("uninstall: %v %s", err, out)
	}
	if _, err := os.Stat(ours); !os.IsNotExist(err) {
		t.Errorf("uninstall left the config: %v", err)
	}
}

// runtimeConf is what containerd hands the first plugin of a conflist:
// the plugin object plus the list's name and cniVersion.
func runtimeConf(t *testing.T, conflist string) []byte {
	t.Helper()
	var deadline = time.Now().Add(5 * time.Second)
	var data []byte
	for time.Now().Before(deadline) {
		var err error
		if data, err = os.ReadFile(conflist); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	var list struct {
		CNIVersion string                   `json:"cniVersion"`
		Name       string                   `json:"name"`
		Plugins    []map[string]interface{} `json:"plugins"`
	}
	if err := json.Unmarshal(data, &list); err != nil || len(list.Plugins) != 1 {
		t.Fatalf("generated config %s: %v", data, err)
	}
	p := list.Plugins[0]
	p["name"], p["cniVersion"] = list.Name, list.CNIVersion
	out, _ := json.Marshal(p)
	return out
}
