package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A typo'd plugin type (or IPAM type) fails the ADD; the delegate never
// added must not fail the DEL, from the daemon or replayed by the shim.
func TestTypoPluginDoesNotBlockDel(t *testing.T) {
	e := newEnv(t)
	typo := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"typo","type":"macvlann","master":"plexus-demo0","ipam":{"type":"host-local","dataDir":%q,"ranges":[[{"subnet":"192.168.30.0/24"}]]}}`, e.ipamDir)
	ipamTypo := `{"cniVersion":"1.0.0","name":"ipamtypo","type":"macvlan","master":"plexus-demo0","ipam":{"type":"host-locall"}}`
	e.writeManifest("nads.yaml", nadManifest("default", "typo", typo)+"---\n"+nadManifest("default", "ipamtypo", ipamTypo))
	e.writeManifest("pods.yaml", podManifest("default", "a", "typo")+"---\n"+podManifest("default", "b", "ipamtypo")+"---\n"+podManifest("default", "c", "typo"))
	for _, name := range []string{"a", "b"} {
		p := e.newPod("default", name)
		if r := e.add(p); r.err == nil {
			t.Fatalf("ADD %s with a typo'd plugin succeeded", name)
		}
		e.mustDel(p)
		e.mustDel(p) // and again
		e.assertClean()
	}
	// The same with the daemon down: the shim's replay.
	c := e.newPod("default", "c")
	if r := e.add(c); r.err == nil {
		t.Fatal("ADD c with a typo'd plugin succeeded")
	}
	e.stopDaemon()
	if r := e.del(c); r.err != nil {
		t.Errorf("DEL replayed by the shim: %s", r)
	}
	e.startDaemon()
	e.assertClean()
}

// A GC whose valid list names every running sandbox takes nothing from
// them, even when their records are unreadable (empty, or from a newer
// version); their DEL then works from libcni's cache.
func TestGCKeepsLiveSandboxesWithUnreadableRecords(t *testing.T) {
	e := newEnv(t)
	e.writeManifest("nad.yaml", nadManifest("default", "mv1", macvlanConf("mv1", "1.1.0", "192.168.10.0/24", e.ipamDir)))
	var docs []string
	for _, n := range []string{"a", "b", "c"} {
		docs = append(docs, podManifest("default", n, "mv1"))
	}
	e.writeManifest("pods.yaml", strings.Join(docs, "---\n"))
	var pods []*pod
	var valid []map[string]string
	for _, n := range []string{"a", "b", "c"} {
		p := e.newPod("default", n)
		e.mustAdd(p)
		pods = append(pods, p)
		valid = append(valid, map[string]string{"containerID": p.containerID, "ifname": "eth0"})
	}
	before := len(files(e.ipamDir))
	e.writeRecord(pods[0], "")
	e.writeRecord(pods[1], `{"version":2,"containerID":"`+pods[1].containerID+`"}`)
	if r := e.exec("GC", nil, "", e.shimConf("1.1.0", map[string]interface{}{"cni.dev/valid-attachments": valid})); r.err != nil {
		t.Logf("GC: %s", r) // an unreadable record may be reported; nothing may be lost
	}
	if after := len(files(e.ipamDir)); after != before {
		t.Errorf("IP allocations %d → %d after a GC that listed every sandbox", before, after)
	}
	for _, p := range pods {
		if _, ok := e.links(p)["net1"]; !ok {
			t.Errorf("pod %s lost net1 to GC", p.name)
		}
	}
	for _, p := range pods {
		e.mustDel(p)
	}
	e.assertClean()
}

// writeRecord overwrites the pod's attachment record with content.
func (e *env) writeRecord(p *pod, content string) {
	e.t.Helper()
	if err := os.WriteFile(filepath.Join(e.cniDir, "attachments", p.containerID+".json"), []byte(content), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// recorderConf is a recorder delegate with extra keys.
func recorderConf(name, extra string) string {
	return fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"type":"recorder"%s}`, name, extra)
}

// pgrep reports whether a process whose command line contains pattern runs.
func pgrep(pattern string) bool {
	return exec.Command("pgrep", "-f", pattern).Run() == nil
}

// A delegate that leaves a child holding its stdout does not hold the ADD
// once it exits; a delegate that hangs is killed at delegateTimeout with
// everything it started, the ADD is rolled back, and nothing is left.
func TestDelegateDeadlines(t *testing.T) {
	e := newEnv(t, withConfig("delegateTimeout", "2s"))
	e.writeManifest("nads.yaml", nadManifest("default", "child", recorderConf("child", `,"childOn":"ADD","childSleep":"31.4159"`))+"---\n"+
		nadManifest("default", "hang", recorderConf("hang", `,"childOn":"ADD","childSleep":"27.1828","hangOn":"ADD"`))+"---\n"+
		nadManifest("default", "mv1", macvlanConf("mv1", "1.0.0", "192.168.10.0/24", e.ipamDir)))
	e.writeManifest("pods.yaml", podManifest("default", "a", "child")+"---\n"+podManifest("default", "b", "mv1,hang"))
	t.Cleanup(func() { _ = exec.Command("pkill", "-f", "sleep (31.4159|27.1828)").Run() })

	a := e.newPod("default", "a")
	start := time.Now()
	e.mustAdd(a)
	// The child sleeps 31 s; the ADD must not have waited for it. (Not a
	// timing assertion on the machine: 31 s is far beyond any load.)
	if d := time.Since(start); d > 25*time.Second {
		t.Errorf("ADD waited %s for the delegate's child", d)
	}
	e.mustDel(a)

	b := e.newPod("default", "b")
	start = time.Now()
	r := e.add(b)
	if r.err == nil || !strings.Contains(r.err.Msg, "deadline") {
		t.Fatalf("ADD with a hanging delegate: %s; want a deadline error", r)
	}
	if d := time.Since(start); d > 60*time.Second {
		t.Errorf("ADD with a hanging delegate took %s", d)
	}
	if pgrep("sleep 27.1828") {
		t.Error("the hanging delegate's child survived the deadline")
	}
	if n := len(e.links(b)); n != 1 {
		t.Errorf("pod b has %d interfaces after the rolled-back ADD", n)
	}
	e.mustDel(b)
	e.assertClean()
}

// The record and one libcni cache entry both unreadable: DEL releases what
// it can, and fails naming the entry instead of reporting success (which
// would leak that network's IP). Once the entry is dealt with, DEL succeeds.
func TestCorruptRecordAndCacheEntry(t *testing.T) {
	e := newEnv(t)
	e.writeManifest("nads.yaml", nadManifest("default", "mv1", macvlanConf("mv1", "1.0.0", "192.168.10.0/24", e.ipamDir))+"---\n"+
		nadManifest("default", "mv2", macvlanConf("mv2", "1.0.0", "192.168.20.0/24", e.ipamDir)))
	e.writeManifest("pods.yaml", podManifest("default", "a", "mv1,mv2"))
	a := e.newPod("default", "a")
	e.mustAdd(a)
	e.writeRecord(a, "{")
	entry := filepath.Join(e.cniDir, "results", "mv2-"+a.containerID+"-net2")
	if err := os.WriteFile(entry, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := e.del(a)
	if r.err == nil || !strings.Contains(r.err.Msg, entry) {
		t.Fatalf("DEL with the record and a cache entry unreadable: %s; want an error naming %s", r, entry)
	}
	if _, ok := e.links(a)["net1"]; ok {
		t.Error("net1 (readable cache entry) not deleted")
	}
	if err := os.Remove(entry); err != nil {
		t.Fatal(err)
	}
	e.mustDel(a)
	if !e.logHas("AttachmentRecordCorrupt") {
		t.Error("the unreadable record was not logged")
	}
	// mv2's allocation is what the unreadable entry held; release it
	// by hand as an operator would.
	_ = os.RemoveAll(filepath.Join(e.ipamDir, "mv2"))
	e.podIP(a, "link", "del", "net2")
	e.stopDaemon()
	e.startDaemon() // the pod of a record that was never readable: its status file goes at start
	e.assertClean()
}

// logHas reports whether the daemon log contains s.
func (e *env) logHas(s string) bool {
	data, _ := os.ReadFile(e.logPath)
	return strings.Contains(string(data), s)
}

// A socket directory owned by another user before plexusd starts is
// replaced (that user could otherwise swap in its own socket).
func TestSocketDirOwnedByAnotherUser(t *testing.T) {
	e := newEnv(t)
	e.stopDaemon()
	dir := filepath.Dir(e.socket)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	planted := filepath.Join(dir, "planted")
	if err := os.WriteFile(planted, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, planted} {
		if err := os.Chown(p, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	e.startDaemon()
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || fi.Mode().Perm() != 0o700 {
		t.Errorf("socket dir owner %d mode %s; want 0 and 0700", st.Uid, fi.Mode().Perm())
	}
	if _, err := os.Stat(planted); err == nil {
		t.Error("the other user's file is still in the socket dir")
	}
	e.writeManifest("pods.yaml", podManifest("default", "a", ""))
	a := e.newPod("default", "a")
	e.mustAdd(a)
	e.mustDel(a)
	e.assertClean()
}

// Temp files a crash left (records, status files; some empty) are swept
// when plexusd starts; a fresh one (a write in progress) is not.
func TestCrashTempFilesSwept(t *testing.T) {
	e := newEnv(t)
	e.writeManifest("pods.yaml", podManifest("default", "a", ""))
	a := e.newPod("default", "a")
	e.mustAdd(a)
	e.stopDaemon()
	old := time.Now().Add(-time.Hour)
	stale := []string{
		filepath.Join(e.cniDir, "attachments", "."+a.containerID+".json.tmp-123"),
		filepath.Join(e.cniDir, "attachments", ".c000999.json.tmp-456"),
		filepath.Join(e.statusDir, "default", ".a.json.tmp-789"),
	}
	for i, p := range stale {
		content := []byte(`{"partial`)
		if i == 1 {
			content = nil // 0-byte
		}
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	fresh := filepath.Join(e.cniDir, "attachments", ".c000998.json.tmp-1")
	if err := os.WriteFile(fresh, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	e.startDaemon()
	for _, p := range stale {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("crash temp file not swept: %s", p)
		}
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("a fresh temp file was swept: %v", err)
	}
	os.Remove(fresh)
	e.mustDel(a)
	e.assertClean()
}

// Manifest mode: a DEL recovered from the cache removes the pod's status
// file; a restart keeps the status file of a running pod whose record is
// unreadable.
func TestStatusFilesAroundUnreadableRecords(t *testing.T) {
	e := newEnv(t)
	e.writeManifest("nad.yaml", nadManifest("default", "mv1", macvlanConf("mv1", "1.0.0", "192.168.10.0/24", e.ipamDir)))
	e.writeManifest("pods.yaml", podManifest("default", "a", "mv1")+"---\n"+podManifest("default", "b", "mv1"))
	a, b := e.newPod("default", "a"), e.newPod("default", "b")
	e.mustAdd(a)
	e.mustAdd(b)
	e.writeRecord(a, "")
	e.writeRecord(b, "")
	e.mustDel(a)
	if _, err := os.Stat(filepath.Join(e.statusDir, "default", "a.json")); err == nil {
		t.Error("status file of a left after its DEL from the cache")
	}
	e.stopDaemon()
	e.startDaemon()
	e.status(b) // fails the test if the file is gone
	e.mustDel(b)
	e.assertClean()
}

// A hung (not dead) daemon: DEL waits for it at most the shim's budget,
// then the replay from the record gets a fresh deadline and succeeds.
func TestHungDaemonDelReplayed(t *testing.T) {
	e := newEnv(t)
	e.writeManifest("nad.yaml", nadManifest("default", "mv1", macvlanConf("mv1", "1.0.0", "192.168.10.0/24", e.ipamDir)))
	e.writeManifest("pods.yaml", podManifest("default", "a", "mv1"))
	a := e.newPod("default", "a")
	e.mustAdd(a)
	if err := e.daemon.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := true
	defer func() {
		if stopped {
			_ = e.daemon.Cmd.Process.Signal(syscall.SIGCONT)
		}
	}()
	// nsenter execs plexusd in place, so the pid is the daemon's.
	r := e.exec("DEL", a, "eth0", e.shimConf("1.0.0", map[string]interface{}{"requestTimeout": "2s"}))
	if r.err != nil {
		t.Fatalf("DEL with a hung daemon: %s", r)
	}
	if !strings.Contains(r.stderr, "done from the attachment record") {
		t.Errorf("shim stderr %q", r.stderr)
	}
	_ = e.daemon.Cmd.Process.Signal(syscall.SIGCONT)
	stopped = false
	if n := len(e.links(a)); n != 1 {
		t.Errorf("pod a has %d interfaces after the replayed DEL", n)
	}
	e.stopDaemon()
	e.startDaemon()
	e.assertClean()
}

// The shim's replay names what it did: nothing, when there is no record.
func TestReplayWithoutRecordSaysSo(t *testing.T) {
	e := newEnv(t)
	e.stopDaemon()
	a := e.newPod("default", "never")
	r := e.del(a)
	if r.err != nil {
		t.Fatalf("DEL: %s", r)
	}
	if strings.Contains(r.stderr, "done from the attachment record") || !strings.Contains(r.stderr, "no attachment record") {
		t.Errorf("shim stderr %q", r.stderr)
	}
}

// A shim installed without plexus-replay beside it (nor in CNI_PATH)
// cannot replay a DEL: the DEL fails with "try again later" naming the
// missing binary, and the record stays for the retry that the daemon, back,
// serves.
func TestReplayNeedsItsBinary(t *testing.T) {
	e := newEnv(t)
	e.writeManifest("nad.yaml", nadManifest("default", "mv1", macvlanConf("mv1", "1.0.0", "192.168.10.0/24", e.ipamDir)))
	e.writeManifest("pods.yaml", podManifest("default", "a", "mv1"))
	a := e.newPod("default", "a")
	e.mustAdd(a)
	alone := filepath.Join(t.TempDir(), "plexus")
	data, err := os.ReadFile(shimBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(alone, data, 0o755); err != nil {
		t.Fatal(err)
	}
	e.stopDaemon()
	r := e.execShim(alone, "DEL", a, "eth0", e.shimConf("1.0.0", nil))
	if r.err == nil || r.err.Code != 11 || !strings.Contains(r.err.Details, "plexus-replay is not installed") {
		t.Fatalf("DEL without plexus-replay: %s; want code 11 naming it", r)
	}
	if n := len(e.links(a)); n != 3 {
		t.Errorf("pod a has %d interfaces after the failed DEL, want them all (3)", n)
	}
	e.startDaemon()
	e.mustDel(a)
	e.assertClean()
}

// During a daemon restart an ADD waits (connectRetry) instead of failing.
func TestAddWaitsForRestartingDaemon(t *testing.T) {
	e := newEnv(t)
	e.writeManifest("pods.yaml", podManifest("default", "a", ""))
	e.stopDaemon()
	a := e.newPod("default", "a")
	done := make(chan cniResult, 1)
	go func() {
		done <- e.exec("ADD", a, "eth0", e.shimConf("1.0.0", map[string]interface{}{"connectRetry": "60s"}))
	}()
	time.Sleep(time.Second)
	e.startDaemon()
	if r := <-done; r.err != nil {
		t.Fatalf("ADD during the restart: %s", r)
	}
	e.mustDel(a)
	e.assertClean()
}
