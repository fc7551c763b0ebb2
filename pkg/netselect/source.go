package netselect

import (
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
)

// NADGetter looks up NetworkAttachmentDefinitions. Implementations return an
// error wrapping podref.ErrNotFound when the NAD does not exist. The manifest source
// and the Kubernetes informer source both implement it.
type NADGetter interface {
	GetNAD(namespace, name string) (*nadv1.NetworkAttachmentDefinition, error)
}

// ConfLoader reads CNI configuration files from disk. It is an interface so
// resolution stays free of I/O and can be table-tested.
type ConfLoader interface {
	// ByName returns the bytes of the first file (sorted by file name) in
	// dir with extension .conf, .conflist or .json whose "name" equals
	// name; an error wrapping podref.ErrNotFound if there is none.
	ByName(dir, name string) ([]byte, error)
	// File returns the bytes of the file at path (an absolute path).
	File(path string) ([]byte, error)
	// Chain returns the plugin configs of dir/*.conf, sorted by file name
	// (libcni's plugin drop-in directory); none if dir does not exist.
	Chain(dir string) ([][]byte, error)
}
