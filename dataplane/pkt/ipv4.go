package pkt

import (
	"encoding/binary"
	"net/netip"
)

// IPv4MinLen is the length of an IPv4 header without options.
const IPv4MinLen = 20

// IP protocol numbers the dataplane distinguishes.
const (
	ProtoICMP uint8 = 1
	ProtoTCP  uint8 = 6
	ProtoUDP  uint8 = 17
)

// Bits of the IPv4 flags/fragment-offset word.
const (
	ipv4FlagDF         = 0x4000
	ipv4FlagMF         = 0x2000
	ipv4FragOffsetMask = 0x1fff
)

// Byte offsets of IPv4 header fields.
const (
	ipv4TOS      = 1
	ipv4TotalLen = 2
	ipv4ID       = 4
	ipv4Frag     = 6
	ipv4TTL      = 8
	ipv4Protocol = 9
	ipv4Checksum = 10
	ipv4Src      = 12
	ipv4Dst      = 16
)

// IPv4 is a view of an IPv4 packet starting at its header. Accessors assume
// Check succeeded.
type IPv4 []byte

// Check validates ip as an IPv4 header followed by its payload: version 4,
// IHL of at least 5 words, a header that fits in ip, and a total length that
// covers the header and does not exceed len(ip). A total length shorter than
// len(ip) is fine (Ethernet pads short frames). It returns ErrTruncated when
// the header or the claimed total length runs past the end of ip.
//
// A total length of 0 is accepted only when allowZeroTotalLen is set: Linux
// emits IPv4 GSO super-frames larger than 64 KiB ("BIG TCP") with tot_len 0,
// and the real length is then the buffer length.
//
// The header checksum is verified only when verifyChecksum is set, because
// frames handed up with a virtio header or by a NIC that validated them do
// not need the extra pass.
func (ip IPv4) Check(verifyChecksum, allowZeroTotalLen bool) error {
	if len(ip) < IPv4MinLen {
		return ErrTruncated
	}
	if ip[0]>>4 != 4 {
		return ErrBadVersion
	}
	hl := ip.HeaderLen()
	if hl < IPv4MinLen {
		return ErrBadHeaderLen
	}
	if hl > len(ip) {
		return ErrTruncated
	}
	switch tl := ip.TotalLen(); {
	case tl == 0 && allowZeroTotalLen:
	case tl < hl:
		return ErrBadTotalLen
	case tl > len(ip):
		return ErrTruncated
	}
	if verifyChecksum && Fold(Sum(ip[:hl], 0)) != 0xffff {
		// A correct header, checksum included, sums to negative zero.
		return ErrBadChecksum
	}
	return nil
}

// HeaderLen returns the header length in bytes (IHL * 4).
func (ip IPv4) HeaderLen() int {
	return int(ip[0]&0x0f) * 4
}

// SetHeaderLen sets the IHL field from a length in bytes (a multiple of 4
// between 20 and 60) and the version to 4.
func (ip IPv4) SetHeaderLen(n int) {
	ip[0] = 4<<4 | byte(n/4)&0x0f
}

// TotalLen returns the total length field: header plus payload in bytes.
func (ip IPv4) TotalLen() int {
	return int(binary.BigEndian.Uint16(ip[ipv4TotalLen:]))
}

// SetTotalLen sets the total length field. It does not update the checksum.
func (ip IPv4) SetTotalLen(n int) {
	binary.BigEndian.PutUint16(ip[ipv4TotalLen:], uint16(n))
}

// ID returns the identification field.
func (ip IPv4) ID() uint16 {
	return binary.BigEndian.Uint16(ip[ipv4ID:])
}

// SetID sets the identification field. It does not update the checksum.
func (ip IPv4) SetID(id uint16) {
	binary.BigEndian.PutUint16(ip[ipv4ID:], id)
}

// TTL returns the time-to-live field.
func (ip IPv4) TTL() uint8 {
	return ip[ipv4TTL]
}

// SetTTL sets the time-to-live field. It does not update the checksum.
func (ip IPv4) SetTTL(t uint8) {
	ip[ipv4TTL] = t
}

// Protocol returns the protocol of the payload (ProtoTCP etc.).
func (ip IPv4) Protocol() uint8 {
	return ip[ipv4Protocol]
}

// SetProtocol sets the protocol field. It does not update the checksum.
func (ip IPv4) SetProtocol(p uint8) {
	ip[ipv4Protocol] = p
}

// Src returns the source address.
func (ip IPv4) Src() netip.Addr {
	return netip.AddrFrom4([4]byte(ip[ipv4Src : ipv4Src+4]))
}

// Dst returns the destination address.
func (ip IPv4) Dst() netip.Addr {
	return netip.AddrFrom4([4]byte(ip[ipv4Dst : ipv4Dst+4]))
}

// SetSrc sets the source address, which must be IPv4 or IPv4-mapped IPv6
// (anything else panics). It does not update the checksum.
func (ip IPv4) SetSrc(a netip.Addr) {
	putAddr4(ip[ipv4Src:], a)
}

// SetDst sets the destination address, which must be IPv4 or IPv4-mapped
// IPv6 (anything else panics). It does not update the checksum.
func (ip IPv4) SetDst(a netip.Addr) {
	putAddr4(ip[ipv4Dst:], a)
}

// TOS returns the type-of-service byte (DSCP and ECN).
func (ip IPv4) TOS() uint8 {
	return ip[ipv4TOS]
}

// SetTOS sets the type-of-service byte. It does not update the checksum.
func (ip IPv4) SetTOS(v uint8) {
	ip[ipv4TOS] = v
}

// IsFragment reports whether ip is part of a fragmented datagram: either
// more fragments follow or the fragment offset is not zero.
func (ip IPv4) IsFragment() bool {
	return binary.BigEndian.Uint16(ip[ipv4Frag:])&(ipv4FlagMF|ipv4FragOffsetMask) != 0
}

// DontFragment reports whether the DF flag is set.
func (ip IPv4) DontFragment() bool {
	return binary.BigEndian.Uint16(ip[ipv4Frag:])&ipv4FlagDF != 0
}

// Checksum returns the header checksum field.
func (ip IPv4) Checksum() uint16 {
	return binary.BigEndian.Uint16(ip[ipv4Checksum:])
}

// SetChecksum sets the header checksum field.
func (ip IPv4) SetChecksum(c uint16) {
	binary.BigEndian.PutUint16(ip[ipv4Checksum:], c)
}

// ComputeChecksum returns the header checksum, ready to store, computed as if
// the checksum field were zero so that it can be called on a header that
// already carries one.
func (ip IPv4) ComputeChecksum() uint16 {
	hl := ip.HeaderLen()
	return ^Fold(Sum(ip[ipv4Checksum+2:hl], Sum(ip[:ipv4Checksum], 0)))
}

// Payload returns the bytes after the header up to the total length, which
// leaves out Ethernet padding. When the total length is 0 (a GSO
// super-frame, see Check) the payload runs to the end of ip.
func (ip IPv4) Payload() []byte {
	tl := ip.TotalLen()
	if tl == 0 {
		return ip[ip.HeaderLen():]
	}
	return ip[ip.HeaderLen():tl]
}

// EncodeIPv4 writes a 20-byte IPv4 header without options into b: DF set,
// fragment offset zero, and a valid header checksum. src and dst must be
// IPv4 (or IPv4-mapped IPv6) addresses; anything else panics.
func EncodeIPv4(b []byte, tos uint8, totalLen int, id uint16, ttl uint8, proto uint8, src, dst netip.Addr) {
	ip := IPv4(b[:IPv4MinLen])
	ip.SetHeaderLen(IPv4MinLen)
	ip.SetTOS(tos)
	ip.SetTotalLen(totalLen)
	ip.SetID(id)
	binary.BigEndian.PutUint16(ip[ipv4Frag:], ipv4FlagDF)
	ip.SetTTL(ttl)
	ip.SetProtocol(proto)
	ip.SetChecksum(0)
	ip.SetSrc(src)
	ip.SetDst(dst)
	ip.SetChecksum(ip.ComputeChecksum())
}
