package testutil

import (
	"os/exec"
	"syscall"
	"time"
)

// Proc is a process a test started and waits for in the background.
type Proc struct {
	Name string
	Cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start starts cmd with start (nil: cmd.Start; the harnesses pass a
// spawner that keeps Pdeathsig working) and waits for it in the
// background, running onExit (when set) once it has exited.
func Start(name string, cmd *exec.Cmd, start func(*exec.Cmd) error, onExit func()) (*Proc, error) {
	if start == nil {
		start = (*exec.Cmd).Start
	}
	if err := start(cmd); err != nil {
		return nil, err
	}
	p := &Proc{Name: name, Cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		if onExit != nil {
			onExit()
		}
		close(p.done)
	}()
	return p, nil
}

// Done is closed once the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err waits for the process and returns how it exited.
func (p *Proc) Err() error {
	<-p.done
	return p.err
}

// Stop sends sig (to the whole process group when the process leads one),
// waits up to grace, then sends SIGKILL and waits. It returns how the
// process exited; stopping one that already exited is fine.
func (p *Proc) Stop(sig syscall.Signal, grace time.Duration) error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	send := func(s syscall.Signal) {
		if a := p.Cmd.SysProcAttr; a != nil && a.Setpgid {
			_ = syscall.Kill(-p.Cmd.Process.Pid, s)
			return
		}
		_ = p.Cmd.Process.Signal(s)
	}
	send(sig)
	select {
	case <-p.done:
	case <-time.After(grace):
		send(syscall.SIGKILL)
		<-p.done
	}
	return p.err
}
