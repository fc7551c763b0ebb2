package node

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"
)

// theNode is shared by the suite: started by TestMain, stopped after it.
var (
	theNode  *Node
	startErr error
)

func enabled() bool { return os.Getenv("PLEXUS_E2E_NODE") == "1" }

func TestMain(m *testing.M) {
	if !enabled() || os.Geteuid() != 0 {
		os.Exit(m.Run()) // every test skips
	}
	// A signal (Ctrl-C, CI's timeout) still tears the node down.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sigs
		fmt.Fprintln(os.Stderr, "e2e-node: signal: tearing down")
		theNode.Stop()
		os.Exit(1)
	}()
	// go test -timeout panics without running deferred code: tear down a
	// minute before it instead.
	flag.Parse()
	if f := flag.Lookup("test.timeout"); f != nil {
		if d, err := time.ParseDuration(f.Value.String()); err == nil && d > 3*time.Minute {
			time.AfterFunc(d-time.Minute, func() {
				fmt.Fprintln(os.Stderr, "e2e-node: -timeout is near: tearing down")
				theNode.Stop()
				os.Exit(1)
			})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	start := time.Now()
	theNode, startErr = Start(ctx)
	cancel()
	if startErr == nil {
		fmt.Fprintf(os.Stderr, "e2e-node: node up in %s\n", time.Since(start).Round(time.Millisecond))
	}
	code := m.Run()
	if theNode != nil {
		if os.Getenv("PLEXUS_E2E_NODE_KEEP") == "1" {
			fmt.Fprintf(os.Stderr, "e2e-node: PLEXUS_E2E_NODE_KEEP=1: left running in %s (kubeconfig %s); Ctrl-C to tear down\n", theNode.Root, theNode.Cluster.Kubeconfig)
			select {}
		}
		td := time.Now()
		theNode.Stop()
		fmt.Fprintf(os.Stderr, "e2e-node: teardown in %s\n", time.Since(td).Round(time.Millisecond))
		for _, s := range theNode.Stages {
			fmt.Fprintf(os.Stderr, "e2e-node: stage %-60s %s\n", s.Name, s.D.Round(time.Millisecond))
		}
	}
	os.Exit(code)
}

// node returns the running node or skips/fails the test.
func node(t *testing.T) *Node {
	t.Helper()
	switch {
	case !enabled():
		t.Skip("real-node e2e: set PLEXUS_E2E_NODE=1 (make e2e-node)")
	case os.Geteuid() != 0:
		t.Skip("real-node e2e needs root")
	case startErr != nil:
		t.Fatalf("node did not start: %v", startErr)
	}
	return theNode
}

// TestNode runs the phases in order on one node: the primary alone, then
// Plexus deployed from deployments/, then the scenarios.
func TestNode(t *testing.T) {
	n := node(t)
	steps := []struct {
		name string
		f    func(*testing.T, *Node)
	}{
		{"PrimaryOnly", testPrimaryOnly},
		{"DeployPlexus", testDeployPlexus},
		{"Attachments", testAttachments},
		{"Hotplug", testHotplug},
		{"DefaultRoute", testDefaultRoute},
		{"StaticPodWithNetworks", testStaticPodWithNetworks},
		{"NoCredentialsOnHost", testNoCredentialsOnHost},
		{"OrphanSweepCRI", testOrphanSweepCRI},
		{"Devices", testDevices},
		{"DRA", testDRA},
		{"Deployment20", testDeployment20},
		{"DaemonRestart", testDaemonRestart},
		{"ConfigRestored", testConfigRestored},
		{"Upgrade", testUpgrade},
		{"PrimaryPtp", testPrimaryPtp},
		{"PrimaryFlannel", testPrimaryFlannel},
		{"PrimaryCalico", testPrimaryCalico},
		{"PrimaryBack", testPrimaryBack},
		{"Uninstall", testUninstall},
		{"SwitchFromMultus", testSwitchFromMultus},
	}
	// PLEXUS_E2E_NODE_STEPS=DeployPlexus,Devices runs only those steps
	// (a developer's loop; CI runs them all).
	only := map[string]bool{}
	for _, name := range strings.Split(os.Getenv("PLEXUS_E2E_NODE_STEPS"), ",") {
		if name != "" {
			only[name] = true
		}
	}
	deployed := false
	for _, s := range steps {
		if len(only) > 0 && !only[s.name] {
			continue
		}
		// SwitchFromMultus deploys Plexus its own way (Multus's manifest).
		if s.name != "PrimaryOnly" && s.name != "DeployPlexus" && s.name != "SwitchFromMultus" && !deployed {
			t.Run(s.name, func(t *testing.T) { t.Skip("Plexus is not deployed") })
			continue
		}
		ok := t.Run(s.name, func(t *testing.T) {
			// A panic would end the test binary before TestMain tears down.
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("panic: %v\n%s", r, debug.Stack())
				}
			}()
			s.f(t, n)
		})
		if s.name == "DeployPlexus" {
			deployed = ok
		}
		if !ok {
			n.dumpOnFailure(t, s.name)
		}
	}
	for _, l := range n.Latency {
		t.Logf("startup %-40s n=%d p50=%s p99=%s max=%s", l.Name, l.N, l.P50, l.P99, l.Max)
	}
}

// testPrimaryOnly: the node with only the primary CNI config. A plain pod
// runs with eth0 only; the baseline startup latency of a 20-replica
// Deployment is measured here ("without Plexus").
func testPrimaryOnly(t *testing.T, n *Node) {
	ns := n.Namespace(t, "node-primary")
	p := n.Pod(t, ns, "plain", "")
	p = n.WaitRunning(t, ns, p.Name, 60*time.Second)
	links := Links(t, n.SandboxOf(t, p).NetNS)
	if len(links) != 1 || links["eth0"].Name == "" {
		t.Fatalf("plain pod links %v, want eth0 only", links)
	}
	if !strings.HasPrefix(links["eth0"].IPs[0], "10.247.0.") {
		t.Errorf("eth0 %v not from the primary range", links["eth0"].IPs)
	}
	if got := DefaultRoutes(t, n.SandboxOf(t, p).NetNS); len(got) != 1 || got[0] != "via 10.247.0.1 dev eth0" {
		t.Errorf("default routes %v, want via 10.247.0.1 dev eth0", got)
	}
	n.DeletePod(t, ns, p.Name)
	n.measureDeployment(t, ns, "without Plexus (primary only)", "")
}
