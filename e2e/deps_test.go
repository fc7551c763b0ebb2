package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

// The dependency rules of the package layout, checked with go list -deps so
// they cannot rot (STYLE.md §1).
func TestDependencyRules(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	deps := func(pkg, tags string) []string {
		t.Helper()
		cmd := exec.Command(goBin, "list", "-tags="+tags, "-deps", pkg)
		cmd.Dir = root
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		return strings.Fields(string(out))
	}
	const mod = "github.com/plexus-cni/plexus/"
	rules := []struct {
		pkg       string
		forbidden []string
		onlyOwn   []string // if set, the only module packages allowed
	}{
		// The shim is exec'd for every CNI call: every package it links
		// costs its start-up, so it links no CNI library, no net, no
		// reflection-based JSON and no fmt ("$" marks an exact path).
		{"./cmd/thin-plugin", []string{"k8s.io/", "github.com/plexus-cni/plexus/pkg/api$", "github.com/containernetworking/", "sigs.k8s.io/", "golang.org/", "net$", "net/", "os/exec$", "encoding/json$", "fmt$", "reflect$", "regexp$", "log$", "log/"},
			[]string{"cmd/thin-plugin", "pkg/shim", "pkg/api/wire", "pkg/buildinfo"}},
		// plexus-replay, which the shim execs when the daemon is away for a DEL.
		{"./cmd/thin-plugin/replay", []string{"k8s.io/", "github.com/vishvananda/netlink", "sigs.k8s.io/"},
			[]string{"cmd/thin-plugin/replay", "pkg/replay", "pkg/shim", "pkg/api/wire", "pkg/buildinfo", "pkg/store", "pkg/delegate", "pkg/detach", "pkg/podref", "pkg/atomicfile"}},
		{"./pkg/server", []string{"k8s.io/"}, []string{"pkg/server", "pkg/api", "pkg/api/wire"}},
		{"./pkg/delegate", []string{"k8s.io/client-go", "github.com/vishvananda/netlink"}, nil},
		{"./pkg/netselect", []string{"k8s.io/client-go", "github.com/vishvananda/netlink"}, nil},
		{"./pkg/netstatus", []string{"k8s.io/client-go"}, nil},
		// Rule 4: the Kubernetes source implements interfaces declared
		// elsewhere and links neither the delegate chain nor libcni.
		{"./pkg/k8sclient", []string{"github.com/containernetworking/"}, []string{"pkg/k8sclient", "pkg/podref", "pkg/metrics"}},
		// Metrics are a leaf: components reach them through hooks.
		{"./pkg/metrics", []string{"k8s.io/", "github.com/containernetworking/"}, []string{"pkg/metrics"}},
		// Pod identity is a leaf.
		{"./pkg/podref", nil, []string{"pkg/podref"}},
		{"./pkg/rawjson", nil, []string{"pkg/rawjson"}},
		{"./pkg/atomicfile", nil, []string{"pkg/atomicfile"}},
		{"./pkg/hostroot", nil, []string{"pkg/hostroot"}},
		// The daemon, as make build builds it: gRPC without its tracing,
		// whose html/template would keep every exported method of every
		// linked type (4.3 MB of binary, most of it resident).
		{"./cmd/thick-daemon", []string{"golang.org/x/net/trace$", "html/template$", "text/template$"}, nil},
	}
	// The build tags the Makefile gives a package.
	tags := map[string]string{"./cmd/thick-daemon": "grpcnotrace"}
	// Rule 5: only cmd/thick-daemon imports pkg/daemon.
	t.Run("pkg/daemon importers", func(t *testing.T) {
		cmd := exec.Command(goBin, "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...")
		cmd.Dir = root
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list: %v", err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			f := strings.Fields(line)
			for _, imp := range f[1:] {
				if imp == mod+"pkg/daemon" && f[0] != mod+"cmd/thick-daemon" {
					t.Errorf("%s imports pkg/daemon", f[0])
				}
			}
		}
	})
	for _, r := range rules {
		t.Run(r.pkg, func(t *testing.T) {
			for _, d := range deps(r.pkg, tags[r.pkg]) {
				for _, f := range r.forbidden {
					if exact, ok := strings.CutSuffix(f, "$"); ok && d == exact || !ok && strings.HasPrefix(d, f) {
						t.Errorf("%s depends on %s", r.pkg, d)
					}
				}
				if own, ok := strings.CutPrefix(d, mod); ok && r.onlyOwn != nil {
					allowed := false
					for _, a := range r.onlyOwn {
						allowed = allowed || own == a
					}
					if !allowed {
						t.Errorf("%s depends on %s", r.pkg, d)
					}
				}
			}
		})
	}
}
