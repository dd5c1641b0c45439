package pkt

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// Sum returns the one's complement sum (RFC 1071) of b added to initial, as
// a partial sum that is not folded to 16 bits or complemented. Chain calls
// by passing one result as the next initial; every chunk except the last
// must have even length, because an odd trailing byte is padded with a zero
// low byte as the RFC prescribes for the end of the data.
//
// The result is congruent to the 16-bit one's complement sum modulo 0xffff,
// which is all Fold needs; it is never zero unless initial and b are all
// zero, so Fold yields the same representative a 16-bit implementation
// would.
func Sum(b []byte, initial uint32) uint32 {
	// Since 2^16 ≡ 1 (mod 2^16-1), a big-endian 64-bit word is congruent to
	// the sum of its four 16-bit words and a carry out of bit 63 is worth 1.
	// Adding whole 64-bit words with end-around carry therefore computes the
	// same one's complement sum four 16-bit words at a time.
	s := uint64(initial)
	var c uint64
	for len(b) >= 32 {
		s, c = bits.Add64(s, binary.BigEndian.Uint64(b[0:8]), 0)
		s, c = bits.Add64(s, binary.BigEndian.Uint64(b[8:16]), c)
		s, c = bits.Add64(s, binary.BigEndian.Uint64(b[16:24]), c)
		s, c = bits.Add64(s, binary.BigEndian.Uint64(b[24:32]), c)
		s += c // cannot overflow: s is at most 2^64-2 after a carry out
		b = b[32:]
	}
	for len(b) >= 8 {
		s, c = bits.Add64(s, binary.BigEndian.Uint64(b), 0)
		s += c
		b = b[8:]
	}
	if len(b) >= 4 {
		s, c = bits.Add64(s, uint64(binary.BigEndian.Uint32(b)), 0)
		s += c
		b = b[4:]
	}
	if len(b) >= 2 {
		s, c = bits.Add64(s, uint64(binary.BigEndian.Uint16(b)), 0)
		s += c
		b = b[2:]
	}
	if len(b) == 1 {
		s, c = bits.Add64(s, uint64(b[0])<<8, 0)
		s += c
	}
	// Fold to 32 bits with end-around carry (2^32 ≡ 1 as well). Two rounds
	// suffice: the first leaves at most 2^33-2, the second at most 2^32-1.
	s = s>>32 + s&0xffffffff
	s = s>>32 + s&0xffffffff
	return uint32(s)
}

// Fold folds the carries of a partial sum into 16 bits. It does not
// complement the result; a header checksum is ^Fold(...).
func Fold(sum uint32) uint16 {
	sum = sum>>16 + sum&0xffff
	sum = sum>>16 + sum&0xffff
	return uint16(sum)
}

// PseudoHeaderSum returns the partial sum of the TCP/UDP pseudo-header for a
// segment of length bytes of protocol proto. When both addresses are IPv4 it
// uses the RFC 793 IPv4 pseudo-header (16-bit length); otherwise the RFC 8200
// IPv6 one (32-bit length), with IPv4 addresses in their mapped form.
func PseudoHeaderSum(src, dst netip.Addr, proto uint8, length int) uint32 {
	if src.Is4() && dst.Is4() {
		s, d := src.As4(), dst.As4()
		sum := uint32(binary.BigEndian.Uint16(s[0:2])) + uint32(binary.BigEndian.Uint16(s[2:4])) +
			uint32(binary.BigEndian.Uint16(d[0:2])) + uint32(binary.BigEndian.Uint16(d[2:4]))
		return sum + uint32(proto) + uint32(uint16(length))
	}
	s, d := src.As16(), dst.As16()
	sum := Sum(d[:], Sum(s[:], 0))
	l := uint32(length)
	// Each term is below 2^17 and sum below 2^32, so add through Sum's
	// carry handling rather than risk a plain uint32 overflow.
	return addCarry(sum, l>>16+l&0xffff+uint32(proto))
}

// addCarry adds two partial sums with end-around carry.
func addCarry(a, b uint32) uint32 {
	s, c := bits.Add32(a, b, 0)
	return s + c
}

// TCPChecksum returns the TCP checksum, complemented and ready to store, of
// the segment tcp (header and payload, at least TCPMinLen bytes) sent from
// src to dst. The checksum field itself is skipped, so it may hold anything.
func TCPChecksum(src, dst netip.Addr, tcp []byte) uint16 {
	s := PseudoHeaderSum(src, dst, ProtoTCP, len(tcp))
	s = Sum(tcp[:tcpChecksum], s)
	s = Sum(tcp[tcpChecksum+2:], s)
	return ^Fold(s)
}

// UpdateChecksum16 returns the checksum, as stored in a header, after a
// 16-bit word covered by check changed from old to new, per RFC 1624
// equation 3: HC' = ~(~HC + ~m + m').
func UpdateChecksum16(check, old, new uint16) uint16 {
	return finishUpdate(uint32(^check) + uint32(^old) + uint32(new))
}

// UpdateChecksum32 is UpdateChecksum16 for a 32-bit field (such as a
// sequence number or an IPv4 address) aligned on a 16-bit boundary.
func UpdateChecksum32(check uint16, old, new uint32) uint16 {
	old = ^old
	return finishUpdate(uint32(^check) + old>>16 + old&0xffff + new>>16 + new&0xffff)
}

// finishUpdate folds and complements an RFC 1624 sum. One's complement has
// two zeros; a full computation over data that is not all zero (and a TCP
// pseudo-header or IPv4 header never is) folds to 0xffff, never 0, so the
// incremental result is normalised the same way to match it bit for bit.
func finishUpdate(sum uint32) uint16 {
	f := Fold(sum)
	if f == 0 {
		f = 0xffff
	}
	return ^f
}

// PartialTCPChecksum returns what a CHECKSUM_PARTIAL frame (virtio
// VNetHdrFlagNeedsCsum) carries in its TCP checksum field: the folded but
// not complemented pseudo-header sum for tcpLen bytes of TCP. The device or
// kernel then adds the sum of the segment and complements the result.
func PartialTCPChecksum(src, dst netip.Addr, tcpLen int) uint16 {
	return Fold(PseudoHeaderSum(src, dst, ProtoTCP, tcpLen))
}
