//go:build linux

package link

import (
	"encoding/binary"
	"fmt"
	"net"
	"runtime"
	"sync/atomic"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Port is an AF_PACKET socket bound to one interface.
type Port struct {
	fd    int
	index int
	name  string
	mac   [6]byte
	mtu   int
	vnet  bool

	// down is set when a read reported ENETDOWN. The kernel reports that
	// once and then unhooks the socket, and a later deletion of the
	// interface is not reported at all, so while down an empty read checks
	// whether the binding is still alive.
	// Both are atomic so that ReadBatch and WriteBatch may run on different
	// goroutines.
	down atomic.Bool
	// gone is the sticky error returned once the interface has disappeared.
	gone atomic.Pointer[PortError]

	// Reused recvmmsg/sendmmsg arrays; grown on first use, never shrunk.
	rmsgs []unix.Mmsghdr
	riovs []unix.Iovec
	wmsgs []unix.Mmsghdr
	wiovs []unix.Iovec
	wpoll [1]unix.PollFd
	stats unix.TpacketStats // ReadKernelDrops' scratch
}

// Bounded retries before WriteBatch/Write give up with ErrBackpressure.
const (
	writeRetries = 4
	// writeWaitMs is how long one retry waits for socket buffer space.
	writeWaitMs = 1
	// drainLimit bounds the frames discarded right after bind.
	drainLimit = 1 << 16
)

// Open opens a non-blocking AF_PACKET SOCK_RAW socket with protocol 0, sets
// PACKET_IGNORE_OUTGOING, optionally PACKET_VNET_HDR and promiscuous mode,
// then binds it with ETH_P_ALL to the interface called ifname, and finally
// discards whatever was queued before Open returns. The interface is looked
// up in the calling thread's network namespace. Errors name the interface.
func Open(ifname string, opts *Options) (*Port, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.RecvBuf <= 0 {
		o.RecvBuf = DefaultSocketBuffer
	}
	if o.SendBuf <= 0 {
		o.SendBuf = DefaultSocketBuffer
	}
	if ifname == "" || len(ifname) >= unix.IFNAMSIZ {
		return nil, &PortError{Op: "open", Port: fmt.Sprintf("%q", ifname), Err: unix.EINVAL}
	}

	// Protocol 0: the socket receives nothing until bind names both the
	// protocol and the interface, so other interfaces' frames never leak in.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, &PortError{Op: "open", Port: ifname, Err: fmt.Errorf("socket: %w", err)}
	}
	p := &Port{fd: fd, name: ifname, vnet: o.VNetHdr}
	fail := func(step string, err error) (*Port, error) {
		unix.Close(fd)
		pe := &PortError{Op: "open", Port: ifname, Err: fmt.Errorf("%s: %w", step, err)}
		if err == unix.ENODEV {
			pe.Kind = ErrPortGone
			pe.Err = fmt.Errorf("%s: no such interface: %w", step, err)
		}
		return nil, pe
	}

	// Query the interface through the socket itself so that the socket's
	// namespace, not some other thread's, is the one asked.
	var ifr ifreq
	copy(ifr.name[:], ifname)
	if err := ioctlIfreq(fd, unix.SIOCGIFINDEX, &ifr); err != nil {
		return fail("SIOCGIFINDEX", err)
	}
	p.index = int(int32(binary.NativeEndian.Uint32(ifr.data[:])))
	if err := ioctlIfreq(fd, unix.SIOCGIFMTU, &ifr); err != nil {
		return fail("SIOCGIFMTU", err)
	}
	p.mtu = int(int32(binary.NativeEndian.Uint32(ifr.data[:])))
	if err := ioctlIfreq(fd, unix.SIOCGIFHWADDR, &ifr); err != nil {
		return fail("SIOCGIFHWADDR", err)
	}
	copy(p.mac[:], ifr.data[2:8]) // struct sockaddr: family, then address

	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		return fail("PACKET_IGNORE_OUTGOING", err)
	}
	if o.VNetHdr {
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
			return fail("PACKET_VNET_HDR", err)
		}
	}
	if err := setBuf(fd, unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, o.RecvBuf); err != nil {
		return fail("SO_RCVBUF", err)
	}
	if err := setBuf(fd, unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, o.SendBuf); err != nil {
		return fail("SO_SNDBUF", err)
	}
	if o.Promisc {
		mreq := unix.PacketMreq{Ifindex: int32(p.index), Type: unix.PACKET_MR_PROMISC}
		if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
			return fail("PACKET_MR_PROMISC", err)
		}
	}
	if o.Filter != nil {
		if err := p.SetFilter(o.Filter); err != nil {
			return fail("SO_ATTACH_FILTER", err)
		}
	}
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: p.index}
	if err := unix.Bind(fd, sa); err != nil {
		return fail("bind", err)
	}
	// Nothing should be queued with protocol 0, but a frame that slipped in
	// between socket and bind would belong to an unknown interface.
	var scratch [1]byte
	for i := 0; i < drainLimit; i++ {
		if _, err := unix.Read(fd, scratch[:]); err != nil && err != unix.EINTR {
			break
		}
	}
	return p, nil
}

// setBuf sets a socket buffer size, preferring the FORCE variant that may
// exceed net.core.[rw]mem_max but needs CAP_NET_ADMIN.
func setBuf(fd, force, plain, size int) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, force, size); err == nil {
		return nil
	}
	return unix.SetsockoptInt(fd, unix.SOL_SOCKET, plain, size)
}

// ifreq is struct ifreq: a name and a union large enough for every member
// on 64-bit systems (struct ifmap is the largest, at 24 bytes).
type ifreq struct {
	name [unix.IFNAMSIZ]byte
	data [24]byte
}

func ioctlIfreq(fd int, req uint, ifr *ifreq) error {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(unsafe.Pointer(ifr)))
	if e != 0 {
		return e
	}
	return nil
}

// htons converts a 16-bit value to network byte order.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

// Name returns the interface name the port was opened with.
func (p *Port) Name() string { return p.name }

// Index returns the interface index.
func (p *Port) Index() int { return p.index }

// MAC returns the interface's hardware address as it was at Open.
func (p *Port) MAC() [6]byte { return p.mac }

// MTU returns the interface's MTU as it was at Open.
func (p *Port) MTU() int { return p.mtu }

// VNetHdr reports whether frames carry a VNetHdrLen-byte virtio_net_hdr.
func (p *Port) VNetHdr() bool { return p.vnet }

// Fd returns the socket's file descriptor, for a Poller. It is -1 after
// Close.
func (p *Port) Fd() int { return p.fd }

// ReadBatch receives up to min(len(bufs), len(sizes)) frames with one
// recvmmsg(MSG_DONTWAIT) call, frame i into bufs[i] with its length in
// sizes[i]. With VNetHdr the VNetHdrLen-byte header is at the start of each
// buffer and counted in its size. A frame that did not fit its buffer is
// reported with sizes[i] = -1 so that the caller counts a drop; size buffers
// for 64 KiB GSO super-frames plus the header when VNetHdr is on.
//
// It returns (0, nil) when nothing is queued. Once the interface is gone it
// returns an error matching ErrPortGone on every call; while the interface is
// down it may return an error matching ErrLinkDown. It does not allocate,
// except to grow its internal arrays when called with more buffers than
// before.
func (p *Port) ReadBatch(bufs [][]byte, sizes []int) (int, error) {
	if g := p.gone.Load(); g != nil {
		return 0, g
	}
	if p.fd < 0 {
		return 0, &PortError{Op: "read", Port: p.name, Err: net.ErrClosed}
	}
	n := min(len(bufs), len(sizes))
	if n == 0 {
		return 0, nil
	}
	if len(p.rmsgs) < n {
		p.rmsgs, p.riovs = makeMsgs(n)
	}
	for i := range n {
		setIov(&p.riovs[i], bufs[i])
		p.rmsgs[i].Hdr.Flags = 0
		p.rmsgs[i].Len = 0
	}
	for {
		r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(p.fd),
			uintptr(unsafe.Pointer(&p.rmsgs[0])), uintptr(n), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			got := int(r)
			for i := range got {
				if p.rmsgs[i].Hdr.Flags&unix.MSG_TRUNC != 0 {
					sizes[i] = -1
				} else {
					sizes[i] = int(p.rmsgs[i].Len)
				}
			}
			if got > 0 && p.down.Load() {
				p.down.Store(false)
			}
			return got, nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			if p.down.Load() && p.detached() {
				return 0, p.markGone("read", unix.ENODEV)
			}
			return 0, nil
		}
		return 0, p.errno("read", e)
	}
}

// WriteBatch sends bufs with sendmmsg, one frame per buffer (each starting
// with a virtio_net_hdr when VNetHdr is on), and retries the remainder after
// partial sends. It returns the number of frames sent and the first error;
// bufs[n] is then the frame that failed. When the socket buffer or the device
// queue stays full (EAGAIN, ENOBUFS) through a few short retries the error is
// ErrBackpressure. Frames that exceed the MTU without GSO metadata fail with
// an error matching unix.EMSGSIZE. It does not allocate, except to grow its
// internal arrays when called with more buffers than before.
func (p *Port) WriteBatch(bufs [][]byte) (int, error) {
	if g := p.gone.Load(); g != nil {
		return 0, g
	}
	if p.fd < 0 {
		return 0, &PortError{Op: "write", Port: p.name, Err: net.ErrClosed}
	}
	n := len(bufs)
	if n == 0 {
		return 0, nil
	}
	if len(p.wmsgs) < n {
		p.wmsgs, p.wiovs = makeMsgs(n)
	}
	for i, b := range bufs {
		setIov(&p.wiovs[i], b)
		p.wmsgs[i].Hdr.Flags = 0
		p.wmsgs[i].Len = 0
	}
	sent, tries := 0, 0
	for sent < n {
		r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(p.fd),
			uintptr(unsafe.Pointer(&p.wmsgs[sent])), uintptr(n-sent), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			if r > 0 {
				sent += int(r)
				tries = 0
				continue
			}
			e = unix.EAGAIN // no progress without an error: treat as full
		case unix.EINTR:
			continue
		}
		if e == unix.EAGAIN || e == unix.ENOBUFS {
			if tries++; tries > writeRetries {
				return sent, ErrBackpressure
			}
			p.waitWritable(e)
			continue
		}
		return sent, p.errno("write", e)
	}
	return sent, nil
}

// Write sends one frame (starting with a virtio_net_hdr when VNetHdr is on)
// with the same error handling as WriteBatch.
func (p *Port) Write(frame []byte) error {
	if g := p.gone.Load(); g != nil {
		return g
	}
	if p.fd < 0 {
		return &PortError{Op: "write", Port: p.name, Err: net.ErrClosed}
	}
	var ptr unsafe.Pointer
	if len(frame) > 0 {
		ptr = unsafe.Pointer(&frame[0])
	}
	for tries := 0; ; {
		_, _, e := unix.Syscall(unix.SYS_WRITE, uintptr(p.fd), uintptr(ptr), uintptr(len(frame)))
		switch e {
		case 0:
			return nil
		case unix.EINTR:
			continue
		case unix.EAGAIN, unix.ENOBUFS:
			if tries++; tries > writeRetries {
				return ErrBackpressure
			}
			p.waitWritable(e)
			continue
		}
		return p.errno("write", e)
	}
}

// waitWritable pauses before a transmit retry. EAGAIN means the socket's
// send buffer is full, which poll can wait on; ENOBUFS means the device or
// its qdisc dropped the frame, which nothing signals, so just yield.
func (p *Port) waitWritable(e unix.Errno) {
	if e == unix.EAGAIN {
		p.wpoll[0] = unix.PollFd{Fd: int32(p.fd), Events: unix.POLLOUT}
		unix.Poll(p.wpoll[:], writeWaitMs)
		return
	}
	runtime.Gosched()
}

// Check reports whether the port can pass traffic: nil, or an error matching
// ErrLinkDown or ErrPortGone. It asks the kernel, so it is for use on link
// events, not per frame.
func (p *Port) Check() error {
	if g := p.gone.Load(); g != nil {
		return g
	}
	if p.fd < 0 {
		return &PortError{Op: "check", Port: p.name, Err: net.ErrClosed}
	}
	if p.detached() {
		return p.markGone("check", unix.ENODEV)
	}
	var ifr ifreq
	binary.NativeEndian.PutUint32(ifr.data[:], uint32(p.index))
	if err := ioctlIfreq(p.fd, unix.SIOCGIFNAME, &ifr); err != nil {
		return p.markGone("check", err)
	}
	if err := ioctlIfreq(p.fd, unix.SIOCGIFFLAGS, &ifr); err != nil {
		return p.markGone("check", err)
	}
	flags := binary.NativeEndian.Uint16(ifr.data[:])
	if flags&unix.IFF_UP == 0 || flags&unix.IFF_RUNNING == 0 {
		return &PortError{Op: "check", Port: p.name, Kind: ErrLinkDown, Err: unix.ENETDOWN}
	}
	return nil
}

// detached reports whether the kernel has dropped the socket's binding, which
// happens when the interface is unregistered (deleted or moved to another
// namespace): getsockname then reports interface index -1.
func (p *Port) detached() bool {
	sa, err := unix.Getsockname(p.fd)
	if err != nil {
		return false
	}
	ll, ok := sa.(*unix.SockaddrLinklayer)
	return ok && ll.Ifindex != p.index
}

// errno classifies a failed read or write.
func (p *Port) errno(op string, e unix.Errno) error {
	switch e {
	case unix.ENXIO, unix.ENODEV:
		return p.markGone(op, e)
	case unix.ENETDOWN:
		// Deletion takes the link down first, so tell the two apart.
		if p.detached() {
			return p.markGone(op, e)
		}
		p.down.Store(true)
		return &PortError{Op: op, Port: p.name, Kind: ErrLinkDown, Err: e}
	}
	return &PortError{Op: op, Port: p.name, Err: e}
}

func (p *Port) markGone(op string, err error) error {
	g := &PortError{Op: op, Port: p.name, Kind: ErrPortGone, Err: err}
	if !p.gone.CompareAndSwap(nil, g) {
		g = p.gone.Load()
	}
	return g
}

// Close closes the socket. Closing twice is harmless.
func (p *Port) Close() error {
	if p.fd < 0 {
		return nil
	}
	err := unix.Close(p.fd)
	p.fd = -1
	if err != nil {
		return &PortError{Op: "close", Port: p.name, Err: err}
	}
	return nil
}

// makeMsgs allocates n message headers, each pointing at its own iovec.
func makeMsgs(n int) ([]unix.Mmsghdr, []unix.Iovec) {
	msgs := make([]unix.Mmsghdr, n)
	iovs := make([]unix.Iovec, n)
	for i := range msgs {
		msgs[i].Hdr.Iov = &iovs[i]
		msgs[i].Hdr.SetIovlen(1)
	}
	return msgs, iovs
}

func setIov(iov *unix.Iovec, b []byte) {
	if len(b) == 0 {
		iov.Base = nil
	} else {
		iov.Base = &b[0]
	}
	iov.SetLen(len(b))
}

// maxFilterLen is the kernel's limit on a classic BPF program (BPF_MAXINSNS).
const maxFilterLen = 4096

// SetFilter attaches prog (classic BPF) to the socket in place of any
// filter before it; frames already queued were accepted by the old one.
func (p *Port) SetFilter(prog []bpf.RawInstruction) error {
	if len(prog) == 0 || len(prog) > maxFilterLen {
		return &PortError{Op: "filter", Port: p.name, Err: unix.EINVAL}
	}
	f := make([]unix.SockFilter, len(prog))
	for i, in := range prog {
		f[i] = unix.SockFilter{Code: in.Op, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(f)), Filter: &f[0]}
	if err := unix.SetsockoptSockFprog(p.fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		return &PortError{Op: "filter", Port: p.name, Err: err}
	}
	return nil
}
