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

func TestSumRFC1071Example(t *testing.T) {
	// RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2
	// (folded), so the checksum is 220d.
	b := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	if got := Fold(Sum(b, 0)); got != 0xddf2 {
		t.Errorf("Fold(Sum) = %#x, want 0xddf2", got)
	}
	if got := ^Fold(Sum(b, 0)); got != 0x220d {
		t.Errorf("checksum = %#x, want 0x220d", got)
	}
}

func TestSumAgainstReference(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	buf := make([]byte, 70000) // longer than 64 KiB to exercise overflow handling
	for i := 0; i < 3000; i++ {
		var n int
		switch i % 3 {
		case 0:
			n = r.Intn(80) // every tail length of the unrolled loops
		case 1:
			n = r.Intn(1600)
		default:
			n = r.Intn(len(buf))
		}
		b := buf[:n]
		if i%5 == 0 {
			// Worst case for carries.
			for j := range b {
				b[j] = 0xff
			}
		} else {
			r.Read(b)
		}
		if got, want := ^Fold(Sum(b, 0)), refChecksum(b); got != want {
			t.Fatalf("len %d: checksum %#x, reference %#x", n, got, want)
		}
		// An initial value is added like a leading 32-bit word.
		init := r.Uint32()
		if got, want := ^Fold(Sum(b, init)), refChecksum(be32(init), b); got != want {
			t.Fatalf("len %d init %#x: checksum %#x, reference %#x", n, init, got, want)
		}
		// Chaining at an even split equals one pass.
		split := r.Intn(n+1) &^ 1
		if got, want := Fold(Sum(b[split:], Sum(b[:split], 0))), Fold(Sum(b, 0)); got != want {
			t.Fatalf("len %d split %d: chained %#x, whole %#x", n, split, got, want)
		}
	}
}

func TestSumZero(t *testing.T) {
	if got := Sum(nil, 0); got != 0 {
		t.Errorf("Sum(nil, 0) = %#x", got)
	}
	if got := Sum(make([]byte, 100), 0); got != 0 {
		t.Errorf("Sum(zeros) = %#x", got)
	}
	// All-ones data must fold to 0xffff (negative zero), not 0.
	ones := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	if got := Fold(Sum(ones, 0)); got != 0xffff {
		t.Errorf("Fold(Sum(ones)) = %#x, want 0xffff", got)
	}
}

func TestFold(t *testing.T) {
	tests := []struct {
		in   uint32
		want uint16
	}{
		{0, 0},
		{0xffff, 0xffff},
		{0x10000, 1},
		{0x1fffe, 0xffff},
		{0xffffffff, 0xffff},
		{0x12345678, 0x68ac},
	}
	for _, tt := range tests {
		if got := Fold(tt.in); got != tt.want {
			t.Errorf("Fold(%#x) = %#x, want %#x", tt.in, got, tt.want)
		}
	}
}

// TestTCPChecksumAgainstGopacketIPv6 covers the IPv6 pseudo-header, which
// the IPv4 frame tests do not reach.
func TestTCPChecksumAgainstGopacketIPv6(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	for i := 0; i < 200; i++ {
		var s, d [16]byte
		r.Read(s[:])
		r.Read(d[:])
		src, dst := netip.AddrFrom16(s), netip.AddrFrom16(d)
		ip := &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolTCP, HopLimit: 64,
			SrcIP: net.IP(s[:]), DstIP: net.IP(d[:])}
		tcp := &layers.TCP{SrcPort: layers.TCPPort(r.Uint32()), DstPort: 443, Seq: r.Uint32(), ACK: true, Window: 100}
		_ = tcp.SetNetworkLayerForChecksum(ip)
		payload := make([]byte, r.Intn(2000))
		r.Read(payload)
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
			ip, tcp, gopacket.Payload(payload)); err != nil {
			t.Fatal(err)
		}
		seg := TCP(buf.Bytes()[40:])
		if got := TCPChecksum(src, dst, seg); got != seg.Checksum() {
			t.Fatalf("IPv6 len %d: TCPChecksum %#x, gopacket %#x", len(seg), got, seg.Checksum())
		}
		if got, want := TCPChecksum(src, dst, seg), refTCPChecksum(src, dst, seg); got != want {
			t.Fatalf("IPv6: TCPChecksum %#x, reference %#x", got, want)
		}
	}
}

func TestTCPChecksumIgnoresField(t *testing.T) {
	seg := make([]byte, 41)
	rand.New(rand.NewSource(1)).Read(seg)
	TCP(seg).SetHeaderLen(20)
	src, dst := mustAddr("198.18.0.1"), mustAddr("198.19.255.254")
	a := TCPChecksum(src, dst, seg)
	TCP(seg).SetChecksum(^TCP(seg).Checksum())
	if b := TCPChecksum(src, dst, seg); a != b {
		t.Errorf("checksum depends on the checksum field: %#x vs %#x", a, b)
	}
	if want := refTCPChecksum(src, dst, seg); a != want {
		t.Errorf("TCPChecksum %#x, reference %#x", a, want)
	}
	// Storing it must make the whole segment plus pseudo-header verify.
	TCP(seg).SetChecksum(a)
	if got := Fold(Sum(seg, PseudoHeaderSum(src, dst, ProtoTCP, len(seg)))); got != 0xffff {
		t.Errorf("stored checksum does not verify: %#x", got)
	}
}

// TestUpdateChecksumProperty rewrites fields of random segments and checks
// the RFC 1624 update against a full recomputation.
func TestUpdateChecksumProperty(t *testing.T) {
	r := rand.New(rand.NewSource(99))
	for i := 0; i < 20000; i++ {
		n := TCPMinLen + r.Intn(200)
		if i%4 == 0 {
			n |= 1 // odd lengths
		}
		seg := TCP(make([]byte, n))
		r.Read(seg)
		seg.SetHeaderLen(TCPMinLen)
		src, dst := randAddr4(r), randAddr4(r)
		if i%3 == 0 {
			// Exercise all-ones fields, where one's complement's two
			// zeros matter.
			seg.SetSeq(0xffffffff)
			seg.SetSrcPort(0xffff)
		}
		seg.SetChecksum(TCPChecksum(src, dst, seg))

		check := seg.Checksum()
		switch i % 5 {
		case 0:
			old, nv := seg.Seq(), r.Uint32()
			if i%10 == 0 {
				nv = 0
			}
			seg.SetSeq(nv)
			check = UpdateChecksum32(check, old, nv)
		case 1:
			old, nv := seg.Ack(), r.Uint32()
			seg.SetAck(nv)
			check = UpdateChecksum32(check, old, nv)
		case 2:
			old, nv := seg.SrcPort(), uint16(r.Uint32())
			if i%10 == 2 {
				nv = 0
			}
			seg.SetSrcPort(nv)
			check = UpdateChecksum16(check, old, nv)
		case 3:
			old, nv := seg.DstPort(), uint16(r.Uint32())
			seg.SetDstPort(nv)
			check = UpdateChecksum16(check, old, nv)
		case 4:
			// Address change: only the pseudo-header moves.
			o4 := dst.As4()
			ndst := randAddr4(r)
			n4 := ndst.As4()
			check = UpdateChecksum32(check, binary.BigEndian.Uint32(o4[:]), binary.BigEndian.Uint32(n4[:]))
			dst = ndst
		}
		if want := TCPChecksum(src, dst, seg); check != want {
			t.Fatalf("case %d len %d: incremental %#x, recomputed %#x", i%5, n, check, want)
		}
		if want := refTCPChecksum(src, dst, seg); check != want {
			t.Fatalf("case %d len %d: incremental %#x, reference %#x", i%5, n, check, want)
		}
	}
}

func TestUpdateChecksumIPv4Header(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	b := make([]byte, IPv4MinLen)
	for i := 0; i < 5000; i++ {
		EncodeIPv4(b, uint8(r.Uint32()), 20+r.Intn(1500), uint16(r.Uint32()), uint8(r.Uint32()), ProtoTCP, randAddr4(r), randAddr4(r))
		ip := IPv4(b)
		// Decrementing TTL changes the TTL/protocol word.
		oldWord := binary.BigEndian.Uint16(ip[8:])
		ip.SetTTL(ip.TTL() - 1)
		ip.SetChecksum(UpdateChecksum16(ip.Checksum(), oldWord, binary.BigEndian.Uint16(ip[8:])))
		if want := ip.ComputeChecksum(); ip.Checksum() != want {
			t.Fatalf("after TTL: %#x, want %#x", ip.Checksum(), want)
		}
		oldID := ip.ID()
		ip.SetID(oldID + 1)
		ip.SetChecksum(UpdateChecksum16(ip.Checksum(), oldID, oldID+1))
		if want := ip.ComputeChecksum(); ip.Checksum() != want {
			t.Fatalf("after ID: %#x, want %#x", ip.Checksum(), want)
		}
	}
}

func TestPartialTCPChecksum(t *testing.T) {
	r := rand.New(rand.NewSource(11))
	for i := 0; i < 1000; i++ {
		seg := TCP(make([]byte, TCPMinLen+r.Intn(1500)))
		r.Read(seg)
		seg.SetHeaderLen(TCPMinLen)
		src, dst := randAddr4(r), randAddr4(r)
		// What a NIC does with CHECKSUM_PARTIAL: sum from csum_start (the
		// TCP header) to the end, field included, and store the
		// complement.
		seg.SetChecksum(PartialTCPChecksum(src, dst, len(seg)))
		finished := ^Fold(Sum(seg, 0))
		if want := TCPChecksum(src, dst, seg); finished != want {
			t.Fatalf("len %d: completed partial checksum %#x, full %#x", len(seg), finished, want)
		}
	}
	// It must not be complemented: for a known pseudo-header the value is
	// the folded sum itself.
	src, dst := mustAddr("198.18.0.1"), mustAddr("198.18.0.2")
	want := Fold(0xc612 + 0x0001 + 0xc612 + 0x0002 + 6 + 40)
	if got := PartialTCPChecksum(src, dst, 40); got != want {
		t.Errorf("PartialTCPChecksum = %#x, want %#x", got, want)
	}
}

func TestPseudoHeaderSumMixedFamilies(t *testing.T) {
	// A mapped address in an IPv6 pair must not panic and must match the
	// explicit IPv6 pseudo-header.
	src := mustAddr("::ffff:198.18.0.1")
	dst := mustAddr("2001:db8::1")
	seg := make([]byte, 20)
	if got, want := TCPChecksum(src, dst, seg), refTCPChecksum(src, dst, seg); got != want {
		t.Errorf("mapped/IPv6 checksum %#x, reference %#x", got, want)
	}
}

func TestChecksumAllocs(t *testing.T) {
	b := make([]byte, 1500)
	src, dst := mustAddr("198.18.0.1"), mustAddr("198.18.0.2")
	var sink uint32
	if a := testing.AllocsPerRun(1000, func() { sink += Sum(b, sink) }); a != 0 {
		t.Errorf("Sum allocates %v", a)
	}
	if a := testing.AllocsPerRun(1000, func() { sink += uint32(TCPChecksum(src, dst, b)) }); a != 0 {
		t.Errorf("TCPChecksum allocates %v", a)
	}
	if a := testing.AllocsPerRun(1000, func() { sink += uint32(UpdateChecksum32(uint16(sink), 1, sink)) }); a != 0 {
		t.Errorf("UpdateChecksum32 allocates %v", a)
	}
}

func BenchmarkTCPChecksum1500(b *testing.B) {
	seg := make([]byte, 1480)
	rand.New(rand.NewSource(1)).Read(seg)
	src, dst := mustAddr("198.18.0.1"), mustAddr("198.18.0.2")
	b.ReportAllocs()
	b.SetBytes(int64(len(seg)))
	var sink uint16
	for b.Loop() {
		sink += TCPChecksum(src, dst, seg)
	}
	_ = sink
}

func BenchmarkUpdateChecksum32(b *testing.B) {
	b.ReportAllocs()
	c := uint16(0x1234)
	var v uint32
	for b.Loop() {
		c = UpdateChecksum32(c, v, v+1460)
		v += 1460
	}
	_ = c
}

// TestUpdateChecksumNegativeZero covers the one case where RFC 1624's
// equation 3 can produce the "other" zero: a sender stored 0xffff (an
// equally valid encoding of checksum 0) and a 0xffff word becomes 0. The
// update must still equal what a full recomputation stores.
func TestUpdateChecksumNegativeZero(t *testing.T) {
	src, dst := mustAddr("198.18.0.1"), mustAddr("198.18.0.2")
	seg := TCP(make([]byte, 24))
	EncodeTCP(seg, 1, 2, 3, 4, TCPFlagAck, 5, 0)
	binary.BigEndian.PutUint16(seg[20:], 0xffff)
	// Choose the urgent pointer so that the checksum comes out as 0.
	seg.SetUrgent(TCPChecksum(src, dst, seg))
	if c := TCPChecksum(src, dst, seg); c != 0 {
		t.Fatalf("setup: checksum %#x, want 0", c)
	}
	binary.BigEndian.PutUint16(seg[20:], 0)
	got := UpdateChecksum16(0xffff, 0xffff, 0)
	if want := TCPChecksum(src, dst, seg); got != want {
		t.Errorf("UpdateChecksum16 from negative zero = %#x, full recomputation %#x", got, want)
	}
	if got := UpdateChecksum32(0xffff, 0xffffffff, 0); got != 0 {
		t.Errorf("UpdateChecksum32(0xffff, ^0, 0) = %#x, want 0", got)
	}
}
