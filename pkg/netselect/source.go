package netselect

import (
	"errors"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
)

// Pod is the part of a pod that network selection reads.
type Pod struct {
	Namespace   string
	Name        string
	UID         string
	Annotations map[string]string
}

// NADGetter looks up NetworkAttachmentDefinitions. Implementations return an
// error wrapping ErrNotFound when the NAD does not exist. The manifest source
// and the Kubernetes informer source both implement it.
type NADGetter interface {
	GetNAD(namespace, name string) (*nadv1.NetworkAttachmentDefinition, error)
}

// ConfLoader reads CNI configuration files from disk. It is an interface so
// resolution stays free of I/O and can be table-tested.
type ConfLoader interface {
	// ByName returns the bytes of the first file (sorted by file name) in
	// dir with extension .conf, .conflist or .json whose "name" equals
	// name; an error wrapping ErrNotFound if there is none.
	ByName(dir, name string) ([]byte, error)
	// File returns the bytes of the file at path (an absolute path).
	File(path string) ([]byte, error)
}

// ErrPodUnknown is returned by a pod source when the API has no such pod and
// never had one with this UID: the sandbox gets an empty result (Multus
// semantics; the sandbox is about to be torn down anyway).
var ErrPodUnknown = errors.New("pod unknown to the API")
