package pkt

import "encoding/binary"

// VNetHdrLen is the length of struct virtio_net_hdr (without the
// num_buffers field of the mergeable-buffers variant), which is what
// AF_PACKET prepends to each frame with PACKET_VNET_HDR.
const VNetHdrLen = 10

// virtio_net_hdr flags.
const (
	// VNetHdrFlagNeedsCsum marks a CHECKSUM_PARTIAL frame: the checksum at
	// CsumStart+CsumOffset holds only the pseudo-header sum and the sum
	// from CsumStart to the end must still be added.
	VNetHdrFlagNeedsCsum uint8 = 1
	// VNetHdrFlagDataValid marks a frame whose checksum was verified.
	VNetHdrFlagDataValid uint8 = 2
)

// virtio_net_hdr GSO types.
const (
	VNetGSONone  uint8 = 0
	VNetGSOTCPv4 uint8 = 1
	VNetGSOUDP   uint8 = 3
	VNetGSOTCPv6 uint8 = 4
	// VNetGSOECN is OR'ed into the GSO type when the segments need ECN
	// CWR handling.
	VNetGSOECN uint8 = 0x80
)

// VNetHdr is a view of a virtio_net_hdr. The kernel exchanges it over
// AF_PACKET in host byte order (legacy virtio), hence binary.NativeEndian.
// Accessors assume len(h) >= VNetHdrLen.
type VNetHdr []byte

// Flags returns the flags byte.
func (h VNetHdr) Flags() uint8 {
	return h[0]
}

// GSOType returns the GSO type byte, VNetGSOECN included.
func (h VNetHdr) GSOType() uint8 {
	return h[1]
}

// HdrLen returns the length of the headers (Ethernet, IP and TCP) that each
// GSO segment repeats.
func (h VNetHdr) HdrLen() uint16 {
	return binary.NativeEndian.Uint16(h[2:])
}

// GSOSize returns the payload size of each GSO segment (the MSS for TCP).
func (h VNetHdr) GSOSize() uint16 {
	return binary.NativeEndian.Uint16(h[4:])
}

// CsumStart returns the offset, from the start of the frame, at which
// checksumming starts when VNetHdrFlagNeedsCsum is set.
func (h VNetHdr) CsumStart() uint16 {
	return binary.NativeEndian.Uint16(h[6:])
}

// CsumOffset returns the offset of the checksum field from CsumStart.
func (h VNetHdr) CsumOffset() uint16 {
	return binary.NativeEndian.Uint16(h[8:])
}

// Encode writes all fields of the header.
func (h VNetHdr) Encode(flags, gsoType uint8, hdrLen, gsoSize, csumStart, csumOffset uint16) {
	_ = h[VNetHdrLen-1]
	h[0] = flags
	h[1] = gsoType
	binary.NativeEndian.PutUint16(h[2:], hdrLen)
	binary.NativeEndian.PutUint16(h[4:], gsoSize)
	binary.NativeEndian.PutUint16(h[6:], csumStart)
	binary.NativeEndian.PutUint16(h[8:], csumOffset)
}
