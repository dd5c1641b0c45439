package pkt

import "encoding/binary"

// TCPMinLen is the length of a TCP header without options.
const TCPMinLen = 20

// TCPMaxHeaderLen is the largest TCP header a 4-bit data offset can describe.
const TCPMaxHeaderLen = 60

// TCPFlags holds the eight flag bits of the TCP header's 14th byte.
type TCPFlags uint8

// TCP flag bits.
const (
	TCPFlagFin TCPFlags = 1 << 0
	TCPFlagSyn TCPFlags = 1 << 1
	TCPFlagRst TCPFlags = 1 << 2
	TCPFlagPsh TCPFlags = 1 << 3
	TCPFlagAck TCPFlags = 1 << 4
	TCPFlagUrg TCPFlags = 1 << 5
	TCPFlagEce TCPFlags = 1 << 6
	TCPFlagCwr TCPFlags = 1 << 7
)

// tcpFlagNames is indexed by bit number.
var tcpFlagNames = [8]string{"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"}

// String returns the set flags joined by '|' in bit order, for example
// "SYN|ACK", or "none" when no flag is set.
func (f TCPFlags) String() string {
	if f == 0 {
		return "none"
	}
	// Eight names of at most three letters plus separators fit in 31 bytes.
	var buf [32]byte
	out := buf[:0]
	for i, name := range tcpFlagNames {
		if f&(1<<i) == 0 {
			continue
		}
		if len(out) > 0 {
			out = append(out, '|')
		}
		out = append(out, name...)
	}
	return string(out)
}

// Has reports whether every flag in x is set in f.
func (f TCPFlags) Has(x TCPFlags) bool {
	return f&x == x
}

// Byte offsets of TCP header fields.
const (
	tcpSrcPort    = 0
	tcpDstPort    = 2
	tcpSeq        = 4
	tcpAck        = 8
	tcpDataOffset = 12
	tcpFlags      = 13
	tcpWindow     = 14
	tcpChecksum   = 16
	tcpUrgent     = 18
)

// TCP is a view of a TCP segment (header and payload). Accessors assume
// Check succeeded.
type TCP []byte

// Check validates the header length: at least TCPMinLen bytes, a data offset
// of at least 5 words (ErrBadHeaderLen), and a header that fits in t
// (ErrTruncated). It does not look at the options or the checksum.
func (t TCP) Check() error {
	if len(t) < TCPMinLen {
		return ErrTruncated
	}
	hl := t.HeaderLen()
	if hl < TCPMinLen {
		return ErrBadHeaderLen
	}
	if hl > len(t) {
		return ErrTruncated
	}
	return nil
}

// SrcPort returns the source port.
func (t TCP) SrcPort() uint16 {
	return binary.BigEndian.Uint16(t[tcpSrcPort:])
}

// DstPort returns the destination port.
func (t TCP) DstPort() uint16 {
	return binary.BigEndian.Uint16(t[tcpDstPort:])
}

// SetSrcPort sets the source port. It does not update the checksum.
func (t TCP) SetSrcPort(p uint16) {
	binary.BigEndian.PutUint16(t[tcpSrcPort:], p)
}

// SetDstPort sets the destination port. It does not update the checksum.
func (t TCP) SetDstPort(p uint16) {
	binary.BigEndian.PutUint16(t[tcpDstPort:], p)
}

// Seq returns the sequence number.
func (t TCP) Seq() uint32 {
	return binary.BigEndian.Uint32(t[tcpSeq:])
}

// Ack returns the acknowledgment number.
func (t TCP) Ack() uint32 {
	return binary.BigEndian.Uint32(t[tcpAck:])
}

// SetSeq sets the sequence number. It does not update the checksum.
func (t TCP) SetSeq(v uint32) {
	binary.BigEndian.PutUint32(t[tcpSeq:], v)
}

// SetAck sets the acknowledgment number. It does not update the checksum.
func (t TCP) SetAck(v uint32) {
	binary.BigEndian.PutUint32(t[tcpAck:], v)
}

// HeaderLen returns the header length in bytes (data offset * 4).
func (t TCP) HeaderLen() int {
	return int(t[tcpDataOffset]>>4) * 4
}

// SetHeaderLen sets the data offset from a length in bytes (a multiple of 4
// between 20 and 60). It clears the reserved bits and the obsolete NS flag.
func (t TCP) SetHeaderLen(n int) {
	t[tcpDataOffset] = byte(n/4) << 4
}

// Flags returns the flag byte.
func (t TCP) Flags() TCPFlags {
	return TCPFlags(t[tcpFlags])
}

// SetFlags sets the flag byte. It does not update the checksum.
func (t TCP) SetFlags(f TCPFlags) {
	t[tcpFlags] = byte(f)
}

// Window returns the (unscaled) receive window.
func (t TCP) Window() uint16 {
	return binary.BigEndian.Uint16(t[tcpWindow:])
}

// SetWindow sets the receive window. It does not update the checksum.
func (t TCP) SetWindow(w uint16) {
	binary.BigEndian.PutUint16(t[tcpWindow:], w)
}

// Checksum returns the checksum field.
func (t TCP) Checksum() uint16 {
	return binary.BigEndian.Uint16(t[tcpChecksum:])
}

// SetChecksum sets the checksum field.
func (t TCP) SetChecksum(c uint16) {
	binary.BigEndian.PutUint16(t[tcpChecksum:], c)
}

// Urgent returns the urgent pointer.
func (t TCP) Urgent() uint16 {
	return binary.BigEndian.Uint16(t[tcpUrgent:])
}

// SetUrgent sets the urgent pointer. It does not update the checksum.
func (t TCP) SetUrgent(u uint16) {
	binary.BigEndian.PutUint16(t[tcpUrgent:], u)
}

// Options returns the option bytes, t[TCPMinLen:HeaderLen()]. The slice
// aliases t, so options can be rewritten in place.
func (t TCP) Options() []byte {
	return t[TCPMinLen:t.HeaderLen()]
}

// Payload returns the segment data after the header.
func (t TCP) Payload() []byte {
	return t[t.HeaderLen():]
}

// EncodeTCP writes a TCP header of TCPMinLen+optLen bytes into b with the
// checksum and urgent pointer zeroed. The caller writes optLen bytes of
// options at b[TCPMinLen:] (optLen must be a multiple of 4, at most 40) and
// then stores the checksum.
func EncodeTCP(b []byte, srcPort, dstPort uint16, seq, ack uint32, flags TCPFlags, window uint16, optLen int) {
	t := TCP(b[:TCPMinLen+optLen])
	t.SetSrcPort(srcPort)
	t.SetDstPort(dstPort)
	t.SetSeq(seq)
	t.SetAck(ack)
	t.SetHeaderLen(TCPMinLen + optLen)
	t.SetFlags(flags)
	t.SetWindow(window)
	t.SetChecksum(0)
	t.SetUrgent(0)
}
