package shim

// PassthruName is the name under which the shim acts as Multus's passthru
// plugin: installed by install_multus beside the shim, as Multus installs
// its own, so that a NAD of type passthru works the same after the switch.
const PassthruName = "passthru"

// passthruResult is Multus's passthru plugin: ADD prints an empty result in
// the config's version (a chain's first plugin, so that the plugins after
// it work on an interface that already exists); every other command does
// nothing. The form is what the CNI library prints for an empty result:
// before 1.0.0 the result type carries a "dns" object that is never omitted.
func passthruResult(cmd, version string) []byte {
	if cmd != "ADD" {
		return nil
	}
	b := appendQuoted([]byte(`{"cniVersion":`), version)
	if version < "1.0.0" { // 0.3.0, 0.3.1, 0.4.0: the only others supported
		b = append(b, `,"dns":{}`...)
	}
	return append(b, "}\n"...)
}
