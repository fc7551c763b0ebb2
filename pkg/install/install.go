// Package install puts the plexus shim into the host's CNI bin dir. The
// copy goes to a temp name in the same directory and is renamed over the
// old binary, so a shim being executed at that moment keeps its inode and
// the install never fails with "text file busy" (Multus #1221).
package install

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/plexus-cni/plexus/pkg/atomicfile"
)

// Shim copies src to dir/plexus atomically, mode 0755.
func Shim(src, dir string) error {
	return copyAtomic(src, filepath.Join(dir, "plexus"))
}

// MultusShim is what Multus thick's init container does, for Plexus: the
// shim copied to dir/plexus (what Plexus's generated config names) and to
// dir/multus-shim (what a 00-multus.conf left by Multus names: the shim
// reaches plexusd from such a config too), and to dir/passthru, Multus's
// passthru plugin, which install_multus installs beside its shim (the shim
// acts as it under that name).
func MultusShim(src, dir string) error {
	if err := Shim(src, dir); err != nil {
		return err
	}
	for _, name := range []string{"multus-shim", "passthru"} {
		if err := copyAtomic(src, filepath.Join(dir, name)); err != nil {
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
