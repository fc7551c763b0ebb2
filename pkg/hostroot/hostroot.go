// Package hostroot finds host paths below the host's root as plexusd sees
// it (the chrootDir mount), resolving symlinks the way a process chrooted
// there would: on a real host /var/run is a symlink to /run, and joined
// naively "/hostroot/var/run" would lead to the daemon's own /run.
package hostroot

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

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

// Of returns the host path of p, a directory in the daemon's view, when
// the host's / is mounted at root: p itself, or p without a leading
// "/host" (where Multus's manifest mounts host directories, e.g. the
// host's /run at /host/run), whichever is the same directory below root.
// Otherwise p: the daemon's view is taken to be the host's (the shipped
// DaemonSet mounts such directories at the same path).
func Of(root, p string) string {
	if root == "" || p == "" {
		return p
	}
	fi, err := os.Stat(p)
	if err != nil {
		return p
	}
	candidates := []string{p}
	if rest, ok := strings.CutPrefix(p, "/host/"); ok {
		candidates = append(candidates, "/"+rest)
	}
	for _, c := range candidates {
		if hi, err := os.Stat(Path(root, c)); err == nil && os.SameFile(fi, hi) {
			return c
		}
	}
	return p
}
