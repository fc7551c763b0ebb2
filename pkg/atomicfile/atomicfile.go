// Package atomicfile writes files so that a reader, or a reboot, sees the
// old content or the new, never a torn file: temp file in the same
// directory, fsync, rename, directory fsync. It also sweeps the temp files
// a crash leaves behind. It is a leaf (standard library only).
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Write writes data to path via a temp file in the same directory,
// fsyncs it, renames it over path and fsyncs the directory, so a reader (or
// a reboot) sees either the old or the new content, never a torn file.
func Write(path string, data []byte, perm os.FileMode) error {
	return writeAtomic(path, data, perm, true)
}

// WriteNoSync is Write without the fsyncs: readers
// still never see a torn file, but a crash may lose the new content.
func WriteNoSync(path string, data []byte, perm os.FileMode) error {
	return writeAtomic(path, data, perm, false)
}

// Create writes data to path (mode perm, less the umask), which must not exist (an error wrapping
// os.ErrExist otherwise), durably: created exclusively in place, fsynced,
// then the directory fsynced. Nothing is replaced, so no temp file and no
// rename are needed, and the file system commits once instead of twice.
// A reader may see the file empty or partly written until Create returns,
// and a crash may leave it so: callers create only what a reader treats as
// unreadable-and-harmless in that window.
func Create(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path) // best effort: already failing
		return fmt.Errorf("write %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

func writeAtomic(path string, data []byte, perm os.FileMode, durable bool) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+tempMarker+"*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	committed := false
	defer func() {
		if !committed {
			_ = f.Close()      // best effort: already failing
			_ = os.Remove(tmp) // best effort: already failing
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if durable {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", path, err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", path, err)
	}
	committed = true
	if !durable {
		return nil
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

// tempMarker is in the name of every temp file writeAtomic creates.
const tempMarker = ".tmp-"

// SweepTemp removes the temp files a crash left under dir (its
// subdirectories included): the hidden ".<name>.tmp-*" files writeAtomic
// renames into place within milliseconds. Only files older than minAge are
// taken, so a write in progress is never touched. It returns how many it
// removed.
func SweepTemp(dir string, minAge time.Duration) (int, error) {
	n := 0
	var errs []error
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			errs = append(errs, err)
			return nil
		}
		name := d.Name()
		if !d.Type().IsRegular() || !strings.HasPrefix(name, ".") || !strings.Contains(name, tempMarker) {
			return nil
		}
		if fi, err := d.Info(); err != nil || time.Since(fi.ModTime()) < minAge {
			return nil
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
			return nil
		}
		n++
		return nil
	})
	return n, errors.Join(append(errs, err)...)
}

// WriteFrom is Write with the content read from r (the shim binary the
// DaemonSet installs on the host).
func WriteFrom(path string, r io.Reader, perm os.FileMode) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return Write(path, data, perm)
}
