package pkt

import (
	"net/netip"
	"testing"
)

// Micro-benchmarks of the per-frame work the engine does on its hot path:
// parsing what a port read (plain frames and GSO super-frames) and building
// the frames it writes. The frames are made with the package's own
// encoders, so these benchmarks also cover EncodeEthernet/IPv4/TCP.

var (
	benchSrc = netip.MustParseAddr("198.18.0.1")
	benchDst = netip.MustParseAddr("198.18.0.10")
	benchMAC = MAC{0x02, 0, 0, 0, 0, 1}
)

// benchFrame builds an Ethernet/IPv4/TCP frame with the timestamp option
// and a payload of n bytes, the shape of a data segment between two Linux
// hosts. zeroTotalLen gives it the IPv4 total length 0 that a GSO
// super-frame over 64 KiB carries.
func benchFrame(n int, zeroTotalLen bool) []byte {
	const optLen = 12
	b := make([]byte, EthernetLen+IPv4MinLen+TCPMinLen+optLen+n)
	buildBenchFrame(b, n)
	if zeroTotalLen {
		IPv4(b[EthernetLen:]).SetTotalLen(0)
	}
	return b
}

// buildBenchFrame writes the headers of a data segment with an n-byte
// payload into b, as the engine's transmit path does: full header encode,
// options, and the partial (pseudo-header) checksum left for the kernel.
func buildBenchFrame(b []byte, n int) int {
	const optLen = 12
	tcpLen := TCPMinLen + optLen + n
	total := IPv4MinLen + tcpLen
	EncodeEthernet(b, benchMAC, benchMAC, EtherTypeIPv4)
	EncodeIPv4(b[EthernetLen:], 0, min(total, 0xffff), 1, 64, ProtoTCP, benchSrc, benchDst)
	tcpOff := EthernetLen + IPv4MinLen
	EncodeTCP(b[tcpOff:], 40000, 7000, 1000, 2000, TCPFlagAck|TCPFlagPsh, 502, optLen)
	o := tcpOff + TCPMinLen
	o += PutNops(b[o:], 2)
	PutTimestamp(b[o:], 12345, 67890)
	t := TCP(b[tcpOff : tcpOff+tcpLen])
	t.SetChecksum(PartialTCPChecksum(benchSrc, benchDst, tcpLen))
	return tcpOff + tcpLen
}

// TestHotPathAllocs asserts that the per-frame packet work the engine does
// (parse a plain frame or a GSO super-frame, build a frame) never
// allocates.
func TestHotPathAllocs(t *testing.T) {
	plain := benchFrame(1448, false)
	super := benchFrame(65000, true)
	var f Frame
	buf := make([]byte, EthernetLen+IPv4MinLen+TCPMinLen+12+1448)
	cases := map[string]func(){
		"ParseTCPv4": func() {
			if err := ParseTCPv4(plain, &f, true); err != nil {
				t.Fatal(err)
			}
		},
		"ParseTCPv4GSO": func() {
			if err := ParseTCPv4GSO(super, &f, false); err != nil {
				t.Fatal(err)
			}
		},
		"build": func() { buildBenchFrame(buf, 1448) },
	}
	for name, fn := range cases {
		if a := testing.AllocsPerRun(1000, fn); a != 0 {
			t.Errorf("%s allocates %v times per frame", name, a)
		}
	}
}

// BenchmarkParseTCPv4GSOSuperFrame parses a 64 KiB GSO super-frame without
// the IPv4 checksum check, as the engine does for frames whose virtio
// header says GSO. The cost must not depend on the payload size.
func BenchmarkParseTCPv4GSOSuperFrame(b *testing.B) {
	frame := benchFrame(65000, true)
	var f Frame
	b.ReportAllocs()
	for b.Loop() {
		if err := ParseTCPv4GSO(frame, &f, false); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseTCPv4PureACK parses a pure ACK with timestamps: the most
// frequent frame of a bulk transfer in the reverse direction.
func BenchmarkParseTCPv4PureACK(b *testing.B) {
	frame := benchFrame(0, false)
	var f Frame
	b.ReportAllocs()
	for b.Loop() {
		if err := ParseTCPv4(frame, &f, true); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuildTCPFrame encodes the headers of one outgoing data segment
// with the partial checksum that PACKET_VNET_HDR offload needs; the payload
// copy is not included (see BenchmarkBuildTCPFrameCopy).
func BenchmarkBuildTCPFrame(b *testing.B) {
	buf := make([]byte, EthernetLen+IPv4MinLen+TCPMinLen+12+1448)
	b.ReportAllocs()
	for b.Loop() {
		buildBenchFrame(buf, 1448)
	}
}

// BenchmarkBuildTCPFrameCopy adds the payload copy of a 64 KiB super-frame
// to the header encode, which is what the engine pays per super-frame it
// forwards (it copies the payload from the receive into a transmit buffer).
func BenchmarkBuildTCPFrameCopy(b *testing.B) {
	const n = 65000
	src := make([]byte, n)
	buf := make([]byte, EthernetLen+IPv4MinLen+TCPMinLen+12+n)
	b.ReportAllocs()
	b.SetBytes(n)
	for b.Loop() {
		m := buildBenchFrame(buf, n)
		copy(buf[m-n:m], src)
	}
}

// BenchmarkTCPChecksumSuperFrame is the software checksum of a 64 KiB
// segment: what a frame without checksum-offload metadata costs to verify.
func BenchmarkTCPChecksumSuperFrame(b *testing.B) {
	frame := benchFrame(65000, true)
	tcp := TCP(frame[EthernetLen+IPv4MinLen:])
	b.ReportAllocs()
	b.SetBytes(int64(len(tcp)))
	var sink uint16
	for b.Loop() {
		sink += TCPChecksum(benchSrc, benchDst, tcp)
	}
	_ = sink
}

// BenchmarkParseARP validates and reads an ARP request, as the engine does
// for every ARP frame on every port.
func BenchmarkParseARP(b *testing.B) {
	frame := make([]byte, EthernetLen+ARPLen)
	EncodeEthernet(frame, BroadcastMAC, benchMAC, EtherTypeARP)
	EncodeARP(frame[EthernetLen:], ARPRequest, benchMAC, benchSrc, MAC{}, benchDst)
	b.ReportAllocs()
	var ok int
	for b.Loop() {
		eth := Ethernet(frame)
		if eth.Check() != nil || eth.Type() != EtherTypeARP {
			b.Fatal("bad frame")
		}
		a := ARP(eth.Payload())
		if a.Check() == nil && a.TargetIP() == benchDst {
			ok++
		}
	}
	if ok == 0 {
		b.Fatal("ARP not parsed")
	}
}
