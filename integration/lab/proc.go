package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Command returns a command that runs name inside ns via
// "ip netns exec ns name args...". It is not recorded: use Start for
// long-running processes so Close can kill them. For a namespace that is
// not the lab's, the command fails on Start/Run.
func (l *Lab) Command(ns string, name string, args ...string) *exec.Cmd {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
	if err := l.usable(ns); err != nil {
		// exec.Cmd reports Err from Start, so misuse cannot run anything.
		cmd.Err = err
	}
	return cmd
}

// Run runs name inside ns to completion and returns its combined output;
// on failure the output is part of the error.
func (l *Lab) Run(ns string, name string, args ...string) (string, error) {
	return runOut(l.Command(ns, name, args...))
}

// Proc is a long-running process started by Lab.Start.
type Proc struct {
	// Cmd is the underlying command; use the methods rather than Cmd.Wait.
	Cmd *exec.Cmd
	// LogPath is the file receiving the process's stdout and stderr.
	LogPath string

	ns     string
	exited chan struct{} // closed once the process has exited (maybe not reaped)

	mu      sync.Mutex
	reaped  bool
	waitErr error
}

// Start starts name inside ns as a long-running process in its own process
// group, records it for Close, and sends its stdout and stderr to a log
// file under Dir.
func (l *Lab) Start(ns string, name string, args ...string) (*Proc, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.start(ns, name, args...)
}

// start is Start for callers holding l.mu.
func (l *Lab) start(ns string, name string, args ...string) (*Proc, error) {
	if l.closed {
		return nil, errors.New("lab: closed")
	}
	if err := l.usable(ns); err != nil {
		return nil, err
	}
	l.seq++
	logPath := filepath.Join(l.dir, fmt.Sprintf("%03d-%s-%s.log", l.seq, ns, filepath.Base(name)))
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	// The child has its own copy of the descriptor; ours is not needed.
	defer f.Close()
	cmd := l.Command(ns, name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	// Own process group: Kill and Close can take down everything the
	// process forked (nginx workers, redis children) without ever
	// signalling anything by name. ip netns exec execs in place, so the
	// recorded PID is the program itself.
	// No Pdeathsig: it fires when the forking OS thread exits, and Go
	// discards threads (Dial and InNS retire their setns'd threads), which
	// would kill a healthy replica at random. Close reaps instead.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("lab: start %s in %s: %w", name, ns, err)
	}
	p := &Proc{Cmd: cmd, LogPath: logPath, ns: ns, exited: make(chan struct{})}
	l.procs = append(l.procs, p)
	go p.watch()
	return p, nil
}

// watch notices the exit without reaping (WNOWAIT): while the zombie
// exists its PID, and so its process-group ID, cannot be reused, which
// keeps a later group kill aimed at our own processes only.
func (p *Proc) watch() {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, p.Cmd.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			break
		}
	}
	close(p.exited)
}

// Pid is the process's PID (also its process-group ID).
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// Signal sends sig to the process (not its group), e.g. SIGSTOP to make a
// gray failure. It returns os.ErrProcessDone once the process was reaped.
func (p *Proc) Signal(sig os.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reaped {
		return os.ErrProcessDone
	}
	return p.Cmd.Process.Signal(sig)
}

// Kill sends SIGKILL to the process's group and waits for the process. It
// returns nil when the process is gone, however it ended; calling it again
// is harmless.
func (p *Proc) Kill() error {
	p.mu.Lock()
	if !p.reaped {
		if err := unix.Kill(-p.Pid(), unix.SIGKILL); err != nil && err != unix.ESRCH {
			p.mu.Unlock()
			return fmt.Errorf("lab: kill process group %d: %w", p.Pid(), err)
		}
	}
	p.mu.Unlock()
	_ = p.Wait() // "signal: killed" is the expected outcome, not an error.
	return nil
}

// Wait waits for the process to exit, kills whatever is left of its
// process group (nothing a lab started may outlive it), reaps it and
// returns its exit error (nil for status 0). Every call returns the same
// result.
func (p *Proc) Wait() error {
	<-p.exited
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.reaped {
		// Still a zombie, so the group ID is still ours.
		_ = unix.Kill(-p.Pid(), unix.SIGKILL)
		p.waitErr = p.Cmd.Wait()
		p.reaped = true
	}
	return p.waitErr
}

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// Log returns the process's output logged so far (empty if unreadable).
func (p *Proc) Log() string {
	b, _ := os.ReadFile(p.LogPath)
	return string(b)
}
