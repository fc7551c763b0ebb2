// Package install puts the plexus shim into the host's CNI bin dir. The
// copy goes to a temp name in the same directory and is renamed over the
// old binary, so a shim being executed at that moment keeps its inode and
// the install never fails with "text file busy" (Multus #1221).
package install

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Shim copies src to dir/plexus atomically, mode 0755.
func Shim(src, dir string) error {
	return copyAtomic(src, filepath.Join(dir, "plexus"))
}

func copyAtomic(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("install: %w", err)
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return fmt.Errorf("install: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = io.Copy(tmp, in); err != nil {
		return fmt.Errorf("install: copy: %w", err)
	}
	if err = tmp.Chmod(0o755); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	if err = os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	return nil
}
