// Command plexus is the CNI plugin the container runtime execs. It forwards
// the request to plexusd over a unix socket and prints the answer.
package main

import (
	"os"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/plexus-cni/plexus/pkg/api"
	"github.com/plexus-cni/plexus/pkg/buildinfo"
	"github.com/plexus-cni/plexus/pkg/shim"
)

func main() {
	skel.PluginMainFuncs(shim.Funcs(os.Stdout), version.PluginSupports(api.CNIVersions...), buildinfo.About("shim"))
}
