//go:build !linux

package link

import (
	"errors"
	"time"

	"golang.org/x/net/bpf"
)

// Port is an AF_PACKET socket bound to one interface. It exists only on
// Linux; elsewhere Open fails with errors.ErrUnsupported.
type Port struct{}

// Open is not supported on this system.
func Open(ifname string, opts *Options) (*Port, error) {
	return nil, &PortError{Op: "open", Port: ifname, Err: errors.ErrUnsupported}
}

// Name returns "".
func (p *Port) Name() string { return "" }

// Index returns 0.
func (p *Port) Index() int { return 0 }

// MAC returns the zero address.
func (p *Port) MAC() [6]byte { return [6]byte{} }

// MTU returns 0.
func (p *Port) MTU() int { return 0 }

// VNetHdr returns false.
func (p *Port) VNetHdr() bool { return false }

// Fd returns -1.
func (p *Port) Fd() int { return -1 }

// ReadBatch is not supported on this system.
func (p *Port) ReadBatch(bufs [][]byte, sizes []int) (int, error) {
	return 0, errors.ErrUnsupported
}

// WriteBatch is not supported on this system.
func (p *Port) WriteBatch(bufs [][]byte) (int, error) { return 0, errors.ErrUnsupported }

// Write is not supported on this system.
func (p *Port) Write(frame []byte) error { return errors.ErrUnsupported }

// Check is not supported on this system.
func (p *Port) Check() error { return errors.ErrUnsupported }

// Close does nothing.
func (p *Port) Close() error { return nil }

// Poller waits on file descriptors. It exists only on Linux.
type Poller struct{}

// NewPoller is not supported on this system.
func NewPoller() (*Poller, error) { return nil, errors.ErrUnsupported }

// Wait is not supported on this system.
func (p *Poller) Wait(fds []int, ready []bool, timeout time.Duration) (woken bool, err error) {
	return false, errors.ErrUnsupported
}

// Wake does nothing.
func (p *Poller) Wake() {}

// Close does nothing.
func (p *Poller) Close() error { return nil }

// Watcher reports link changes. It exists only on Linux.
type Watcher struct{}

// NewWatcher is not supported on this system.
func NewWatcher() (*Watcher, error) { return nil, errors.ErrUnsupported }

// Fd returns -1.
func (w *Watcher) Fd() int { return -1 }

// Read is not supported on this system.
func (w *Watcher) Read() ([]LinkEvent, error) { return nil, errors.ErrUnsupported }

// Dump is not supported on this system.
func (w *Watcher) Dump() ([]LinkEvent, error) { return nil, errors.ErrUnsupported }

// Close does nothing.
func (w *Watcher) Close() error { return nil }

// ReadKernelDrops is not supported on this system.
func (p *Port) ReadKernelDrops() (uint64, error) { return 0, errors.ErrUnsupported }

// SetFilter is not supported on this system.
func (p *Port) SetFilter(prog []bpf.RawInstruction) error { return errors.ErrUnsupported }
