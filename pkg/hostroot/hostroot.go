// Package hostroot finds host paths below the host's root as plexusd sees
// it (the chrootDir mount), resolving symlinks the way a process chrooted
// there would: on a real host /var/run is a symlink to /run, and joined
// naively "/hostroot/var/run" would lead to the daemon's own /run.
package hostroot

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Path returns where the daemon finds host path p when the host's root is
// mounted at root; root "" is the daemon's own root and returns p as is.
// The directory part is resolved inside root (openat2 RESOLVE_IN_ROOT:
// absolute symlinks and ".." stay below it); the last element is left to
// the caller's open, so a magic link such as /proc/<pid>/ns/net still
// works. When the directory cannot be resolved the plain join is returned
// and the caller's open reports the problem.
func Path(root, p string) string {
	if root == "" || p == "" {
		return p
	}
	joined := filepath.Join(root, p)
	dir, base := filepath.Split(filepath.Clean("/" + p))
	resolved, err := resolveDir(root, dir)
	if err != nil {
		return joined
	}
	return filepath.Join(resolved, base)
}

func resolveDir(root, dir string) (string, error) {
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer unix.Close(rfd)
	fd, err := unix.Openat2(rfd, dir, &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT})
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	return os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
}
