//go:build linux

package link

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Poller waits on many file descriptors plus an internal eventfd that other
// goroutines use to wake it. Wait is for one goroutine; Wake is for any.
type Poller struct {
	efd     int
	pending atomic.Bool // a Wake has written to efd and Wait has not drained it
	pfds    []unix.PollFd
	drain   [8]byte // eventfd read buffer; a field so it never escapes per call
}

// wakeValue is the eventfd increment. It is a package variable that is only
// ever read, so concurrent Wakes can hand it to write(2) without allocating.
// An eventfd counter is a host-endian uint64.
var wakeValue = binary.NativeEndian.AppendUint64(nil, 1)

var errReadyLen = errors.New("link: Poller.Wait: len(ready) != len(fds)")

// NewPoller returns a Poller with its eventfd.
func NewPoller() (*Poller, error) {
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("link: eventfd: %w", err)
	}
	return &Poller{efd: efd}, nil
}

// Wait blocks until one of fds is readable or in error, Wake is called, or
// timeout elapses; a negative timeout waits forever and zero does not block.
// Timeouts are rounded up to whole milliseconds. ready[i] is set for each
// fds[i] with POLLIN, POLLERR, POLLHUP or POLLNVAL and cleared for the
// others; ready must have len(fds) elements. Negative fds are ignored, so a
// closed port's slot may stay in place. woken is true if Wake was called
// since the previous Wait. EINTR is retried with the remaining time. Wait
// does not allocate, except to grow its array when given more fds than
// before.
func (p *Poller) Wait(fds []int, ready []bool, timeout time.Duration) (woken bool, err error) {
	if len(ready) != len(fds) {
		return false, errReadyLen
	}
	n := len(fds) + 1
	if cap(p.pfds) < n {
		p.pfds = make([]unix.PollFd, n)
	}
	pf := p.pfds[:n]
	for i, fd := range fds {
		pf[i] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
		ready[i] = false
	}
	pf[n-1] = unix.PollFd{Fd: int32(p.efd), Events: unix.POLLIN}

	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	ms := pollMs(timeout)
	for {
		_, err := unix.Poll(pf, ms)
		if err == nil {
			break
		}
		if err != unix.EINTR {
			return false, fmt.Errorf("link: poll: %w", err)
		}
		if timeout > 0 {
			ms = pollMs(max(time.Until(deadline), 0))
		}
	}
	const readable = unix.POLLIN | unix.POLLERR | unix.POLLHUP | unix.POLLNVAL
	for i := range fds {
		ready[i] = pf[i].Revents&readable != 0
	}
	if pf[n-1].Revents != 0 {
		unix.Read(p.efd, p.drain[:])
		// Clear pending only after draining: a Wake that lands in between
		// skips its write, but this Wait reports it anyway.
		p.pending.Store(false)
		woken = true
	}
	return woken, nil
}

// pollMs converts a timeout to poll's milliseconds, rounding up so that a
// short positive timeout does not turn into a busy loop.
func pollMs(d time.Duration) int {
	if d < 0 {
		return -1
	}
	ms := (d + time.Millisecond - 1) / time.Millisecond
	if ms > 1<<31-1 {
		return -1
	}
	return int(ms)
}

// Wake makes the current or next Wait return with woken true. It is safe
// from any goroutine, never blocks, and costs a system call only when no
// wake-up is already pending. It must not be called after Close.
func (p *Poller) Wake() {
	if p.pending.CompareAndSwap(false, true) {
		unix.Write(p.efd, wakeValue)
	}
}

// Close releases the eventfd.
func (p *Poller) Close() error {
	if p.efd < 0 {
		return nil
	}
	err := unix.Close(p.efd)
	p.efd = -1
	return err
}
