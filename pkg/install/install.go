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
