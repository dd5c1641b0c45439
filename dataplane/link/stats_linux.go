//go:build linux

package link

import (
	"golang.org/x/sys/unix"
)

// ReadKernelDrops returns how many frames the kernel dropped for this
// socket since the previous call (since Open for the first): frames that
// arrived while the socket's receive queue was full, which the dataplane
// never saw and so cannot count itself. The kernel resets its counter on
// every read, so there must be one reader. It allocates; call it from
// housekeeping, not per packet.
func (p *Port) ReadKernelDrops() (uint64, error) {
	st, err := unix.GetsockoptTpacketStats(p.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err != nil {
		return 0, &PortError{Op: "packet statistics", Port: p.name, Err: err}
	}
	return uint64(st.Drops), nil
}
