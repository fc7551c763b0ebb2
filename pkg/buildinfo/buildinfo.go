// Package buildinfo holds the version stamped in at link time. It is a leaf
// package with no dependencies so the shim can print its version without
// pulling anything else in.
package buildinfo

// Version is set with -ldflags "-X github.com/plexus-cni/plexus/pkg/buildinfo.Version=...".
var Version = "dev"

// About is the one-line description printed for CNI VERSION / --version.
func About(component string) string {
	return "plexus " + component + " " + Version
}
