package pkt

import (
	"encoding/binary"
	"math/rand"
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// refChecksum is a deliberately naive RFC 1071 reference: add 16-bit words
// into a wide accumulator, fold, complement. Tests compare the optimised
// Sum against it.
func refChecksum(chunks ...[]byte) uint16 {
	var all []byte
	for _, c := range chunks {
		all = append(all, c...)
	}
	var s uint64
	for i := 0; i+1 < len(all); i += 2 {
		s += uint64(all[i])<<8 | uint64(all[i+1])
	}
	if len(all)%2 == 1 {
		s += uint64(all[len(all)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// refTCPChecksum computes the TCP checksum from an explicitly assembled
// pseudo-header, independently of PseudoHeaderSum.
func refTCPChecksum(src, dst netip.Addr, seg []byte) uint16 {
	var ph []byte
	if src.Is4() {
		s, d := src.As4(), dst.As4()
		ph = append(ph, s[:]...)
		ph = append(ph, d[:]...)
		ph = append(ph, 0, ProtoTCP)
		ph = binary.BigEndian.AppendUint16(ph, uint16(len(seg)))
	} else {
		s, d := src.As16(), dst.As16()
		ph = append(ph, s[:]...)
		ph = append(ph, d[:]...)
		ph = binary.BigEndian.AppendUint32(ph, uint32(len(seg)))
		ph = append(ph, 0, 0, 0, ProtoTCP)
	}
	c := append([]byte(nil), seg...)
	c[16], c[17] = 0, 0
	return refChecksum(ph, c)
}

// frameSpec describes a frame for buildFrame.
type frameSpec struct {
	srcMAC, dstMAC     MAC
	src, dst           netip.Addr
	tos, ttl           uint8
	id                 uint16
	ipOptions          []layers.IPv4Option
	srcPort, dstPort   uint16
	seq, ack           uint32
	flags              TCPFlags
	window, urgent     uint16
	options            []layers.TCPOption
	payload            []byte
	pad                int // Ethernet trailer bytes after the IP packet
	dontFragment       bool
	moreFrags          bool
	fragOffset         uint16
	protocol           layers.IPProtocol
	skipTCPLayer       bool
	corruptIPChecksum  bool
	explicitIPTotalLen int
}

// buildFrame serialises spec with gopacket, which fixes lengths and computes
// both checksums, giving frames whose bytes do not come from this package.
func buildFrame(t testing.TB, spec frameSpec) []byte {
	t.Helper()
	proto := spec.protocol
	if proto == 0 {
		proto = layers.IPProtocolTCP
	}
	eth := &layers.Ethernet{
		SrcMAC:       net.HardwareAddr(spec.srcMAC[:]),
		DstMAC:       net.HardwareAddr(spec.dstMAC[:]),
		EthernetType: layers.EthernetTypeIPv4,
	}
	ip := &layers.IPv4{
		Version:    4,
		TOS:        spec.tos,
		Id:         spec.id,
		TTL:        spec.ttl,
		Protocol:   proto,
		SrcIP:      spec.src.AsSlice(),
		DstIP:      spec.dst.AsSlice(),
		Options:    spec.ipOptions,
		FragOffset: spec.fragOffset,
	}
	if spec.dontFragment {
		ip.Flags |= layers.IPv4DontFragment
	}
	if spec.moreFrags {
		ip.Flags |= layers.IPv4MoreFragments
	}
	tcp := &layers.TCP{
		SrcPort: layers.TCPPort(spec.srcPort),
		DstPort: layers.TCPPort(spec.dstPort),
		Seq:     spec.seq,
		Ack:     spec.ack,
		FIN:     spec.flags.Has(TCPFlagFin),
		SYN:     spec.flags.Has(TCPFlagSyn),
		RST:     spec.flags.Has(TCPFlagRst),
		PSH:     spec.flags.Has(TCPFlagPsh),
		ACK:     spec.flags.Has(TCPFlagAck),
		URG:     spec.flags.Has(TCPFlagUrg),
		ECE:     spec.flags.Has(TCPFlagEce),
		CWR:     spec.flags.Has(TCPFlagCwr),
		Window:  spec.window,
		Urgent:  spec.urgent,
		Options: spec.options,
	}
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	ls := []gopacket.SerializableLayer{eth, ip}
	if !spec.skipTCPLayer {
		ls = append(ls, tcp)
	}
	ls = append(ls, gopacket.Payload(spec.payload))
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		t.Fatalf("gopacket serialise: %v", err)
	}
	b := append([]byte(nil), buf.Bytes()...)
	if spec.explicitIPTotalLen != 0 {
		binary.BigEndian.PutUint16(b[EthernetLen+2:], uint16(spec.explicitIPTotalLen))
	}
	if spec.corruptIPChecksum {
		b[EthernetLen+10] ^= 0x5a
	}
	for i := 0; i < spec.pad; i++ {
		b = append(b, 0xee)
	}
	return b
}

// tcpOpt is shorthand for a gopacket TCP option with the length filled in.
func tcpOpt(kind layers.TCPOptionKind, data ...byte) layers.TCPOption {
	if kind == layers.TCPOptionKindNop || kind == layers.TCPOptionKindEndList {
		return layers.TCPOption{OptionType: kind, OptionLength: 1}
	}
	return layers.TCPOption{OptionType: kind, OptionLength: uint8(2 + len(data)), OptionData: data}
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// randomOptions picks a random, well-formed TCP option list that fits in 40
// bytes and returns it together with the TCPOptions a correct parser must
// produce (offsets excluded, since gopacket decides the layout).
func randomOptions(r *rand.Rand) ([]layers.TCPOption, TCPOptions) {
	var (
		opts []layers.TCPOption
		want TCPOptions
		used int
	)
	want.reset()
	add := func(o layers.TCPOption) bool {
		n := 1
		if o.OptionType > 1 {
			n = int(o.OptionLength)
		}
		if used+n > 40 {
			return false
		}
		used += n
		opts = append(opts, o)
		return true
	}
	for _, pick := range r.Perm(8) {
		if r.Intn(2) == 0 {
			continue
		}
		switch pick {
		case 0:
			v := uint16(r.Uint32())
			if add(tcpOpt(layers.TCPOptionKindMSS, be16(v)...)) {
				want.MSS, want.HasMSS = v, true
			}
		case 1:
			v := uint8(r.Intn(15))
			if add(tcpOpt(layers.TCPOptionKindWindowScale, v)) {
				want.WScale, want.HasWScale = v, true
			}
		case 2:
			if add(tcpOpt(layers.TCPOptionKindSACKPermitted)) {
				want.SACKPermitted = true
			}
		case 3:
			val, ecr := r.Uint32(), r.Uint32()
			if add(tcpOpt(layers.TCPOptionKindTimestamps, append(be32(val), be32(ecr)...)...)) {
				want.HasTimestamp, want.TSVal, want.TSEcr = true, val, ecr
			}
		case 4:
			n := 1 + r.Intn(4)
			var data []byte
			var blocks [4]SACKBlock
			for i := 0; i < n; i++ {
				blocks[i] = SACKBlock{r.Uint32(), r.Uint32()}
				data = append(data, be32(blocks[i].Left)...)
				data = append(data, be32(blocks[i].Right)...)
			}
			if add(tcpOpt(layers.TCPOptionKindSACK, data...)) {
				want.SACK, want.NumSACK = blocks, n
			}
		case 5:
			cookie := make([]byte, 2*r.Intn(9)) // 0 (request) to 16 bytes
			r.Read(cookie)
			if add(tcpOpt(OptFastOpen, cookie...)) {
				want.FastOpen, want.FastOpenLen = true, 2+len(cookie)
			}
		case 6:
			add(tcpOpt(layers.TCPOptionKindNop))
		case 7:
			// An unknown kind the parser must skip.
			add(tcpOpt(layers.TCPOptionKind(200+r.Intn(50)), make([]byte, r.Intn(6))...))
		}
	}
	return opts, want
}

// sameOptions compares everything but the offsets.
func sameOptions(a, b *TCPOptions) bool {
	x, y := *a, *b
	x.TimestampOffset, x.SACKOffset, x.FastOpenOffset = 0, 0, 0
	y.TimestampOffset, y.SACKOffset, y.FastOpenOffset = 0, 0, 0
	return x == y
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func randAddr4(r *rand.Rand) netip.Addr {
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], r.Uint32())
	return netip.AddrFrom4(a)
}

func randMAC(r *rand.Rand) MAC {
	var m MAC
	r.Read(m[:])
	return m
}
