// Command plexus is the CNI plugin the container runtime execs. It forwards
// the request to plexusd over a unix socket and prints the answer. Run as
// passthru (the name install_multus gives it too), it is Multus's passthru
// plugin.
package main

import (
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/plexus-cni/plexus/pkg/api"
	"github.com/plexus-cni/plexus/pkg/buildinfo"
	"github.com/plexus-cni/plexus/pkg/shim"
)

func main() {
	if filepath.Base(os.Args[0]) == shim.PassthruName {
		skel.PluginMainFuncs(shim.PassthruFuncs(os.Stdout), version.PluginSupports(api.CNIVersions...), "Passthrough CNI plugin (plexus "+buildinfo.Version+")")
		return
	}
	skel.PluginMainFuncs(shim.Funcs(os.Stdout), version.PluginSupports(api.CNIVersions...), buildinfo.About("shim"))
}
