package delegate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
)

// Invoker is the single place that builds libcni.CNIConfig. BinDirs are
// searched before the runtime's CNI_PATH (Multus binDir semantics).
type Invoker struct {
	BinDirs  []string
	CacheDir string
	Exec     invoke.Exec
	// RollbackTimeout bounds the DELs that undo a failed ADD.
	RollbackTimeout time.Duration
	// Observe, when set, is told how long each delegate network's verb
	// took (metrics); plugin is the conflist's first plugin type.
	Observe func(network, plugin, verb string, err error, d time.Duration)
}

// observe reports one verb of s's chain to Observe.
func (in *Invoker) observe(s *Spec, list *libcni.NetworkConfigList, verb string, start time.Time, err error) {
	if in.Observe == nil {
		return
	}
	plugin := ""
	if list != nil && len(list.Plugins) > 0 && list.Plugins[0].Network != nil {
		plugin = list.Plugins[0].Network.Type
	}
	in.Observe(s.Network, plugin, verb, err, time.Since(start))
}

// DefaultRollbackTimeout is RollbackTimeout unless the caller sets it.
const DefaultRollbackTimeout = 30 * time.Second

// NewInvoker returns an Invoker; a nil exec is a BoundedExec bounded only
// by each call's context.
func NewInvoker(binDirs []string, cacheDir string, exec invoke.Exec) *Invoker {
	if exec == nil {
		exec = &BoundedExec{}
	}
	return &Invoker{BinDirs: binDirs, CacheDir: cacheDir, Exec: exec, RollbackTimeout: DefaultRollbackTimeout}
}

func (in *Invoker) config(cniPath string) *libcni.CNIConfig {
	paths := append([]string{}, in.BinDirs...)
	for _, p := range strings.Split(cniPath, ":") {
		if p != "" {
			paths = append(paths, p)
		}
	}
	return libcni.NewCNIConfigWithCacheDir(paths, in.CacheDir, in.Exec)
}

// ParseConfList decodes a stored conflist.
func ParseConfList(raw json.RawMessage) (*libcni.NetworkConfigList, error) {
	list, err := libcni.NetworkConfFromBytes(raw)
	if err != nil {
		return nil, err
	}
	if len(list.Plugins) == 0 {
		return nil, fmt.Errorf("conflist %q has no plugins", list.Name)
	}
	return list, nil
}

// Target is where a chain runs: one sandbox.
type Target struct {
	ContainerID string
	Netns       string
	CNIPath     string
}

func (t Target) runtimeConf(s *Spec) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{
		ContainerID:    t.ContainerID,
		NetNS:          t.Netns,
		IfName:         s.IfName,
		Args:           s.Args,
		CapabilityArgs: s.CapabilityArgs,
	}
}

func (in *Invoker) add(ctx context.Context, t Target, s *Spec) (types.Result, error) {
	start := time.Now()
	list, err := ParseConfList(s.ConfList)
	if err != nil {
		return nil, err
	}
	res, err := in.config(t.CNIPath).AddNetworkList(ctx, list, t.runtimeConf(s))
	in.observe(s, list, "ADD", start, err)
	return res, err
}

func (in *Invoker) del(ctx context.Context, t Target, s *Spec) error {
	start := time.Now()
	list, err := ParseConfList(s.ConfList)
	if err != nil {
		return err
	}
	err = in.config(t.CNIPath).DelNetworkList(ctx, list, t.runtimeConf(s))
	in.observe(s, list, "DEL", start, err)
	return err
}

// CachePath is where libcni caches the result of network netName's ADD in
// a sandbox (libcni/api.go getCacheFilePath); cacheDir "" is libcni's
// default.
func CachePath(cacheDir, netName, containerID, ifName string) string {
	return filepath.Join(cacheResults(cacheDir), netName+"-"+containerID+"-"+ifName)
}

func cacheResults(cacheDir string) string {
	if cacheDir == "" {
		cacheDir = libcni.CacheDir
	}
	return filepath.Join(cacheDir, "results")
}

// added reports whether libcni holds a result for s in this sandbox: the
// delegate's ADD completed and no DEL has succeeded since. A cache entry
// that exists counts, readable or not; a stat is all it costs.
func (in *Invoker) added(t Target, s *Spec) bool {
	list, err := ParseConfList(s.ConfList)
	if err != nil {
		return true
	}
	_, err = os.Stat(CachePath(in.CacheDir, list.Name, t.ContainerID, s.IfName))
	return !errors.Is(err, os.ErrNotExist)
}

func (in *Invoker) check(ctx context.Context, t Target, s *Spec) error {
	list, err := ParseConfList(s.ConfList)
	if err != nil {
		return err
	}
	// CHECK exists from 0.4.0 on; an older delegate has nothing to check.
	if ok, _ := version.GreaterThanOrEqualTo(list.CNIVersion, "0.4.0"); !ok || list.DisableCheck {
		return nil
	}
	start := time.Now()
	err = in.config(t.CNIPath).CheckNetworkList(ctx, list, t.runtimeConf(s))
	in.observe(s, list, "CHECK", start, err)
	return err
}

// Status forwards STATUS to a delegate network (a no-op below 1.1.0).
func (in *Invoker) Status(ctx context.Context, cniPath string, confList json.RawMessage) error {
	list, err := ParseConfList(confList)
	if err != nil {
		return err
	}
	return in.config(cniPath).GetStatusNetworkList(ctx, list)
}

// GC forwards GC to a delegate network with the attachments still valid for
// it; libcni first DELs every cached attachment of that network not listed.
func (in *Invoker) GC(ctx context.Context, cniPath string, confList json.RawMessage, valid []types.GCAttachment) error {
	list, err := ParseConfList(confList)
	if err != nil {
		return err
	}
	return in.config(cniPath).GCNetworkList(ctx, list, &libcni.GCArgs{ValidAttachments: valid})
}

// CachedAttachments returns what libcni cached for a container: the
// fallback for DEL and GC when the attachment record is unreadable. libcni
// skips entries it cannot read; here they are an *UnreadableCacheError
// (returned with the readable ones), because acting on a partial list would
// leak or tear down what the missing entries hold.
func (in *Invoker) CachedAttachments(containerID string) ([]*libcni.NetworkAttachment, error) {
	got, err := in.config("").GetCachedAttachments(containerID)
	if err != nil {
		return nil, err
	}
	dir := cacheResults(in.CacheDir)
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return got, err
	}
	read := map[string]bool{}
	for _, a := range got {
		read[CachePath(in.CacheDir, a.Network, containerID, a.IfName)] = true
	}
	var bad []string
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if pos := strings.Index(e.Name(), "-"+containerID+"-"); pos > 0 && !read[p] && !othersEntry(p, containerID) {
			bad = append(bad, p)
		}
	}
	if len(bad) > 0 {
		return got, &UnreadableCacheError{Files: bad}
	}
	return got, nil
}

// othersEntry: a readable cache entry whose name only looks like
// containerID's (another container's ID contains it).
func othersEntry(path, containerID string) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	var c struct {
		ContainerID string `json:"containerId"`
	}
	return json.Unmarshal(data, &c) == nil && c.ContainerID != "" && c.ContainerID != containerID
}

// UnreadableCacheError names libcni cache entries that exist but cannot be
// decoded.
type UnreadableCacheError struct{ Files []string }

func (e *UnreadableCacheError) Error() string {
	return "unreadable libcni cache entries (the networks they hold cannot be released without them): " + strings.Join(e.Files, ", ")
}
