package link

import (
	"encoding/binary"
	"errors"
	"net"
	"strings"

	"golang.org/x/net/bpf"
)

// Options configures Open. A nil *Options means the defaults.
type Options struct {
	// VNetHdr enables PACKET_VNET_HDR: every frame read and written is
	// prefixed by a VNetHdrLen-byte virtio_net_hdr carrying GSO and
	// checksum-offload metadata.
	VNetHdr bool
	// Promisc adds a PACKET_MR_PROMISC membership, which puts the interface
	// into promiscuous mode for as long as the socket is open.
	Promisc bool
	// RecvBuf and SendBuf size the socket buffers in bytes, set with
	// SO_RCVBUFFORCE/SO_SNDBUFFORCE (falling back to SO_RCVBUF/SO_SNDBUF
	// without CAP_NET_ADMIN). Zero means DefaultSocketBuffer.
	RecvBuf, SendBuf int
	// Filter, when set, is a classic BPF program attached to the socket
	// (SO_ATTACH_FILTER) before it is bound: the kernel delivers only the
	// frames it accepts. It sees each frame from its Ethernet header, without
	// the virtio header. Several sockets on one interface, each with a
	// filter accepting a disjoint share, split its traffic between loops.
	Filter []bpf.RawInstruction
}

// DefaultSocketBuffer is the socket buffer size used when Options leaves
// RecvBuf or SendBuf at zero.
const DefaultSocketBuffer = 4 << 20

// LinkEvent reports the state of an interface, from rtnetlink (RTMGRP_LINK)
// or from LinkState.
type LinkEvent struct {
	// Name is the interface name.
	Name string
	// Index is the interface index.
	Index int
	// Up is true when the interface is administratively up and operationally
	// running (IFF_UP and IFF_RUNNING; running implies carrier).
	Up bool
	// Deleted is true when the interface was removed (RTM_DELLINK).
	Deleted bool
	// MAC is the interface's hardware address, zero if it has none of
	// Ethernet length.
	MAC [6]byte
}

var (
	// ErrBackpressure is returned by WriteBatch and Write when the socket
	// buffer or the device queue stayed full through a short, bounded retry.
	// The caller decides whether to drop or to retry later.
	ErrBackpressure = errors.New("link: transmit backpressure")
	// ErrPortGone is returned (wrapped in a *PortError) when the interface a
	// port is bound to no longer exists in the socket's network namespace.
	// The port is useless from then on; close it and reopen by name once the
	// interface reappears.
	ErrPortGone = errors.New("link: interface gone")
	// ErrLinkDown is returned (wrapped in a *PortError) when the interface is
	// administratively down. The port recovers by itself when it comes up.
	ErrLinkDown = errors.New("link: interface down")
	// ErrEventsLost is returned by Watcher.Read when the kernel dropped
	// notifications because the socket buffer overflowed. The caller should
	// resynchronise with Watcher.Dump.
	ErrEventsLost = errors.New("link: link notifications lost")
)

// PortError describes a failed operation on a port.
type PortError struct {
	// Op is the operation: "open", "read" or "write".
	Op string
	// Port is the interface name.
	Port string
	// Kind is ErrPortGone, ErrLinkDown, or nil for other failures.
	Kind error
	// Err is the underlying error, usually a unix.Errno.
	Err error
}

// Error implements error.
func (e *PortError) Error() string {
	s := "link: " + e.Op + " " + e.Port + ": "
	if e.Kind != nil {
		s += strings.TrimPrefix(e.Kind.Error(), "link: ") + ": "
	}
	return s + e.Err.Error()
}

// Unwrap lets errors.Is match both the kind (ErrPortGone, ErrLinkDown) and
// the underlying errno.
func (e *PortError) Unwrap() []error {
	if e.Kind == nil {
		return []error{e.Err}
	}
	return []error{e.Kind, e.Err}
}

// LinkState returns the current state of the interface called name in the
// calling thread's network namespace, with ok false if there is none.
func LinkState(name string) (ev LinkEvent, ok bool) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return LinkEvent{}, false
	}
	ev = LinkEvent{
		Name:  ifi.Name,
		Index: ifi.Index,
		Up:    ifi.Flags&net.FlagUp != 0 && ifi.Flags&net.FlagRunning != 0,
	}
	if len(ifi.HardwareAddr) == len(ev.MAC) {
		copy(ev.MAC[:], ifi.HardwareAddr)
	}
	return ev, true
}

// VNetHdrLen is the size of the virtio_net_hdr that PACKET_VNET_HDR puts in
// front of every frame.
const VNetHdrLen = 10

// Flags and GSO types of a VNetHeader (include/uapi/linux/virtio_net.h).
const (
	VNetFlagNeedsCsum = 1 // Csum{Start,Offset} describe a checksum still to be computed
	VNetFlagDataValid = 2 // the checksum was verified by the receiver

	VNetGSONone  = 0    // not a GSO frame
	VNetGSOTCPv4 = 1    // TCP over IPv4 super-frame
	VNetGSOUDP   = 3    // UDP fragmentation offload
	VNetGSOTCPv6 = 4    // TCP over IPv6 super-frame
	VNetGSOUDPL4 = 5    // UDP segmentation offload
	VNetGSOECN   = 0x80 // the super-frame carries ECN CWR; or'ed into GSOType
)

// VNetHeader is a decoded virtio_net_hdr. AF_PACKET uses the legacy virtio
// layout in host byte order.
type VNetHeader struct {
	Flags      uint8
	GSOType    uint8
	HdrLen     uint16 // length of the headers to copy into every segment
	GSOSize    uint16 // payload bytes per segment (the MSS)
	CsumStart  uint16 // offset from the Ethernet header where checksumming starts
	CsumOffset uint16 // offset from CsumStart where the checksum is stored
}

// DecodeVNetHeader decodes the header at the start of b, which must hold at
// least VNetHdrLen bytes.
func DecodeVNetHeader(b []byte) VNetHeader {
	_ = b[VNetHdrLen-1]
	return VNetHeader{
		Flags:      b[0],
		GSOType:    b[1],
		HdrLen:     binary.NativeEndian.Uint16(b[2:]),
		GSOSize:    binary.NativeEndian.Uint16(b[4:]),
		CsumStart:  binary.NativeEndian.Uint16(b[6:]),
		CsumOffset: binary.NativeEndian.Uint16(b[8:]),
	}
}

// Encode writes h to the start of b, which must hold at least VNetHdrLen
// bytes.
func (h VNetHeader) Encode(b []byte) {
	_ = b[VNetHdrLen-1]
	b[0] = h.Flags
	b[1] = h.GSOType
	binary.NativeEndian.PutUint16(b[2:], h.HdrLen)
	binary.NativeEndian.PutUint16(b[4:], h.GSOSize)
	binary.NativeEndian.PutUint16(b[6:], h.CsumStart)
	binary.NativeEndian.PutUint16(b[8:], h.CsumOffset)
}
