package lab

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"time"

	"golang.org/x/sys/unix"
)

// netnsDir is where "ip netns add" bind-mounts named namespaces.
const netnsDir = "/run/netns"

// InNS runs fn on a fresh goroutine whose OS thread is locked and switched
// into ns, and returns fn's error (a panic in fn becomes an error). The
// thread is never unlocked, so the Go runtime destroys it when the
// goroutine ends instead of reusing a thread in the wrong namespace.
// Sockets opened in fn stay in ns and may be used from anywhere afterwards.
func (l *Lab) InNS(ns string, fn func() error) error {
	if err := l.usable(ns); err != nil {
		return err
	}
	return inNS(ns, fn)
}

func inNS(ns string, fn func() error) error {
	f, err := os.Open(filepath.Join(netnsDir, ns))
	if err != nil {
		return fmt.Errorf("lab: open namespace %s: %w", ns, err)
	}
	defer f.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// Deliberately no UnlockOSThread: see the doc comment.
		defer func() {
			if r := recover(); r != nil {
				errc <- fmt.Errorf("lab: panic in namespace %s: %v\n%s", ns, r, debug.Stack())
			}
		}()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("lab: setns %s: %w", ns, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// Dial opens a connection from inside ns (see InNS); timeout 0 means none.
func (l *Lab) Dial(ns, network, addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := l.InNS(ns, func() error {
		var err error
		c, err = net.DialTimeout(network, addr, timeout)
		return err
	})
	return c, err
}

// Listen opens a listener inside ns (see InNS).
func (l *Lab) Listen(ns, network, addr string) (net.Listener, error) {
	var ln net.Listener
	err := l.InNS(ns, func() error {
		var err error
		ln, err = net.Listen(network, addr)
		return err
	})
	return ln, err
}
