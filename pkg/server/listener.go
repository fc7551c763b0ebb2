package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"syscall"

	"github.com/plexus-cni/plexus/pkg/api"
)

// Listen creates the socket at path: its directory is (re)created 0700 and
// owned by this process's uid, a stale socket is removed, the socket is
// chmod 0600. The returned listener accepts only peers whose uid
// (SO_PEERCRED) is in allowedUIDs.
func Listen(path string, allowedUIDs []uint32, log *slog.Logger) (net.Listener, error) {
	dir := filepath.Dir(path)
	if err := ownDir(dir, log); err != nil {
		return nil, err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("chmod socket %s: %w", path, err)
	}
	return &peerListener{UnixListener: l, allowed: allowedUIDs, log: log}, nil
}

// ownDir makes dir a 0700 directory owned by this process's uid. Anything
// else found there (another uid's directory, whose owner could swap in its
// own socket; a symlink; a file) is removed first, as Multus does with its
// run directory.
func ownDir(dir string, log *slog.Logger) error {
	uid := os.Geteuid()
	if fi, err := os.Lstat(dir); err == nil && !ownedDir(fi, uid) {
		log.Warn("socket dir not a directory owned by this user: removing it", "dir", dir, "mode", fi.Mode().String(), "owner", owner(fi))
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("socket dir %s: remove: %w", dir, err)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("socket dir %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("socket dir %s: %w", dir, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("socket dir %s: %w", dir, err)
	}
	if !ownedDir(fi, uid) {
		return fmt.Errorf("socket dir %s: owned by uid %d, want %d (mode %s)", dir, owner(fi), uid, fi.Mode())
	}
	return nil
}

func ownedDir(fi os.FileInfo, uid int) bool {
	return fi.IsDir() && fi.Mode()&os.ModeSymlink == 0 && owner(fi) == uid
}

func owner(fi os.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}

// peerListener drops connections from peers that are not allowed.
type peerListener struct {
	*net.UnixListener
	allowed []uint32
	log     *slog.Logger
}

func (l *peerListener) Accept() (net.Conn, error) {
	for {
		c, err := l.AcceptUnix()
		if err != nil {
			return nil, err
		}
		uid, err := api.PeerUID(c)
		if err == nil && l.permitted(uid) {
			return c, nil
		}
		l.log.Warn("rejected socket peer", "uid", uid, "err", err)
		c.Close()
	}
}

func (l *peerListener) permitted(uid uint32) bool {
	for _, a := range l.allowed {
		if a == uid {
			return true
		}
	}
	return false
}
