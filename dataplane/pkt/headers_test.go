package pkt

import (
	"bytes"
	"encoding/binary"
	"math/rand"
	"net"
	"net/netip"
	"testing"
	"unsafe"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

func TestMAC(t *testing.T) {
	tests := []struct {
		in   string
		want MAC
		ok   bool
	}{
		{"00:11:22:33:44:55", MAC{0, 0x11, 0x22, 0x33, 0x44, 0x55}, true},
		{"AA-bb-CC-dd-EE-ff", MAC{0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}, true},
		{"ff:ff:ff:ff:ff:ff", BroadcastMAC, true},
		{"00:11:22:33:44", MAC{}, false},
		{"00:11:22:33:44:55:66", MAC{}, false},
		{"00:11-22:33:44:55", MAC{}, false},
		{"00:11:22:33:44:5g", MAC{}, false},
		{"0011.2233.4455", MAC{}, false},
		{"001122334455abcde", MAC{}, false},
		{"", MAC{}, false},
	}
	for _, tt := range tests {
		got, err := ParseMAC(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("ParseMAC(%q) error = %v, want ok=%v", tt.in, err, tt.ok)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseMAC(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 1000; i++ {
		m := randMAC(r)
		s := m.String()
		if want := net.HardwareAddr(m[:]).String(); s != want {
			t.Fatalf("String = %q, net says %q", s, want)
		}
		back, err := ParseMAC(s)
		if err != nil || back != m {
			t.Fatalf("ParseMAC(%q) = %v, %v", s, back, err)
		}
	}
	if BroadcastMAC.String() != "ff:ff:ff:ff:ff:ff" || BroadcastMAC.IsZero() || !(MAC{}).IsZero() || (MAC{0, 0, 0, 0, 0, 1}).IsZero() {
		t.Error("BroadcastMAC / IsZero wrong")
	}
}

func TestEthernetRoundTrip(t *testing.T) {
	b := make([]byte, EthernetLen+3)
	dst, src := MAC{1, 2, 3, 4, 5, 6}, MAC{0xa, 0xb, 0xc, 0xd, 0xe, 0xf}
	EncodeEthernet(b, dst, src, EtherTypeARP)
	copy(b[EthernetLen:], "xyz")
	e := Ethernet(b)
	if e.Check() != nil || e.Dst() != dst || e.Src() != src || e.Type() != EtherTypeARP || string(e.Payload()) != "xyz" {
		t.Fatalf("round trip: %v %v %#x %q", e.Dst(), e.Src(), e.Type(), e.Payload())
	}
	e.SetType(EtherTypeVLAN)
	e.SetDst(src)
	e.SetSrc(dst)
	if !bytes.Equal(b[:EthernetLen], []byte{0xa, 0xb, 0xc, 0xd, 0xe, 0xf, 1, 2, 3, 4, 5, 6, 0x81, 0x00}) {
		t.Errorf("setters wrote %x", b[:EthernetLen])
	}
	if Ethernet(b[:13]).Check() != ErrTruncated {
		t.Error("short Ethernet accepted")
	}
}

func TestARPAgainstGopacket(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	for i := 0; i < 200; i++ {
		sm, tm := randMAC(r), randMAC(r)
		si, ti := randAddr4(r), randAddr4(r)
		op := uint16(1 + r.Intn(2))
		b := make([]byte, ARPLen)
		EncodeARP(b, op, sm, si, tm, ti)

		a := ARP(b)
		if err := a.Check(); err != nil {
			t.Fatalf("Check: %v", err)
		}
		if a.Op() != op || a.SenderMAC() != sm || a.SenderIP() != si || a.TargetMAC() != tm || a.TargetIP() != ti {
			t.Fatalf("round trip mismatch: %d %v %v %v %v", a.Op(), a.SenderMAC(), a.SenderIP(), a.TargetMAC(), a.TargetIP())
		}
		pk := gopacket.NewPacket(b, layers.LayerTypeARP, gopacket.Default)
		ga, ok := pk.Layer(layers.LayerTypeARP).(*layers.ARP)
		if !ok {
			t.Fatalf("gopacket cannot decode %x", b)
		}
		if ga.Operation != op || ga.AddrType != layers.LinkTypeEthernet || ga.Protocol != layers.EthernetTypeIPv4 ||
			!bytes.Equal(ga.SourceHwAddress, sm[:]) || !bytes.Equal(ga.DstHwAddress, tm[:]) ||
			!bytes.Equal(ga.SourceProtAddress, si.AsSlice()) || !bytes.Equal(ga.DstProtAddress, ti.AsSlice()) {
			t.Fatalf("gopacket decodes %+v", ga)
		}
	}
	// Mapped IPv4 addresses are written in four-byte form.
	b := make([]byte, ARPLen)
	EncodeARP(b, ARPRequest, MAC{}, mustAddr("::ffff:198.18.0.1"), MAC{}, mustAddr("198.18.0.2"))
	if got := ARP(b).SenderIP(); got != mustAddr("198.18.0.1") {
		t.Errorf("mapped sender = %v", got)
	}
}

func TestARPCheck(t *testing.T) {
	good := make([]byte, ARPLen)
	EncodeARP(good, ARPReply, MAC{1}, mustAddr("198.18.0.1"), MAC{2}, mustAddr("198.18.0.2"))
	mod := func(off int, v byte) []byte {
		b := append([]byte(nil), good...)
		b[off] = v
		return b
	}
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"good", good, nil},
		{"with trailer", append(append([]byte(nil), good...), make([]byte, 18)...), nil},
		{"short", good[:ARPLen-1], ErrTruncated},
		{"htype", mod(1, 6), ErrBadARP},
		{"ptype", mod(2, 0x86), ErrBadARP},
		{"hlen", mod(4, 8), ErrBadARP},
		{"plen", mod(5, 16), ErrBadARP},
		{"op 0", mod(7, 0), ErrBadARP},
		{"op 3 (rarp)", mod(7, 3), ErrBadARP},
		{"op high byte", mod(6, 1), ErrBadARP},
	}
	for _, tt := range tests {
		if err := ARP(tt.b).Check(); err != tt.want {
			t.Errorf("%s: Check = %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestIPv4Check(t *testing.T) {
	good := make([]byte, 40)
	EncodeIPv4(good, 0, 40, 1, 64, ProtoTCP, mustAddr("198.18.0.1"), mustAddr("198.18.0.2"))
	mod := func(f func(ip IPv4)) []byte {
		b := append([]byte(nil), good...)
		f(IPv4(b))
		return b
	}
	fixed := func(f func(ip IPv4)) []byte {
		return mod(func(ip IPv4) { f(ip); ip.SetChecksum(ip.ComputeChecksum()) })
	}
	tests := []struct {
		name           string
		b              []byte
		verify, zeroOK bool
		want           error
	}{
		{"good", good, true, false, nil},
		{"padded", append(append([]byte(nil), good...), 0, 0, 0), true, false, nil},
		{"short", good[:19], false, false, ErrTruncated},
		{"version 6", fixed(func(ip IPv4) { ip[0] = 0x65 }), true, false, ErrBadVersion},
		{"version 0", mod(func(ip IPv4) { ip[0] = 0x05 }), false, false, ErrBadVersion},
		{"ihl 4", fixed(func(ip IPv4) { ip[0] = 0x44 }), true, false, ErrBadHeaderLen},
		{"ihl 0", mod(func(ip IPv4) { ip[0] = 0x40 }), false, false, ErrBadHeaderLen},
		{"ihl past end", mod(func(ip IPv4) { ip[0] = 0x4f }), false, false, ErrTruncated},
		{"ihl 6 fits", fixed(func(ip IPv4) { ip[0] = 0x46 }), true, false, nil},
		{"total past end", fixed(func(ip IPv4) { ip.SetTotalLen(41) }), true, false, ErrTruncated},
		{"total below header", fixed(func(ip IPv4) { ip.SetTotalLen(19) }), true, false, ErrBadTotalLen},
		{"total below options", fixed(func(ip IPv4) { ip[0] = 0x46; ip.SetTotalLen(20) }), true, false, ErrBadTotalLen},
		{"total zero rejected", fixed(func(ip IPv4) { ip.SetTotalLen(0) }), true, false, ErrBadTotalLen},
		{"total zero allowed", fixed(func(ip IPv4) { ip.SetTotalLen(0) }), true, true, nil},
		{"bad checksum", mod(func(ip IPv4) { ip.SetTTL(1) }), true, false, ErrBadChecksum},
		{"bad checksum unverified", mod(func(ip IPv4) { ip.SetTTL(1) }), false, false, nil},
	}
	for _, tt := range tests {
		if err := IPv4(tt.b).Check(tt.verify, tt.zeroOK); err != tt.want {
			t.Errorf("%s: Check = %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestIPv4RoundTrip(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	for i := 0; i < 500; i++ {
		tos, tl, id, ttl := uint8(r.Uint32()), 20+r.Intn(1480), uint16(r.Uint32()), uint8(r.Uint32())
		src, dst := randAddr4(r), randAddr4(r)
		b := make([]byte, tl)
		r.Read(b)
		EncodeIPv4(b, tos, tl, id, ttl, ProtoUDP, src, dst)
		ip := IPv4(b)
		if err := ip.Check(true, false); err != nil {
			t.Fatalf("encoded header fails Check: %v", err)
		}
		// gopacket is the independent judge of the encoding.
		pk := gopacket.NewPacket(b, layers.LayerTypeIPv4, gopacket.Default)
		g, ok := pk.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if !ok {
			t.Fatalf("gopacket cannot decode %x", b[:20])
		}
		if g.TOS != tos || int(g.Length) != tl || g.Id != id || g.TTL != ttl || g.Protocol != layers.IPProtocolUDP ||
			g.Flags != layers.IPv4DontFragment || g.FragOffset != 0 || g.IHL != 5 ||
			!g.SrcIP.Equal(src.AsSlice()) || !g.DstIP.Equal(dst.AsSlice()) {
			t.Fatalf("gopacket decodes %+v", g)
		}
		if ip.HeaderLen() != 20 || ip.TotalLen() != tl || ip.ID() != id || ip.TTL() != ttl || ip.TOS() != tos ||
			ip.Protocol() != ProtoUDP || ip.Src() != src || ip.Dst() != dst || ip.IsFragment() || !ip.DontFragment() {
			t.Fatal("getters disagree with EncodeIPv4 arguments")
		}
		if len(ip.Payload()) != tl-20 || unsafe.SliceData(ip.Payload()) != &b[20] {
			t.Fatal("Payload is not a view of the payload bytes")
		}
		// Setters.
		ns, nd := randAddr4(r), randAddr4(r)
		ip.SetSrc(ns)
		ip.SetDst(nd)
		ip.SetTOS(tos ^ 1)
		ip.SetID(id ^ 1)
		ip.SetTTL(ttl ^ 1)
		ip.SetTotalLen(tl - 1)
		ip.SetChecksum(0xbeef)
		if ip.Src() != ns || ip.Dst() != nd || ip.TOS() != tos^1 || ip.ID() != id^1 || ip.TTL() != ttl^1 ||
			ip.TotalLen() != tl-1 || ip.Checksum() != 0xbeef {
			t.Fatal("setters do not round trip")
		}
		if got, want := ip.ComputeChecksum(), refChecksum(b[:10], b[12:20]); got != want {
			t.Fatalf("ComputeChecksum %#x, reference %#x", got, want)
		}
	}
}

func TestIPv4Fragment(t *testing.T) {
	b := make([]byte, 20)
	EncodeIPv4(b, 0, 20, 0, 1, ProtoTCP, mustAddr("198.18.0.1"), mustAddr("198.18.0.2"))
	tests := []struct {
		word uint16
		frag bool
	}{
		{0x0000, false},
		{0x4000, false}, // DF only
		{0x2000, true},  // MF
		{0x0001, true},  // offset 8
		{0x1fff, true},
		{0x8000, false}, // reserved bit is not fragmentation
	}
	for _, tt := range tests {
		binary.BigEndian.PutUint16(b[6:], tt.word)
		if got := IPv4(b).IsFragment(); got != tt.frag {
			t.Errorf("flags %#04x: IsFragment = %v, want %v", tt.word, got, tt.frag)
		}
	}
	// Payload with total length zero runs to the end.
	big := make([]byte, 100)
	copy(big, b)
	IPv4(big).SetTotalLen(0)
	if n := len(IPv4(big).Payload()); n != 80 {
		t.Errorf("Payload with tot_len 0 has %d bytes, want 80", n)
	}
}

func TestTCPRoundTrip(t *testing.T) {
	r := rand.New(rand.NewSource(8))
	for i := 0; i < 500; i++ {
		optLen := 4 * r.Intn(11)
		b := make([]byte, TCPMinLen+optLen+r.Intn(100))
		r.Read(b)
		sp, dp, sq, ak := uint16(r.Uint32()), uint16(r.Uint32()), r.Uint32(), r.Uint32()
		fl, win := TCPFlags(r.Uint32()), uint16(r.Uint32())
		EncodeTCP(b, sp, dp, sq, ak, fl, win, optLen)
		tcp := TCP(b)
		if err := tcp.Check(); err != nil {
			t.Fatal(err)
		}
		if tcp.SrcPort() != sp || tcp.DstPort() != dp || tcp.Seq() != sq || tcp.Ack() != ak || tcp.Flags() != fl ||
			tcp.Window() != win || tcp.Checksum() != 0 || tcp.Urgent() != 0 || tcp.HeaderLen() != TCPMinLen+optLen {
			t.Fatal("EncodeTCP does not round trip")
		}
		if len(tcp.Options()) != optLen || len(tcp.Payload()) != len(b)-TCPMinLen-optLen {
			t.Fatalf("options %d payload %d", len(tcp.Options()), len(tcp.Payload()))
		}
		// gopacket agrees on the layout.
		pk := gopacket.NewPacket(b, layers.LayerTypeTCP, gopacket.Default)
		if g, ok := pk.Layer(layers.LayerTypeTCP).(*layers.TCP); ok {
			if uint16(g.SrcPort) != sp || uint16(g.DstPort) != dp || g.Seq != sq || g.Ack != ak || g.Window != win ||
				g.SYN != fl.Has(TCPFlagSyn) || g.ACK != fl.Has(TCPFlagAck) || g.FIN != fl.Has(TCPFlagFin) ||
				g.RST != fl.Has(TCPFlagRst) || g.CWR != fl.Has(TCPFlagCwr) || g.ECE != fl.Has(TCPFlagEce) ||
				!bytes.Equal(g.Payload, tcp.Payload()) {
				t.Fatalf("gopacket decodes %+v", g)
			}
		} else if optLen == 0 {
			// Random option bytes may be rejected by gopacket, but an
			// option-less header never should be.
			t.Fatalf("gopacket rejected %x", b[:20])
		}
		tcp.SetSrcPort(dp)
		tcp.SetDstPort(sp)
		tcp.SetSeq(ak)
		tcp.SetAck(sq)
		tcp.SetFlags(^fl)
		tcp.SetWindow(^win)
		tcp.SetChecksum(0x1234)
		tcp.SetUrgent(0x4321)
		if tcp.SrcPort() != dp || tcp.DstPort() != sp || tcp.Seq() != ak || tcp.Ack() != sq || tcp.Flags() != ^fl ||
			tcp.Window() != ^win || tcp.Checksum() != 0x1234 || tcp.Urgent() != 0x4321 || tcp.HeaderLen() != TCPMinLen+optLen {
			t.Fatal("setters do not round trip")
		}
	}
}

func TestTCPCheck(t *testing.T) {
	b := make([]byte, 24)
	EncodeTCP(b, 1, 2, 3, 4, TCPFlagSyn, 5, 4)
	tests := []struct {
		name string
		hl   byte
		n    int
		want error
	}{
		{"good", 6, 24, nil},
		{"good with payload", 5, 24, nil},
		{"short", 5, 19, ErrTruncated},
		{"offset 4", 4, 24, ErrBadHeaderLen},
		{"offset 0", 0, 24, ErrBadHeaderLen},
		{"offset past end", 7, 24, ErrTruncated},
		{"max offset", 15, 24, ErrTruncated},
	}
	for _, tt := range tests {
		c := append([]byte(nil), b[:tt.n]...)
		if len(c) > 12 {
			c[12] = tt.hl << 4
		}
		if err := TCP(c).Check(); err != tt.want {
			t.Errorf("%s: Check = %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestTCPFlags(t *testing.T) {
	tests := []struct {
		f    TCPFlags
		want string
	}{
		{0, "none"},
		{TCPFlagSyn, "SYN"},
		{TCPFlagSyn | TCPFlagAck, "SYN|ACK"},
		{TCPFlagFin | TCPFlagPsh | TCPFlagAck, "FIN|PSH|ACK"},
		{TCPFlagRst, "RST"},
		{0xff, "FIN|SYN|RST|PSH|ACK|URG|ECE|CWR"},
	}
	for _, tt := range tests {
		if got := tt.f.String(); got != tt.want {
			t.Errorf("%#x.String() = %q, want %q", uint8(tt.f), got, tt.want)
		}
	}
	f := TCPFlagSyn | TCPFlagAck
	if !f.Has(TCPFlagSyn) || !f.Has(TCPFlagSyn|TCPFlagAck) || f.Has(TCPFlagSyn|TCPFlagFin) || f.Has(TCPFlagRst) {
		t.Error("Has is wrong")
	}
}

func TestVNetHdr(t *testing.T) {
	b := make([]byte, VNetHdrLen)
	h := VNetHdr(b)
	h.Encode(VNetHdrFlagNeedsCsum, VNetGSOTCPv4|VNetGSOECN, 66, 1448, 34, 16)
	if h.Flags() != VNetHdrFlagNeedsCsum || h.GSOType() != VNetGSOTCPv4|VNetGSOECN || h.HdrLen() != 66 ||
		h.GSOSize() != 1448 || h.CsumStart() != 34 || h.CsumOffset() != 16 {
		t.Fatalf("round trip: %x", b)
	}
	// The kernel's layout in host order: compare with a struct of the C
	// layout viewed through unsafe, which is host order by construction.
	type cHdr struct {
		flags, gsoType                         uint8
		hdrLen, gsoSize, csumStart, csumOffset uint16
	}
	if unsafe.Sizeof(cHdr{}) != VNetHdrLen {
		t.Fatalf("C layout size %d", unsafe.Sizeof(cHdr{}))
	}
	c := (*cHdr)(unsafe.Pointer(&b[0]))
	if c.flags != 1 || c.gsoType != 0x81 || c.hdrLen != 66 || c.gsoSize != 1448 || c.csumStart != 34 || c.csumOffset != 16 {
		t.Fatalf("not in host byte order: %+v", *c)
	}
}

func TestAddrSettersAcceptMapped(t *testing.T) {
	b := make([]byte, 20)
	ip := IPv4(b)
	ip.SetSrc(netip.MustParseAddr("::ffff:198.18.1.2"))
	if ip.Src() != mustAddr("198.18.1.2") {
		t.Errorf("mapped SetSrc gave %v", ip.Src())
	}
}
