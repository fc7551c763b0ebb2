package routes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/types/create"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/plexus-cni/plexus/pkg/delegate"
)

// fakeExec answers every plugin ADD with a fixed result, so libcni writes
// its real cache file.
type fakeExec struct{ result []byte }

func (f *fakeExec) ExecPlugin(_ context.Context, _ string, _ []byte, _ []string) ([]byte, error) {
	return f.result, nil
}

func (f *fakeExec) FindInPath(plugin string, _ []string) (string, error) {
	return "/fake/" + plugin, nil
}

func (f *fakeExec) Decode([]byte) (version.PluginInfo, error) {
	return version.PluginSupports("0.3.1", "0.4.0", "1.0.0", "1.1.0"), nil
}

// The Fixer rewrites the file libcni cached, libcni reads the rewritten
// result back, and every other key of the file is byte-for-byte intact.
func TestRewriteOutcomesRewritesLibcniCache(t *testing.T) {
	t.Parallel()
	for _, ver := range []string{"0.4.0", "1.0.0"} {
		t.Run(ver, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			const cid = "c0ffee"
			add := func(name, ifName, result string) (*libcni.NetworkConfigList, delegate.Outcome, *libcni.RuntimeConf) {
				conf := `{"cniVersion":"` + ver + `","name":"` + name + `","plugins":[{"type":"fake","note":"<kept & unescaped>"}]}`
				list, err := libcni.ConfListFromBytes([]byte(conf))
				if err != nil {
					t.Fatal(err)
				}
				cni := libcni.NewCNIConfigWithCacheDir([]string{"/fake"}, dir, &fakeExec{result: []byte(result)})
				rt := &libcni.RuntimeConf{ContainerID: cid, NetNS: "/run/netns/p", IfName: ifName, Args: [][2]string{{"K8S_POD_NAME", "p"}}}
				res, err := cni.AddNetworkList(context.Background(), list, rt)
				if err != nil {
					t.Fatal(err)
				}
				return list, delegate.Outcome{Spec: delegate.Spec{Network: name, IfName: ifName, ConfList: []byte(conf)}, Result: res}, rt
			}
			eth0List, eth0, eth0RT := add("cluster", "eth0", `{"cniVersion":"`+ver+`","interfaces":[{"name":"eth0","sandbox":"/run/netns/p"}],"ips":[{"interface":0,"address":"10.88.0.5/16","gateway":"10.88.0.1"}],"routes":[{"dst":"0.0.0.0/0","gw":"10.88.0.1"}]}`)
			eth0.Spec.Default = true
			net1List, net1, net1RT := add("mv", "net1", `{"cniVersion":"`+ver+`","interfaces":[{"name":"net1","sandbox":"/run/netns/p"}],"ips":[{"interface":0,"address":"192.168.10.5/24"}]}`)
			net1.Spec.DefaultRoute = []string{"192.168.10.254"}

			eth0Path := delegate.CachePath(dir, "cluster", cid, "eth0")
			before, err := os.ReadFile(eth0Path)
			if err != nil {
				t.Fatalf("libcni cache file not where expected: %v", err)
			}
			f := NewWithCache(dir, nil)
			reqs, err := requests([]delegate.Spec{eth0.Spec, net1.Spec})
			if err != nil {
				t.Fatal(err)
			}
			out, err := f.rewriteOutcomes(delegate.Target{ContainerID: cid, Netns: "/run/netns/p"}, []delegate.Outcome{eth0, net1}, reqs)
			if err != nil {
				t.Fatal(err)
			}

			cni := libcni.NewCNIConfigWithCacheDir(nil, dir, nil)
			for _, c := range []struct {
				list *libcni.NetworkConfigList
				rt   *libcni.RuntimeConf
				idx  int
				want string
			}{{eth0List, eth0RT, 0, ""}, {net1List, net1RT, 1, "0.0.0.0/0 via 192.168.10.254"}} {
				cached, err := cni.GetNetworkListCachedResult(c.list, c.rt)
				if err != nil || cached == nil {
					t.Fatalf("%s: cached result %v, %v", c.rt.IfName, cached, err)
				}
				if cached.Version() != ver {
					t.Errorf("%s: cached version %s, want %s", c.rt.IfName, cached.Version(), ver)
				}
				for what, r := range map[string]types.Result{"cached": cached, "returned": out[c.idx].Result} {
					cur, err := delegate.AsCurrent(r)
					if err != nil {
						t.Fatal(err)
					}
					if got := strings.Join(routeStrings(cur.Routes), ","); got != c.want {
						t.Errorf("%s %s routes %q, want %q", c.rt.IfName, what, got, c.want)
					}
				}
			}

			after, err := os.ReadFile(eth0Path)
			if err != nil {
				t.Fatal(err)
			}
			var b, a map[string]json.RawMessage
			if err := json.Unmarshal(before, &b); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(after, &a); err != nil {
				t.Fatal(err)
			}
			for k, v := range b {
				if k != "result" && !bytes.Equal(a[k], v) {
					t.Errorf("key %q changed:\n%s\n%s", k, v, a[k])
				}
			}
			if len(a) != len(b) {
				t.Errorf("keys %d → %d", len(b), len(a))
			}
			if fi, err := os.Stat(eth0Path); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("mode %v, %v; want 0600 like libcni", fi.Mode(), err)
			}
			if left, _ := filepath.Glob(filepath.Join(dir, "results", ".*tmp*")); len(left) > 0 {
				t.Errorf("temp files left: %v", left)
			}
		})
	}
}

// A missing cache file fails the rewrite with a typed error naming the
// attachment; New (no cache) does not touch the disk.
func TestRewriteOutcomesMissingCache(t *testing.T) {
	t.Parallel()
	o := delegate.Outcome{
		Spec: delegate.Spec{Network: "ns/mv", IfName: "net1", ConfList: []byte(`{"cniVersion":"1.0.0","name":"mv","plugins":[{"type":"macvlan"}]}`), DefaultRoute: []string{"192.168.10.254"}},
	}
	res, err := create.CreateFromBytes([]byte(`{"cniVersion":"1.0.0","ips":[{"address":"192.168.10.5/24"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	o.Result = res
	reqs := []request{{IfName: "net1", Family: v4, GW: net.ParseIP("192.168.10.254")}}
	tgt := delegate.Target{ContainerID: "c", Netns: "/run/netns/p"}
	_, err = NewWithCache(t.TempDir(), nil).rewriteOutcomes(tgt, []delegate.Outcome{o}, reqs)
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrNoCachedResult) || e.IfName != "net1" || e.Netns != tgt.Netns {
		t.Errorf("error %v: want *Error naming net1 and the netns, wrapping ErrNoCachedResult", err)
	}
	if _, err := New(nil).rewriteOutcomes(tgt, []delegate.Outcome{o}, reqs); err != nil {
		t.Errorf("New: %v", err)
	}
}
