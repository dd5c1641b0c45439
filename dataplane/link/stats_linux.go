//go:build linux

package link

import (
	"net"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ReadKernelDrops returns how many frames the kernel dropped for this
// socket since the previous call (since Open for the first): frames that
// arrived while the socket's receive queue was full, which the dataplane
// never saw and so cannot count itself. The kernel resets its counter on
// every read, so there must be one reader. It does not allocate (the
// engine reads replica ports every probe round).
func (p *Port) ReadKernelDrops() (uint64, error) {
	if p.fd < 0 {
		return 0, &PortError{Op: "packet statistics", Port: p.name, Err: net.ErrClosed}
	}
	n := uint32(unsafe.Sizeof(p.stats))
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(p.fd), unix.SOL_PACKET, unix.PACKET_STATISTICS,
		uintptr(unsafe.Pointer(&p.stats)), uintptr(unsafe.Pointer(&n)), 0)
	if e != 0 {
		return 0, &PortError{Op: "packet statistics", Port: p.name, Err: e}
	}
	return uint64(p.stats.Drops), nil
}
