package delegate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
	"golang.org/x/sys/unix"
)

// pipeGrace is how long, after a plugin exits, its output pipes may stay
// open (held by a child it left behind) before they are closed anyway.
const pipeGrace = 500 * time.Millisecond

// BoundedExec runs plugin binaries like libcni's invoke.RawExec, but never
// waits past its deadline: each execution is bounded by Timeout (when set)
// and by the caller's context; on expiry the plugin's whole process group is
// killed; and a child that inherited stdout cannot hold the caller after the
// plugin itself has exited.
type BoundedExec struct {
	// Timeout bounds one plugin execution; 0 means only ctx bounds it.
	Timeout time.Duration
	// Stderr receives the plugin's stderr after a successful run (nil: dropped).
	Stderr io.Writer
	// Root, when set, is the directory each plugin runs chrooted into
	// (the daemon's chrootDir): plugin paths, CNI_PATH and every path a
	// plugin opens are then host paths. Only the child is chrooted, so
	// plugins still run in parallel.
	Root string
	version.PluginDecoder
}

var _ invoke.Exec = (*BoundedExec)(nil)

// FindInPath implements invoke.Exec. With Root set, paths are looked up
// below it and the path returned is the one the chrooted plugin runs as.
func (e *BoundedExec) FindInPath(plugin string, paths []string) (string, error) {
	if e.Root == "" {
		return invoke.FindInPath(plugin, paths)
	}
	rooted := make([]string, len(paths))
	for i, p := range paths {
		rooted[i] = filepath.Join(e.Root, p)
	}
	found, err := invoke.FindInPath(plugin, rooted)
	if err != nil {
		return "", fmt.Errorf("%w (chrootDir %s)", err, e.Root)
	}
	rel, err := filepath.Rel(e.Root, found)
	if err != nil {
		return "", err
	}
	return "/" + rel, nil
}

// ExecPlugin implements invoke.Exec.
func (e *BoundedExec) ExecPlugin(ctx context.Context, pluginPath string, stdin []byte, environ []string) ([]byte, error) {
	if e.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.Timeout)
		defer cancel()
	}
	for try := 0; ; try++ {
		stdout, stderr, err := e.run(ctx, pluginPath, stdin, environ)
		// A plugin binary being replaced right now: wait and retry, as
		// libcni does.
		if err != nil && strings.Contains(err.Error(), "text file busy") && try < 5 && sleep(ctx, time.Second) {
			continue
		}
		if err != nil {
			return nil, pluginErr(ctx, pluginPath, err, stdout, stderr)
		}
		if e.Stderr != nil && len(stderr) > 0 {
			_, _ = e.Stderr.Write(stderr) // informational only
		}
		return stdout, nil
	}
}

func (e *BoundedExec) run(ctx context.Context, pluginPath string, stdin []byte, environ []string) ([]byte, []byte, error) {
	var stdout, stderr bytes.Buffer
	c := exec.CommandContext(ctx, pluginPath)
	c.Env = environ
	c.Stdin = bytes.NewReader(stdin)
	c.Stdout, c.Stderr = &stdout, &stderr
	// Its own process group, so a timeout kills whatever it started too.
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if e.Root != "" {
		c.SysProcAttr.Chroot = e.Root
		c.Dir = "/" // inside the new root: nothing of the daemon's view is left
	}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	c.WaitDelay = pipeGrace
	var err error
	if IsBackground(ctx) {
		err = startNiced(c)
	} else {
		err = c.Start()
	}
	if err == nil {
		err = c.Wait()
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		// The plugin exited 0; something it left behind still holds its
		// output. What it wrote before exiting is its answer.
		err = nil
	}
	return stdout.Bytes(), stderr.Bytes(), err
}

type backgroundKey struct{}

// WithBackground marks ctx as background work (hot-plug): the plugins it
// runs get the lowest CPU priority (nice 19), so on a busy node pod
// start-up's plugins come first.
func WithBackground(ctx context.Context) context.Context {
	return context.WithValue(ctx, backgroundKey{}, true)
}

// IsBackground reports whether ctx is marked by WithBackground.
func IsBackground(ctx context.Context) bool {
	b, _ := ctx.Value(backgroundKey{}).(bool)
	return b
}

// backgroundNice is the nice value of background plugins.
const backgroundNice = 19

// startNiced starts c with nice 19 from the first instruction on: the
// fork happens on this OS thread, which is niced for the moment of the
// fork (a child inherits its parent thread's nice value) and then set back.
func startNiced(c *exec.Cmd) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := unix.Gettid()
	raw, err := unix.Getpriority(unix.PRIO_PROCESS, tid)
	if err != nil {
		return c.Start()
	}
	old := 20 - raw // the raw syscall returns 20 - nice
	if err := unix.Setpriority(unix.PRIO_PROCESS, tid, backgroundNice); err != nil {
		return c.Start()
	}
	err = c.Start()
	if rerr := unix.Setpriority(unix.PRIO_PROCESS, tid, old); rerr != nil {
		// This thread stays niced: keep it locked, so it ends with this
		// goroutine instead of serving others.
		runtime.LockOSThread()
	}
	return err
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// pluginErr turns a failed run into the plugin's own CNI error when it
// printed one, else a message from stderr or the exit status.
func pluginErr(ctx context.Context, pluginPath string, err error, stdout, stderr []byte) error {
	if ctx.Err() != nil {
		return fmt.Errorf("plugin %s did not finish before its deadline and was killed with its process group: %w", pluginPath, context.Cause(ctx))
	}
	var te types.Error
	switch {
	case len(stdout) > 0 && json.Unmarshal(stdout, &te) == nil && (te.Code != 0 || te.Msg != ""):
		return &te
	case len(stderr) > 0:
		return &types.Error{Code: CodePluginFailed, Msg: fmt.Sprintf("netplugin failed: %q", string(stderr))}
	default:
		return &types.Error{Code: CodePluginFailed, Msg: fmt.Sprintf("netplugin failed with no error message: %v", err)}
	}
}
