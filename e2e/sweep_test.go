package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/testutils"

	"github.com/plexus-cni/plexus/internal/testutil"
)

// The orphan sweep tears down exactly the sandboxes whose netns and pod are
// both gone (a record rebuilt from libcni's cache included), and leaves a
// sandbox alone while either still exists.
func TestOrphanSweep(t *testing.T) {
	e := newEnv(t, withConfig("orphanSweepInterval", "300ms"), withConfig("orphanGracePeriod", "0s"))
	e.writeManifest("nad.yaml", nadManifest("default", "mv1", macvlanConf("mv1", "1.0.0", "192.168.10.0/24", e.ipamDir)))
	names := []string{"live", "podgone", "netnsgone", "orphan", "orphancorrupt"}
	var docs []string
	for _, n := range names {
		docs = append(docs, podManifest("default", n, "mv1"))
	}
	e.writeManifest("pods.yaml", strings.Join(docs, "---\n"))
	pods := map[string]*pod{}
	for _, n := range names {
		pods[n] = e.newPod("default", n)
		e.mustAdd(pods[n])
	}
	e.writeRecord(pods["orphancorrupt"], "")
	e.writeManifest("pods.yaml", podManifest("default", "live", "mv1")+"---\n"+podManifest("default", "netnsgone", "mv1"))
	for _, n := range []string{"netnsgone", "orphan", "orphancorrupt"} {
		removeNetns(t, pods[n])
	}
	record := func(p *pod) string { return filepath.Join(e.cniDir, "attachments", p.containerID+".json") }
	testutil.Eventually(t, 10*time.Second, "orphans swept", func() bool {
		_, err1 := os.Stat(record(pods["orphan"]))
		_, err2 := os.Stat(record(pods["orphancorrupt"]))
		return os.IsNotExist(err1) && os.IsNotExist(err2)
	})
	time.Sleep(time.Second) // a few more sweeps
	for _, n := range []string{"live", "podgone", "netnsgone"} {
		if _, err := os.Stat(record(pods[n])); err != nil {
			t.Errorf("sandbox %s touched by the sweep: %v", n, err)
		}
	}
	for _, n := range []string{"live", "podgone"} {
		if _, ok := e.links(pods[n])["net1"]; !ok {
			t.Errorf("sandbox %s lost net1", n)
		}
	}
	if got := len(files(filepath.Join(e.ipamDir, "mv1"))); got != 3 {
		t.Errorf("%d mv1 allocations after the sweep; want 3 (live, podgone, netnsgone)", got)
	}
	if _, err := os.Stat(filepath.Join(e.statusDir, "default", "orphan.json")); err == nil {
		t.Error("the orphan's status file is left")
	}
	if !e.logHas("orphan sweep done") {
		t.Error("no sweep log line")
	}
	for _, n := range []string{"live", "podgone", "netnsgone"} {
		e.mustDel(pods[n])
	}
	e.assertClean()
}

// A record younger than orphanGracePeriod is not taken.
func TestOrphanSweepGrace(t *testing.T) {
	e := newEnv(t, withConfig("orphanSweepInterval", "200ms"), withConfig("orphanGracePeriod", "1h"))
	e.writeManifest("pods.yaml", podManifest("default", "young", ""))
	p := e.newPod("default", "young")
	e.mustAdd(p)
	e.removeManifest("pods.yaml")
	removeNetns(t, p)
	time.Sleep(time.Second)
	if _, err := os.Stat(filepath.Join(e.cniDir, "attachments", p.containerID+".json")); err != nil {
		t.Errorf("a record within its grace period was swept: %v", err)
	}
	e.mustDel(p)
	e.assertClean()
}

// removeNetns deletes the pod's network namespace (as a runtime does after
// the sandbox is gone); the pod keeps its path for CNI_NETNS.
func removeNetns(t *testing.T, p *pod) {
	t.Helper()
	path := p.netns.Path()
	p.netns.Close()
	if err := testutils.UnmountNS(p.netns); err != nil {
		t.Fatal(err)
	}
	p.netns, p.netnsPath = nil, path
}

// The sweep on a node with PLEXUS_SWEEP_RECORDS stale records (default 50;
// the note's figure is from 500) and 2 live ones: how long it takes, and
// that nothing live is touched. The delegates are the recorder, so only
// Plexus's own cost is measured.
func TestOrphanSweepScale(t *testing.T) {
	n := 50
	if v, err := strconv.Atoi(os.Getenv("PLEXUS_SWEEP_RECORDS")); err == nil && v > 0 {
		n = v
	}
	e := newEnv(t, withConfig("orphanSweepInterval", "0s"), withConfig("orphanGracePeriod", "0s"))
	e.writeManifest("00-cluster.yaml", nadManifest("kube-system", "cluster-net", recorderConf("cluster-net", "")))
	var docs []string
	for i := 0; i < n+2; i++ {
		docs = append(docs, podManifest("default", fmt.Sprintf("p%d", i), ""))
	}
	e.writeManifest("pods.yaml", strings.Join(docs, "---\n"))
	gone := filepath.Join(e.dir, "gone-netns")
	var live []*pod
	for i := 0; i < n+2; i++ {
		var p *pod
		if i < 2 {
			p = e.newPod("default", fmt.Sprintf("p%d", i))
			live = append(live, p)
		} else {
			p = newPodIdentity("default", fmt.Sprintf("p%d", i))
			p.netnsPath = filepath.Join(gone, strconv.Itoa(i))
		}
		e.mustAdd(p)
	}
	e.writeManifest("pods.yaml", podManifest("default", "p0", "")+"---\n"+podManifest("default", "p1", ""))
	e.stopDaemon()
	e.extraCfg["orphanSweepInterval"] = "1h" // one sweep: the one at start
	e.writeDaemonConfig("cluster-net")
	start := time.Now()
	e.startDaemon()
	testutil.Eventually(t, 10*time.Second, "sweep", func() bool { return e.logHas("orphan sweep done") })
	t.Logf("sweep of %d stale + 2 live records: daemon log says %s (start to done %s)", n, e.sweepLine(), time.Since(start).Round(time.Millisecond))
	recs := files(filepath.Join(e.cniDir, "attachments"))
	if len(recs) != 2 {
		t.Errorf("%d records after the sweep; want the 2 live ones", len(recs))
	}
	for _, p := range live {
		e.mustDel(p)
	}
	e.assertClean()
}

// sweepLine is the daemon's "orphan sweep done" log line.
func (e *env) sweepLine() string {
	data, _ := os.ReadFile(e.logPath)
	for _, l := range strings.Split(string(data), "\n") {
		if strings.Contains(l, "orphan sweep done") {
			return l
		}
	}
	return ""
}
