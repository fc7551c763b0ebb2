// Package install puts the plexus shim and plexus-replay into the host's
// CNI bin dir. Each copy goes to a temp name in the same directory and is
// renamed over the old binary, so a shim being executed at that moment keeps
// its inode and the install never fails with "text file busy" (Multus #1221).
// plexus-replay goes first: a shim that is in place always finds the replay
// it execs when the daemon is unreachable for a DEL.
package install

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/plexus-cni/plexus/pkg/api/wire"
	"github.com/plexus-cni/plexus/pkg/atomicfile"
)

// ShimName is the shim's file name, in the image and in the CNI bin dir.
const ShimName = "plexus"

// Shim copies srcDir/plexus-replay and then srcDir/plexus to dir, mode 0755.
func Shim(srcDir, dir string) error {
	return copyAll(srcDir, dir, ShimName)
}

// MultusShim is what Multus thick's init container does, for Plexus: the
// shim copied to dir/plexus (what Plexus's generated config names) and to
// dir/multus-shim (what a 00-multus.conf left by Multus names: the shim
// reaches plexusd from such a config too), and to dir/passthru, Multus's
// passthru plugin, which install_multus installs beside its shim (the shim
// acts as it under that name); plexus-replay first, as for Shim.
func MultusShim(srcDir, dir string) error {
	return copyAll(srcDir, dir, ShimName, "multus-shim", "passthru")
}

func copyAll(srcDir, dir string, names ...string) error {
	if err := copyAtomic(filepath.Join(srcDir, wire.ReplayName), filepath.Join(dir, wire.ReplayName)); err != nil {
		return err
	}
	for _, name := range names {
		if err := copyAtomic(filepath.Join(srcDir, ShimName), filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return nil
}

func copyAtomic(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("install: %w", err)
	}
	defer in.Close()
	if err := atomicfile.WriteFrom(dst, in, 0o755); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	return nil
}
