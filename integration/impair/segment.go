package impair

import (
	"encoding/binary"
	"net/netip"

	"github.com/ftbridge/ftbridge/dataplane/link"
	"github.com/ftbridge/ftbridge/dataplane/pkt"
)

// Offsets and values used to split TCP super-frames.
const (
	ethHdrLen   = 14
	etherIPv4   = 0x0800
	etherIPv6   = 0x86dd
	protoTCP    = 6
	protoUDP    = 17
	tcpCsumOff  = 16
	tcpFlagFIN  = 0x01
	tcpFlagPSH  = 0x08
	tcpFlagCWR  = 0x80
	ipv6HdrLen  = 40
	ipv4MinHdr  = 20
	tcpMinHdr   = 20
	udpHdrLen   = 8
	gsoTypeMask = ^uint8(link.VNetGSOECN)
)

// headers locates the layers of an Ethernet + IPv4/IPv6 (no extension
// headers) + TCP/UDP frame.
type headers struct {
	l3, l4, end int // IP header, transport header, first payload byte
	v6          bool
	proto       uint8
}

// parseHeaders parses f (no virtio_net_hdr). It reports false for
// anything it does not know, which is then treated as opaque.
func parseHeaders(f []byte) (headers, bool) {
	h := headers{l3: ethHdrLen}
	if len(f) < ethHdrLen {
		return h, false
	}
	switch binary.BigEndian.Uint16(f[12:]) {
	case etherIPv4:
		if len(f) < h.l3+ipv4MinHdr || f[h.l3]>>4 != 4 {
			return h, false
		}
		ihl := int(f[h.l3]&0xf) * 4
		if ihl < ipv4MinHdr {
			return h, false
		}
		h.proto, h.l4 = f[h.l3+9], h.l3+ihl
	case etherIPv6:
		if len(f) < h.l3+ipv6HdrLen || f[h.l3]>>4 != 6 {
			return h, false
		}
		h.v6, h.proto, h.l4 = true, f[h.l3+6], h.l3+ipv6HdrLen
	default:
		return h, false
	}
	switch h.proto {
	case protoTCP:
		if len(f) < h.l4+tcpMinHdr {
			return h, false
		}
		h.end = h.l4 + int(f[h.l4+12]>>4)*4
		if h.end < h.l4+tcpMinHdr {
			return h, false
		}
	case protoUDP:
		h.end = h.l4 + udpHdrLen
	default:
		return h, false
	}
	return h, len(f) >= h.end
}

// wireSize returns a frame's bytes without its virtio_net_hdr (size) and
// its bytes on a wire (wire): a GSO super-frame becomes several segments,
// each repeating the headers. The headers are measured in the frame, since
// the kernel's HdrLen is the length of the skb's linear part, which may
// include payload.
func wireSize(b []byte, vnet bool) (wire, size int) {
	if !vnet || len(b) < link.VNetHdrLen {
		return len(b), len(b)
	}
	vh := link.DecodeVNetHeader(b)
	f := b[link.VNetHdrLen:]
	size = len(f)
	wire = size
	if vh.GSOType == link.VNetGSONone || vh.GSOSize == 0 {
		return wire, size
	}
	hl := int(vh.HdrLen)
	if h, ok := parseHeaders(f); ok {
		hl = h.end
	}
	if hl < size {
		segs := (size - hl + int(vh.GSOSize) - 1) / int(vh.GSOSize)
		wire += (segs - 1) * hl
	}
	return wire, size
}

// segmentTCP splits the TCP GSO super-frame b (virtio_net_hdr first) the way
// a NIC's segmentation offload would: segments of at most GSOSize payload
// bytes, each with its own IP length (and IPv4 ID and checksum), sequence
// number and flags (FIN and PSH on the last only, CWR on the first only),
// and its TCP checksum left partial for the kernel to finish (NEEDS_CSUM,
// as the super-frame had it). Each segment is in a buffer from get and is
// appended to segs. For anything else it returns false and touches nothing.
func segmentTCP(b []byte, get func(int) []byte, segs [][]byte) ([][]byte, bool) {
	if len(b) < link.VNetHdrLen {
		return segs, false
	}
	vh := link.DecodeVNetHeader(b)
	gso := vh.GSOType & gsoTypeMask
	if (gso != link.VNetGSOTCPv4 && gso != link.VNetGSOTCPv6) || vh.GSOSize == 0 ||
		vh.Flags&link.VNetFlagNeedsCsum == 0 {
		return segs, false
	}
	f := b[link.VNetHdrLen:]
	h, ok := parseHeaders(f)
	if !ok || h.proto != protoTCP || h.v6 != (gso == link.VNetGSOTCPv6) ||
		int(vh.CsumStart) != h.l4 || vh.CsumOffset != tcpCsumOff || len(f) <= h.end {
		return segs, false
	}
	var src, dst netip.Addr
	var id uint16
	if h.v6 {
		src = netip.AddrFrom16([16]byte(f[h.l3+8 : h.l3+24]))
		dst = netip.AddrFrom16([16]byte(f[h.l3+24 : h.l3+40]))
	} else {
		src = netip.AddrFrom4([4]byte(f[h.l3+12 : h.l3+16]))
		dst = netip.AddrFrom4([4]byte(f[h.l3+16 : h.l3+20]))
		id = binary.BigEndian.Uint16(f[h.l3+4:])
	}
	seq0 := binary.BigEndian.Uint32(f[h.l4+4:])
	flags := f[h.l4+13]
	mss := int(vh.GSOSize)
	payload := f[h.end:]
	out := link.VNetHeader{
		Flags: link.VNetFlagNeedsCsum, GSOType: link.VNetGSONone, HdrLen: uint16(h.end),
		CsumStart: uint16(h.l4), CsumOffset: tcpCsumOff,
	}
	for i, off := 0, 0; off < len(payload); i, off = i+1, off+mss {
		n := min(mss, len(payload)-off)
		seg := get(link.VNetHdrLen + h.end + n)
		out.Encode(seg)
		s := seg[link.VNetHdrLen:]
		copy(s, f[:h.end])
		copy(s[h.end:], payload[off:off+n])
		if h.v6 {
			binary.BigEndian.PutUint16(s[h.l3+4:], uint16(h.end-h.l4+n))
		} else {
			ip := s[h.l3:h.l4]
			binary.BigEndian.PutUint16(ip[2:], uint16(h.end-h.l3+n))
			binary.BigEndian.PutUint16(ip[4:], id+uint16(i))
			binary.BigEndian.PutUint16(ip[10:], 0)
			binary.BigEndian.PutUint16(ip[10:], ^pkt.Fold(pkt.Sum(ip, 0)))
		}
		binary.BigEndian.PutUint32(s[h.l4+4:], seq0+uint32(off))
		fl := flags
		if off+n < len(payload) {
			fl &^= tcpFlagFIN | tcpFlagPSH
		}
		if i > 0 {
			fl &^= tcpFlagCWR
		}
		s[h.l4+13] = fl
		binary.BigEndian.PutUint16(s[h.l4+tcpCsumOff:], pkt.PartialTCPChecksum(src, dst, h.end-h.l4+n))
		segs = append(segs, seg)
	}
	return segs, true
}
