package delegate

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

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
}

// NewInvoker returns an Invoker with a real exec whose plugin stderr goes to
// stderr.
func NewInvoker(binDirs []string, cacheDir string, exec invoke.Exec) *Invoker {
	if exec == nil {
		exec = &invoke.DefaultExec{RawExec: &invoke.RawExec{}, PluginDecoder: version.PluginDecoder{}}
	}
	return &Invoker{BinDirs: binDirs, CacheDir: cacheDir, Exec: exec}
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
	list, err := ParseConfList(s.ConfList)
	if err != nil {
		return nil, err
	}
	return in.config(t.CNIPath).AddNetworkList(ctx, list, t.runtimeConf(s))
}

func (in *Invoker) del(ctx context.Context, t Target, s *Spec) error {
	list, err := ParseConfList(s.ConfList)
	if err != nil {
		return err
	}
	return in.config(t.CNIPath).DelNetworkList(ctx, list, t.runtimeConf(s))
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
	return in.config(t.CNIPath).CheckNetworkList(ctx, list, t.runtimeConf(s))
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
// fallback for DEL when the attachment record is unreadable.
func (in *Invoker) CachedAttachments(containerID string) ([]*libcni.NetworkAttachment, error) {
	return in.config("").GetCachedAttachments(containerID)
}
