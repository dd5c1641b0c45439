package soak

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/ftbridge/ftbridge/integration/lab"
	"golang.org/x/sys/unix"
)

// TCP flags for Segment.Flags.
const (
	FlagFIN = 0x01
	FlagSYN = 0x02
	FlagRST = 0x04
	FlagPSH = 0x08
	FlagACK = 0x10
)

// Segment describes one hand-made TCP/IPv4 frame, for floods and other
// hostile input. Frame fills in lengths and valid checksums.
type Segment struct {
	SrcMAC, DstMAC net.HardwareAddr
	Src, Dst       netip.AddrPort
	Seq, Ack       uint32
	Flags          uint8
	Window         uint16
	// Options are raw TCP options (padded to 4 bytes by Frame).
	Options []byte
	Payload []byte
	// IPID is the IPv4 identification.
	IPID uint16
}

// MSSOption returns the TCP option announcing mss.
func MSSOption(mss uint16) []byte { return []byte{2, 4, byte(mss >> 8), byte(mss)} }

// Frame encodes the segment as an Ethernet frame.
func (s Segment) Frame() []byte {
	opts := s.Options
	for len(opts)%4 != 0 {
		opts = append(opts[:len(opts):len(opts)], 1) // NOP padding
	}
	tcpLen := 20 + len(opts) + len(s.Payload)
	f := make([]byte, 14+20+tcpLen)
	copy(f[0:6], s.DstMAC)
	copy(f[6:12], s.SrcMAC)
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:34]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+tcpLen))
	binary.BigEndian.PutUint16(ip[4:], s.IPID)
	binary.BigEndian.PutUint16(ip[6:], 0x4000) // DF
	ip[8] = 64
	ip[9] = 6
	src, dst := s.Src.Addr().As4(), s.Dst.Addr().As4()
	copy(ip[12:16], src[:])
	copy(ip[16:20], dst[:])
	binary.BigEndian.PutUint16(ip[10:], checksum(ip, 0))
	tcp := f[34:]
	binary.BigEndian.PutUint16(tcp[0:], s.Src.Port())
	binary.BigEndian.PutUint16(tcp[2:], s.Dst.Port())
	binary.BigEndian.PutUint32(tcp[4:], s.Seq)
	binary.BigEndian.PutUint32(tcp[8:], s.Ack)
	tcp[12] = byte((20 + len(opts)) / 4 << 4)
	tcp[13] = s.Flags
	binary.BigEndian.PutUint16(tcp[14:], s.Window)
	copy(tcp[20:], opts)
	copy(tcp[20+len(opts):], s.Payload)
	// Pseudo-header: addresses, protocol, TCP length.
	var ph uint32
	for i := 0; i < 4; i += 2 {
		ph += uint32(binary.BigEndian.Uint16(src[i:])) + uint32(binary.BigEndian.Uint16(dst[i:]))
	}
	ph += 6 + uint32(tcpLen)
	binary.BigEndian.PutUint16(tcp[16:], checksum(tcp, ph))
	return f
}

// checksum is the Internet checksum of b, starting from the partial sum
// sum.
func checksum(b []byte, sum uint32) uint16 {
	for len(b) >= 2 {
		sum += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// RawSender sends hand-made frames out of one interface of a lab
// namespace, bypassing that namespace's TCP stack: a flood from the
// client side, for example.
type RawSender struct {
	fd      int
	ifindex int
	// MAC is the interface's own address (a natural source MAC).
	MAC net.HardwareAddr
	// Sent and Failed count the frames handed to the kernel and refused.
	Sent, Failed uint64
}

// NewRawSender opens an AF_PACKET socket on dev in ns.
func NewRawSender(l *lab.Lab, ns, dev string) (*RawSender, error) {
	ifi, err := l.Interface(ns, dev)
	if err != nil {
		return nil, err
	}
	r := &RawSender{ifindex: ifi.Index, MAC: ifi.HardwareAddr}
	err = l.InNS(ns, func() error {
		// Protocol 0: send only; the socket receives nothing, so it can
		// never fill up with the traffic it provokes.
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			return err
		}
		r.fd = fd
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("soak: raw socket on %s in %s: %w", dev, ns, err)
	}
	return r, nil
}

// Send sends one frame. ENOBUFS (the interface queue is full: the flood
// outruns the link) is counted in Failed and not returned.
func (r *RawSender) Send(frame []byte) error {
	err := unix.Sendto(r.fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: r.ifindex})
	switch {
	case err == nil:
		r.Sent++
	case errors.Is(err, unix.ENOBUFS) || errors.Is(err, unix.EAGAIN):
		r.Failed++
	default:
		r.Failed++
		return err
	}
	return nil
}

// Close closes the socket.
func (r *RawSender) Close() error { return unix.Close(r.fd) }
