package netselect

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/plexus-cni/plexus/pkg/delegate"
)

// attached resolves ann as an ADD would: the record a running pod has.
func attached(t *testing.T, opts Options, ann string) []delegate.Spec {
	t.Helper()
	nads, confs := world()
	specs, err := Resolve(opts, Request{Pod: pod("pods", map[string]string{NetworksAnnotation: ann}), RuntimeIfName: "eth0"}, nads, confs)
	if err != nil {
		t.Fatal(err)
	}
	return specs
}

func names(specs []delegate.Spec) []string {
	var out []string
	for _, s := range specs {
		out = append(out, s.Network+"@"+s.IfName)
	}
	return out
}

func TestDiff(t *testing.T) {
	opts := baseOpts()
	opts.DefaultNetworks = []string{"monitoring"}
	for _, c := range []struct {
		name, before, after string
		remove              []int // indexes into the record (0 cluster, 1 monitoring, 2… the elements)
		add                 []string
	}{
		{"unchanged", "plain, caps", "plain,caps", nil, nil},
		{"add one", "plain", "plain, caps", nil, []string{"pods/caps@net3"}},
		{"remove one", "plain, caps", "caps", []int{2}, nil},
		{"remove all, last first", "plain, caps", "", []int{3, 2}, nil},
		{"add two", "plain", "plain, caps, default/shared", nil, []string{"pods/caps@net3", "default/shared@net4"}},
		{"remove the first of two added: names stay", "plain, caps, default/shared", "plain, default/shared", []int{3}, nil},
		{"duplicates kept in order", "plain, plain", "plain", []int{3}, nil},
		{"changed interface is remove + add", "plain@a1", "plain@a2", []int{2}, []string{"pods/plain@a2"}},
		{"new positional name skips kept ones", "plain@net1, caps", "plain@net1, caps, plain", nil, []string{"pods/plain@net4"}},
		{"removed name is free again", "plain, caps", "caps, plain@x", []int{2}, []string{"pods/plain@x"}},
		{"explicit name of a new element is skipped by positional ones", "caps", "caps, plain, plain@net3", nil, []string{"pods/plain@net4", "pods/plain@net3"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cur := attached(t, opts, c.before)
			// "monitoring" is net1, the first element net2, ...
			nads, confs := world()
			ch, err := Diff(opts, pod("pods", map[string]string{NetworksAnnotation: c.after}), "eth0", cur, nads, confs)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(ch.Remove, c.remove) {
				t.Errorf("remove %v, want %v (record %v)", ch.Remove, c.remove, names(cur))
			}
			if got := names(ch.Add); !reflect.DeepEqual(got, c.add) {
				t.Errorf("add %v, want %v (record %v)", got, c.add, names(cur))
			}
			for _, s := range ch.Add {
				if s.Selection == "" || s.Default {
					t.Errorf("new attachment %+v has no selection key", s)
				}
			}
		})
	}
}

func TestDiffErrorsChangeNothing(t *testing.T) {
	opts := baseOpts()
	opts.NamespaceIsolation = true
	cur := attached(t, opts, "plain")
	for _, c := range []struct{ after, want string }{
		{"plain, missing", `networks[1] "missing": NetworkAttachmentDefinition "pods/missing" not found`},
		{"plain, other/foreign", `networks[1] "foreign": field "namespace": namespace isolation`},
		{"plain, caps@eth0", `networks[1] "caps": field "interface": interface name "eth0" is in use`},
		{"plain, caps@net1", `networks[1] "caps": field "interface": interface name "net1" is in use`},
		{"plain, caps@x, caps@x", `networks[2] "caps": field "interface": interface name "x" is already requested by networks[1]`},
		{`[{"name":"plain","mac":"zz"}]`, `field "mac"`},
		{"plain, bad-type", `networks[1] "bad-type"`},
	} {
		nads, confs := world()
		_, err := Diff(opts, pod("pods", map[string]string{NetworksAnnotation: c.after}), "eth0", cur, nads, confs)
		var se *SelectionError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), `pod "pods/p"`) {
			t.Errorf("%s: %v; want a SelectionError with %q", c.after, err, c.want)
		}
	}
}

func TestAdopt(t *testing.T) {
	opts := baseOpts()
	cur := attached(t, opts, "plain, caps@x")
	for i := range cur {
		cur[i].Selection = ""
	}
	p := pod("pods", map[string]string{NetworksAnnotation: "plain, caps@x"})
	if !NeedsAdoption(opts, p, cur) {
		t.Fatal("a record without keys needs adoption")
	}
	nads, confs := world()
	got, err := Adopt(opts, p, "eth0", cur, nads, confs)
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Selection != "" || got[1].Selection == "" || got[2].Selection == "" || NeedsAdoption(opts, p, got) {
		t.Errorf("adopted %+v", got)
	}
	changed := pod("pods", map[string]string{NetworksAnnotation: "caps@x"})
	if _, err := Adopt(opts, changed, "eth0", cur, nads, confs); !errors.Is(err, ErrNotAdoptable) {
		t.Errorf("adopt after a change: %v", err)
	}
}
