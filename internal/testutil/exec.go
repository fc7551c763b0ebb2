package testutil

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/version"
)

// FakeExec plays the delegate plugins, in the style of the invoke fakes of
// containernetworking/cni: it records "CMD ifname type" per execution and
// fails where told. Plugin types: anything found, except "missing".
type FakeExec struct {
	version.PluginDecoder
	mu    sync.Mutex
	calls []string
	// FailOn names executions that fail: "ADD net2", "DEL net1".
	FailOn map[string]bool
	// Block, when set, holds every ADD until it is closed.
	Block chan struct{}
}

var _ invoke.Exec = (*FakeExec)(nil)

func (f *FakeExec) FindInPath(plugin string, _ []string) (string, error) {
	if plugin == "missing" {
		return "", fmt.Errorf("failed to find plugin %q", plugin)
	}
	return "/fake/" + plugin, nil
}

func (f *FakeExec) ExecPlugin(_ context.Context, path string, stdin []byte, environ []string) ([]byte, error) {
	env := map[string]string{}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	cmd, ifname := env["CNI_COMMAND"], env["CNI_IFNAME"]
	if cmd == "ADD" && f.Block != nil {
		<-f.Block
	}
	f.mu.Lock()
	f.calls = append(f.calls, fmt.Sprintf("%s %s %s", cmd, ifname, filepath.Base(path)))
	fail := f.FailOn[cmd+" "+ifname]
	f.mu.Unlock()
	if fail {
		return nil, fmt.Errorf("fake %s %s failed", cmd, ifname)
	}
	if cmd != "ADD" {
		return nil, nil
	}
	var conf struct {
		CNIVersion string `json:"cniVersion"`
	}
	_ = json.Unmarshal(stdin, &conf)
	n := strings.TrimPrefix(strings.TrimPrefix(ifname, "net"), "eth") // eth0 → 0, net2 → 2
	return []byte(fmt.Sprintf(`{"cniVersion":%q,"interfaces":[{"name":%q,"sandbox":"/ns"}],"ips":[{"address":"10.0.%s.2/24","interface":0}]}`, conf.CNIVersion, ifname, n)), nil
}

// History returns the executions so far, "CMD ifname type" each.
func (f *FakeExec) History() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// NewFakeExec returns a FakeExec that fails nothing.
func NewFakeExec() *FakeExec { return &FakeExec{FailOn: map[string]bool{}} }

// Reset forgets the executions so far.
func (f *FakeExec) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = nil
}
