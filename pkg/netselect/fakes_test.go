package netselect

import (
	"fmt"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-cni/plexus/pkg/podref"
)

// fakeNADs is an in-memory NADGetter keyed by "ns/name". errs makes a lookup
// fail with the given error.
type fakeNADs struct {
	nads map[string]*nadv1.NetworkAttachmentDefinition
	errs map[string]error
}

var _ NADGetter = (*fakeNADs)(nil)

func newFakeNADs(nads ...*nadv1.NetworkAttachmentDefinition) *fakeNADs {
	f := &fakeNADs{nads: map[string]*nadv1.NetworkAttachmentDefinition{}, errs: map[string]error{}}
	for _, n := range nads {
		f.nads[n.Namespace+"/"+n.Name] = n
	}
	return f
}

func (f *fakeNADs) GetNAD(namespace, name string) (*nadv1.NetworkAttachmentDefinition, error) {
	key := namespace + "/" + name
	if err, ok := f.errs[key]; ok {
		return nil, err
	}
	if n, ok := f.nads[key]; ok {
		return n.DeepCopy(), nil
	}
	return nil, fmt.Errorf("networkattachmentdefinition %s: %w", key, podref.ErrNotFound)
}

// fakeConfs is an in-memory ConfLoader: byName is keyed by "dir|name",
// files by absolute path.
type fakeConfs struct {
	byName map[string]string
	files  map[string]string
	chains map[string][]string // Chain: dir → plugin configs
	err    error               // returned by every call when set
}

var _ ConfLoader = (*fakeConfs)(nil)

func (f *fakeConfs) ByName(dir, name string) ([]byte, error) {
	if f.err != nil {
		return nil, f.err
	}
	if s, ok := f.byName[dir+"|"+name]; ok {
		return []byte(s), nil
	}
	return nil, fmt.Errorf("no conf named %q in %s: %w", name, dir, podref.ErrNotFound)
}

func (f *fakeConfs) File(path string) ([]byte, error) {
	if f.err != nil {
		return nil, f.err
	}
	if s, ok := f.files[path]; ok {
		return []byte(s), nil
	}
	return nil, fmt.Errorf("open %s: %w", path, podref.ErrNotFound)
}

func (f *fakeConfs) Chain(dir string) ([][]byte, error) {
	if f.err != nil {
		return nil, f.err
	}
	var out [][]byte
	for _, s := range f.chains[dir] {
		out = append(out, []byte(s))
	}
	return out, nil
}

func makeNAD(namespace, name, config string) *nadv1.NetworkAttachmentDefinition {
	return &nadv1.NetworkAttachmentDefinition{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec:       nadv1.NetworkAttachmentDefinitionSpec{Config: config},
	}
}
