package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/plexus-cni/plexus/internal/testutil"
)

// testDaemonRestart: the plexusd pod is deleted while pods are being
// created. No pod may end Running with a subset of its networks; all of
// them finish once the DaemonSet has restarted plexusd.
func testDaemonRestart(t *testing.T, n *Node) {
	ctx := context.Background()
	ns := n.Namespace(t, "node-restart")
	n.attachNADs(t, ns)
	old, err := n.plexusPod(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const pods = 10
	deleteNow := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var createErrs []error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < pods; i++ {
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("r-%d", i), Namespace: ns,
				Annotations: map[string]string{networksKey: "mv-a,mv-b"}}, Spec: podSpec()}
			if _, err := n.Kube.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
				mu.Lock()
				createErrs = append(createErrs, err)
				mu.Unlock()
			}
			if i == 2 {
				close(deleteNow)
			}
			time.Sleep(300 * time.Millisecond)
		}
	}()
	<-deleteNow
	n.keepPlexusLog(old)
	start := time.Now()
	if err := n.Kube.CoreV1().Pods("kube-system").Delete(ctx, old.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete plexusd pod: %v", err)
	}
	fresh := n.waitPlexusReady(t, string(old.UID), 3*time.Minute)
	t.Logf("plexusd pod %s deleted; %s Ready %s later", old.Name, fresh.Name, time.Since(start).Round(time.Millisecond))
	wg.Wait()
	if len(createErrs) > 0 {
		t.Fatalf("create pods: %v", createErrs)
	}
	failedSandboxes := 0
	for i := 0; i < pods; i++ {
		name := fmt.Sprintf("r-%d", i)
		p := n.WaitRunning(t, ns, name, 4*time.Minute)
		_, links := n.CheckStatusMatchesNetns(t, p)
		if got := strings.Join(keys(links), ","); got != "eth0,net1,net2" {
			t.Errorf("%s Running with %s, want eth0,net1,net2", name, got)
		}
		if strings.Contains(n.podEvents(ns, name), "FailedCreatePodSandBox") {
			failedSandboxes++
		}
	}
	t.Logf("%d/%d pods were refused a sandbox while plexusd was away, then retried; all Running with eth0,net1,net2 after %s",
		failedSandboxes, pods, time.Since(start).Round(time.Millisecond))
}

// testConfigRestored: 00-plexus.conflist removed by hand is restored, a
// Warning Event (CNIConfigRestored) on the Node says so, and new pods get
// their networks again.
func testConfigRestored(t *testing.T, n *Node) {
	ctx := context.Background()
	want, err := os.ReadFile(n.generatedPath())
	if err != nil {
		t.Fatal(err)
	}
	removed := time.Now()
	since := removed.Add(-time.Second)
	if err := os.Remove(n.generatedPath()); err != nil {
		t.Fatal(err)
	}
	if err := testutil.WaitFor(ctx, 60*time.Second, func() (bool, string) {
		got, err := os.ReadFile(n.generatedPath())
		return err == nil && string(got) == string(want), fmt.Sprint(err)
	}); err != nil {
		t.Fatalf("%s not restored: %v", n.generatedPath(), err)
	}
	t.Logf("restored %s after removal", time.Since(removed).Round(time.Millisecond))
	var found string
	if err := testutil.WaitFor(ctx, 60*time.Second, func() (bool, string) {
		evs, err := n.Kube.CoreV1().Events("").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=Node,reason=CNIConfigRestored"})
		if err != nil {
			return false, err.Error()
		}
		for _, e := range evs.Items {
			if e.InvolvedObject.Name == nodeName && e.Type == corev1.EventTypeWarning && !e.LastTimestamp.Time.Before(since.Truncate(time.Second)) {
				found = e.Message
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d CNIConfigRestored Events, none new for %s", len(evs.Items), nodeName)
	}); err != nil {
		t.Fatalf("no Warning CNIConfigRestored Event on the Node: %v", err)
	}
	t.Logf("Node Event: Warning CNIConfigRestored %q", found)
	n.waitRuntimeUses(t, "plexus-cni-network")
	ns := n.Namespace(t, "node-restored")
	n.attachNADs(t, ns)
	p := n.Pod(t, ns, "after", "mv-a")
	p = n.WaitRunning(t, ns, p.Name, 90*time.Second)
	if _, links := n.CheckStatusMatchesNetns(t, p); strings.Join(keys(links), ",") != "eth0,net1" {
		t.Errorf("pod after the restore has %v, want eth0,net1", keys(links))
	}
}

// testUpgrade: the image is re-imported under a new tag and the DaemonSet
// rolled. Running pods keep their interfaces; a DEL after the upgrade
// cleans up what the old daemon added.
func testUpgrade(t *testing.T, n *Node) {
	ctx := context.Background()
	ns := n.Namespace(t, "node-upgrade")
	n.attachNADs(t, ns)
	old := n.Pod(t, ns, "old", "mv-a,mv-b")
	old = n.WaitRunning(t, ns, old.Name, 90*time.Second)
	oldSB := n.SandboxOf(t, old)
	before := Links(t, oldSB.NetNS)
	oldDaemon, err := n.plexusPod(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const image = "plexus:upgrade"
	tarball := n.p("images", "plexus-upgrade.tar")
	start := time.Now()
	// New binaries (another version stamp, so another image digest) built
	// with make build's flags.
	bins := n.p("images", "upgrade")
	for bin, pkg := range map[string]string{"plexus": "./cmd/thin-plugin", "plexus-replay": "./cmd/thin-plugin/replay", "plexusd": "./cmd/thick-daemon"} {
		cmd := exec.CommandContext(ctx, goBin(), "build", "-trimpath", "-tags", "grpcnotrace", "-ldflags", "-s -w -X github.com/plexus-cni/plexus/pkg/buildinfo.Version=e2e-upgrade",
			"-o", filepath.Join(bins, bin), pkg)
		cmd.Dir, cmd.Env = n.Repo, append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v: %s", bin, err, out)
		}
	}
	if err := n.BuildImage(ctx, tarball, image, "/usr/bin/plexusd", "", []string{"org.opencontainers.image.version=e2e-upgrade"},
		filepath.Join(bins, "plexus")+":/usr/bin/plexus", filepath.Join(bins, "plexus-replay")+":/usr/bin/plexus-replay",
		filepath.Join(bins, "plexusd")+":/usr/bin/plexusd"); err != nil {
		t.Fatal(err)
	}
	n.keepPlexusLog(oldDaemon)
	if err := n.ImportImage(ctx, tarball); err != nil {
		t.Fatal(err)
	}
	churn := n.churnPods(ns, "roll", "mv-a")
	if _, err := n.Kubectl(ctx, nil, "-n", "kube-system", "set", "image", "daemonset/plexus", "install-shim="+image, "plexusd="+image); err != nil {
		t.Fatal(err)
	}
	if out, err := n.Kubectl(ctx, nil, "-n", "kube-system", "rollout", "status", "daemonset/plexus", "--timeout=3m"); err != nil {
		t.Fatalf("rollout: %v\n%s", err, out)
	}
	fresh := n.waitPlexusReady(t, string(oldDaemon.UID), 2*time.Minute)
	rolled := churn()
	// R15: no ADD may fail because of the roll (the shim retries its
	// connection while the daemon is replaced), and none may start with
	// the primary network alone (the generated config stays on a roll).
	for _, name := range rolled {
		p := n.WaitRunning(t, ns, name, 90*time.Second)
		if links := Links(t, n.SandboxOf(t, p).NetNS); strings.Join(keys(links), ",") != "eth0,net1" {
			t.Errorf("%s started during the roll with %v, want eth0,net1", name, keys(links))
		}
	}
	if ev := n.failedSandboxEvents(t, ns); len(ev) > 0 {
		t.Errorf("%d of %d pods created during the roll had failed sandbox creations: %v", len(ev), len(rolled), ev)
	}
	t.Logf("%d pods created during the roll, none failed", len(rolled))
	if img := fresh.Spec.Containers[0].Image; img != image {
		t.Errorf("plexusd pod %s runs %s, want %s", fresh.Name, img, image)
	}
	// The running daemon's version (plexusd --version's) and the image's
	// version label agree.
	if err := testutil.WaitFor(ctx, 30*time.Second, func() (bool, string) {
		files, _ := filepath.Glob(filepath.Join(n.podLogs(), "kube-system_"+fresh.Name+"_*", "plexusd", "*.log"))
		for _, f := range files {
			if b, _ := os.ReadFile(f); strings.Contains(string(b), `"version":"e2e-upgrade"`) {
				return true, ""
			}
		}
		return false, fmt.Sprintf("no version e2e-upgrade in the plexusd log %v", files)
	}); err != nil {
		t.Error(err)
	}
	st, err := runtimeapi.NewImageServiceClient(n.criConn).ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: image}, Verbose: true})
	if err != nil || !strings.Contains(st.GetInfo()["info"], `"org.opencontainers.image.version":"e2e-upgrade"`) {
		t.Errorf("image %s: version label not e2e-upgrade: %v %.300s", image, err, st.GetInfo()["info"])
	}
	t.Logf("rolled to %s in %s (image build + import + rollout)", image, time.Since(start).Round(time.Millisecond))
	after := Links(t, oldSB.NetNS)
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("running pod's interfaces changed across the upgrade:\nbefore %v\nafter  %v", before, after)
	}
	if !n.RecordIDs()[oldSB.ID] {
		t.Errorf("the old daemon's attachment record %s is gone after the upgrade", oldSB.ID[:12])
	}
	p := n.Pod(t, ns, "new", "mv-a,mv-b")
	p = n.WaitRunning(t, ns, p.Name, 90*time.Second)
	if _, links := n.CheckStatusMatchesNetns(t, p); strings.Join(keys(links), ",") != "eth0,net1,net2" {
		t.Errorf("pod after the upgrade has %v", keys(links))
	}
	ports := len(BridgePorts())
	n.DeletePod(t, ns, old.Name)
	n.checkGone(t, map[string]Sandbox{"old": oldSB}, ports-1)
}

// churnPods creates a pod every half second until the returned stop is
// called; stop returns their names.
func (n *Node) churnPods(ns, prefix, networks string) func() []string {
	done := make(chan struct{})
	names := make(chan []string, 1)
	go func() {
		var out []string
		for i := 0; ; i++ {
			name := fmt.Sprintf("%s-%d", prefix, i)
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: map[string]string{networksKey: networks}}, Spec: podSpec()}
			if _, err := n.Kube.CoreV1().Pods(ns).Create(context.Background(), p, metav1.CreateOptions{}); err == nil {
				out = append(out, name)
			}
			select {
			case <-done:
				names <- out
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	return func() []string { close(done); return <-names }
}

// failedSandboxEvents are the FailedCreatePodSandBox events in ns.
func (n *Node) failedSandboxEvents(t *testing.T, ns string) []string {
	t.Helper()
	evs, err := n.Kube.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "reason=FailedCreatePodSandBox"})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs.Items {
		out = append(out, e.InvolvedObject.Name+": "+e.Message)
	}
	return out
}

// uninstallPod is the one-shot pod of docs/quickstart.md's uninstall: it
// runs `plexusd --uninstall` with the daemon's config on the node, after
// the DaemonSet is gone (a running plexusd would restore the file).
func (n *Node) uninstallPod(image string) *corev1.Pod {
	never := corev1.RestartPolicyNever
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "plexus-uninstall", Namespace: "kube-system"},
		Spec: corev1.PodSpec{
			NodeName: nodeName, HostNetwork: true, RestartPolicy: never,
			Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Containers: []corev1.Container{{
				Name: "uninstall", Image: image, ImagePullPolicy: corev1.PullIfNotPresent,
				Command:      []string{"/usr/bin/plexusd", "--uninstall", "--config", "/etc/plexus/plexusd.json"},
				VolumeMounts: []corev1.VolumeMount{{Name: "config", MountPath: "/etc/plexus"}, {Name: "cni-conf", MountPath: "/hostroot" + n.p("etc/cni")}},
			}},
			Volumes: []corev1.Volume{
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "plexusd-config"}}}},
				{Name: "cni-conf", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: n.p("etc/cni")}}},
			},
		},
	}
}

// testUninstall follows docs/quickstart.md: pods with secondary networks
// deleted first (every attachment record must then be gone), the
// DaemonSet deleted: plexusd, seeing its DaemonSet gone, removes the
// generated config as it stops, and pods get the primary alone again.
// `plexusd --uninstall` (for a plexusd that could not: killed, or no API)
// then finds nothing to remove.
func testUninstall(t *testing.T, n *Node) {
	ctx := context.Background()
	nss, err := n.Kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range nss.Items {
		if strings.HasPrefix(ns.Name, "node-") && ns.Name != "node-primary" {
			if err := n.Kube.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := testutil.WaitFor(ctx, 3*time.Minute, func() (bool, string) {
		nss, err := n.Kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		var left []string
		for _, ns := range nss.Items {
			if strings.HasPrefix(ns.Name, "node-") && ns.Name != "node-primary" {
				left = append(left, ns.Name)
			}
		}
		return len(left) == 0 && len(n.RecordIDs()) == 0, fmt.Sprintf("namespaces %v, %d attachment records", left, len(n.RecordIDs()))
	}); err != nil {
		t.Fatalf("pods with networks not cleaned up: %v", err)
	}
	for f, id := range n.Allocations() {
		if !strings.HasPrefix(f, primaryNet+"/") {
			t.Errorf("secondary IP allocation %s (container %.12s) left after every pod with networks was deleted", f, id)
		}
	}
	ds, err := n.Kube.AppsV1().DaemonSets("kube-system").Get(ctx, "plexus", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	image := ds.Spec.Template.Spec.Containers[0].Image
	if p, err := n.plexusPod(ctx); err == nil {
		n.keepPlexusLog(p)
	}
	deleted := time.Now()
	if _, err := n.Kubectl(ctx, nil, "delete", "-f", n.deployFile("daemonset.yaml"), "--wait=true", "--timeout=2m"); err != nil {
		t.Fatal(err)
	}
	// Gone, not only terminating: a plexusd still running would restore
	// the file the uninstall removes.
	if err := testutil.WaitFor(ctx, 2*time.Minute, func() (bool, string) {
		pods, err := n.Kube.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "app=plexus"})
		if err != nil {
			return false, err.Error()
		}
		return len(pods.Items) == 0, fmt.Sprintf("%d plexus pods", len(pods.Items))
	}); err != nil {
		t.Fatalf("plexusd pod not gone: %v", err)
	}
	if fileExists(n.generatedPath()) {
		t.Fatalf("%s still there after the DaemonSet was deleted: the node would refuse pods", n.generatedPath())
	}
	t.Logf("DaemonSet deleted → plexusd gone and %s removed in %s", filepath.Base(n.generatedPath()), time.Since(deleted).Round(time.Millisecond))
	p, err := n.Kube.CoreV1().Pods("kube-system").Create(ctx, n.uninstallPod(image), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := testutil.WaitFor(ctx, 90*time.Second, func() (bool, string) {
		p, err = n.Kube.CoreV1().Pods("kube-system").Get(ctx, p.Name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return p.Status.Phase == corev1.PodSucceeded, string(p.Status.Phase) + " " + n.podEvents("kube-system", p.Name)
	}); err != nil {
		t.Fatalf("uninstall pod: %v", err)
	}
	if fileExists(n.generatedPath()) {
		t.Fatalf("%s still there after plexusd --uninstall", n.generatedPath())
	}
	n.waitRuntimeUses(t, primaryNet)
	ns := n.Namespace(t, "node-after-uninstall")
	q := n.Pod(t, ns, "plain", "")
	q = n.WaitRunning(t, ns, q.Name, 60*time.Second)
	if _, ok := q.Annotations[statusKey]; ok {
		t.Errorf("pod after uninstall has a network-status: Plexus still in the path")
	}
	if links := Links(t, n.SandboxOf(t, q).NetNS); strings.Join(keys(links), ",") != "eth0" {
		t.Errorf("pod after uninstall has %v", keys(links))
	}
	for _, f := range []string{"configmap.yaml", "rbac.yaml"} {
		if _, err := n.Kubectl(ctx, nil, "delete", "-f", n.deployFile(f)); err != nil {
			t.Error(err)
		}
	}
}

// testNoCredentialsOnHost: unlike Multus (which writes a kubeconfig with
// the daemon's token under /etc/cni/net.d/multus.d), Plexus leaves no
// credential in the host's CNI config or binary dirs: the shim has no API
// access at all.
func testNoCredentialsOnHost(t *testing.T, n *Node) {
	markers := []string{"client-key-data", "client-certificate-data", "PRIVATE KEY", "token:", "\"token\"", "kind: Config"}
	for _, dir := range []string{n.p("etc/cni"), n.binDir()} {
		err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if bytes.HasPrefix(data, []byte("\x7fELF")) {
				return nil // plugin binaries
			}
			for _, m := range markers {
				if bytes.Contains(data, []byte(m)) {
					t.Errorf("%s holds what looks like a credential (%q)", p, m)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// testOrphanSweepCRI: a sandbox the runtime does not have, while its netns
// and its pod still exist (the netns-and-pod rule cannot tell): plexusd's
// orphan sweep, asking containerd over CRI, tears it down from the record.
// The sandbox is attached as containerd would attach it (the shim exec'd
// with the generated config), into a netns the test owns.
func testOrphanSweepCRI(t *testing.T, n *Node) {
	ns := n.Namespace(t, "node-orphan")
	holder := n.WaitRunning(t, ns, n.Pod(t, ns, "holder", "").Name, 90*time.Second)
	// The netns lives where containerd keeps its own, the directory the
	// DaemonSet mounts (with HostToContainer propagation) into plexusd.
	const netnsName = "plexus-e2e-orphan"
	netns := filepath.Join(n.netnsDir(), netnsName)
	if out, err := exec.Command("ip", "netns", "add", netnsName).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", netnsName).Run() })
	if err := os.WriteFile(netns, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(netns) })
	if out, err := exec.Command("mount", "--bind", "/run/netns/"+netnsName, netns).CombinedOutput(); err != nil {
		t.Fatalf("bind the netns: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", netns).Run() })
	id := "0e2e0rphan" + strings.Repeat("0", 54)
	ports := len(BridgePorts())
	cmd := exec.Command(filepath.Join(n.binDir(), "plexus"))
	cmd.Env = []string{"CNI_COMMAND=ADD", "CNI_CONTAINERID=" + id, "CNI_NETNS=" + netns, "CNI_IFNAME=eth0", "CNI_PATH=" + n.binDir(),
		fmt.Sprintf("CNI_ARGS=K8S_POD_NAMESPACE=%s;K8S_POD_NAME=%s;K8S_POD_UID=%s", ns, holder.Name, holder.UID)}
	cmd.Stdin = bytes.NewReader(n.shimStdin(t))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ADD of the sandbox the runtime does not know: %v: %s", err, out)
	}
	if !n.RecordIDs()[id] || len(BridgePorts()) != ports+1 {
		t.Fatalf("the ADD left no record or no bridge port")
	}
	// Older than the grace period, as a sandbox lost long ago would be,
	// once plexusd is done with it (statusWrite async rewrites the record
	// when the network-status is written).
	rec := filepath.Join(n.plexusCNIDir(), "attachments", id+".json")
	testutil.Eventually(t, 30*time.Second, "the record's network-status written", func() bool {
		data, err := os.ReadFile(rec)
		return err == nil && !bytes.Contains(data, []byte(`"statusPending":true`))
	})
	old := time.Now().Add(-10 * time.Minute)
	if err := os.Chtimes(rec, old, old); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	testutil.Eventually(t, 30*time.Second, "the orphan swept", func() bool { return !n.RecordIDs()[id] })
	t.Logf("orphan swept %s after it aged past the grace period", time.Since(start).Round(100*time.Millisecond))
	for file, holderID := range n.Allocations() {
		if holderID == id {
			t.Errorf("IP %s still allocated to the swept sandbox", file)
		}
	}
	if got := len(BridgePorts()); got != ports {
		t.Errorf("bridge ports %d, want %d: the swept sandbox's veth is left", got, ports)
	}
	n.WaitRunning(t, ns, holder.Name, 10*time.Second) // the live pod is untouched
}

// shimStdin is what containerd hands the shim: the generated conflist's
// plugin with the list's name and cniVersion.
func (n *Node) shimStdin(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile(n.generatedPath())
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		CNIVersion string           `json:"cniVersion"`
		Name       string           `json:"name"`
		Plugins    []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal(data, &list); err != nil || len(list.Plugins) == 0 {
		t.Fatalf("%s: %v", n.generatedPath(), err)
	}
	p := list.Plugins[0]
	p["cniVersion"], p["name"] = list.CNIVersion, list.Name
	out, _ := json.Marshal(p)
	return out
}
