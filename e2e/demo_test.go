package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// `make demo` is part of the suite: it applies examples/standalone/ and must
// attach, ping and leave nothing behind.
func TestDemoAndExamples(t *testing.T) {
	requireRoot(t)
	out, err := exec.Command(filepath.Join(root, "hack", "demo.sh")).CombinedOutput()
	if err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out)
	}
	for _, want := range []string{"pod-a eth0 -> pod-b", "pod-a net1 -> pod-b", "pod-a data0 -> pod-b", "files left: 0", "demo done: nothing left"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}
