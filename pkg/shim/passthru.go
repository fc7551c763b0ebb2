package shim

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
)

// PassthruName is the name under which the shim acts as Multus's passthru
// plugin: installed by install_multus beside the shim, as Multus installs
// its own, so that a NAD of type passthru works the same after the switch.
const PassthruName = "passthru"

// PassthruFuncs is Multus's passthru plugin: ADD prints an empty result in
// the config's version (a chain's first plugin, so that the plugins after
// it work on an interface that already exists); every other command does
// nothing.
func PassthruFuncs(out io.Writer) skel.CNIFuncs {
	nothing := func(*skel.CmdArgs) error { return nil }
	return skel.CNIFuncs{
		Add: func(a *skel.CmdArgs) error {
			var conf types.NetConf
			if err := json.Unmarshal(a.StdinData, &conf); err != nil {
				return types.NewError(types.ErrDecodingFailure, "passthru: cannot parse the network configuration", err.Error())
			}
			r := &current.Result{CNIVersion: current.ImplementedSpecVersion, Interfaces: []*current.Interface{}, IPs: []*current.IPConfig{}, Routes: []*types.Route{}}
			v, err := r.GetAsVersion(conf.CNIVersion)
			if err != nil {
				return types.NewError(types.ErrIncompatibleCNIVersion, fmt.Sprintf("passthru: cniVersion %q", conf.CNIVersion), err.Error())
			}
			return v.PrintTo(out)
		},
		Del: nothing, Check: nothing, Status: nothing, GC: nothing,
	}
}
