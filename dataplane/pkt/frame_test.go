package pkt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// TestParseTCPv4AgainstGopacket builds random frames with gopacket and checks
// that every accessor reports what was serialised, that the checksums
// gopacket computed verify with ours, and that the options parse as built.
func TestParseTCPv4AgainstGopacket(t *testing.T) {
	r := rand.New(rand.NewSource(42))
	for i := 0; i < 2000; i++ {
		opts, wantOpts := randomOptions(r)
		spec := frameSpec{
			srcMAC:       randMAC(r),
			dstMAC:       randMAC(r),
			src:          randAddr4(r),
			dst:          randAddr4(r),
			tos:          uint8(r.Uint32()),
			ttl:          uint8(r.Uint32()),
			id:           uint16(r.Uint32()),
			srcPort:      uint16(r.Uint32()),
			dstPort:      uint16(r.Uint32()),
			seq:          r.Uint32(),
			ack:          r.Uint32(),
			flags:        TCPFlags(r.Uint32()),
			window:       uint16(r.Uint32()),
			urgent:       uint16(r.Uint32()),
			options:      opts,
			payload:      make([]byte, r.Intn(1460)),
			dontFragment: r.Intn(2) == 0,
		}
		r.Read(spec.payload)
		if r.Intn(4) == 0 {
			// Router alert, so that IHL > 5 is exercised.
			spec.ipOptions = []layers.IPv4Option{{OptionType: 0x94, OptionLength: 4, OptionData: []byte{0, 0}}}
		}
		if len(spec.payload) < 10 && r.Intn(2) == 0 {
			spec.pad = 1 + r.Intn(20) // short frames get Ethernet padding
		}
		frame := buildFrame(t, spec)

		var f Frame
		if err := ParseTCPv4(frame, &f, true); err != nil {
			t.Fatalf("frame %d: ParseTCPv4: %v\n%x", i, err, frame)
		}
		if got := f.Eth.Src(); got != spec.srcMAC {
			t.Errorf("frame %d: Eth.Src = %v, want %v", i, got, spec.srcMAC)
		}
		if got := f.Eth.Dst(); got != spec.dstMAC {
			t.Errorf("frame %d: Eth.Dst = %v, want %v", i, got, spec.dstMAC)
		}
		if got := f.Eth.Type(); got != EtherTypeIPv4 {
			t.Errorf("frame %d: Eth.Type = %#x", i, got)
		}
		wantHL := 20 + 4*len(spec.ipOptions)
		if f.IP.HeaderLen() != wantHL {
			t.Errorf("frame %d: IP.HeaderLen = %d, want %d", i, f.IP.HeaderLen(), wantHL)
		}
		if f.IP.Src() != spec.src || f.IP.Dst() != spec.dst {
			t.Errorf("frame %d: IP addrs %v>%v, want %v>%v", i, f.IP.Src(), f.IP.Dst(), spec.src, spec.dst)
		}
		if f.IP.TOS() != spec.tos || f.IP.TTL() != spec.ttl || f.IP.ID() != spec.id || f.IP.Protocol() != ProtoTCP {
			t.Errorf("frame %d: IP tos/ttl/id/proto = %d/%d/%d/%d, want %d/%d/%d/6", i,
				f.IP.TOS(), f.IP.TTL(), f.IP.ID(), f.IP.Protocol(), spec.tos, spec.ttl, spec.id)
		}
		if f.IP.DontFragment() != spec.dontFragment || f.IP.IsFragment() {
			t.Errorf("frame %d: DF=%v frag=%v, want DF=%v", i, f.IP.DontFragment(), f.IP.IsFragment(), spec.dontFragment)
		}
		if len(f.IP) != len(frame)-EthernetLen-spec.pad || f.IP.TotalLen() != len(f.IP) {
			t.Errorf("frame %d: len(IP) = %d, TotalLen %d, frame %d pad %d", i, len(f.IP), f.IP.TotalLen(), len(frame), spec.pad)
		}
		if got := f.IP.ComputeChecksum(); got != f.IP.Checksum() {
			t.Errorf("frame %d: IP.ComputeChecksum = %#x, gopacket stored %#x", i, got, f.IP.Checksum())
		}
		tcp := f.TCP
		if tcp.SrcPort() != spec.srcPort || tcp.DstPort() != spec.dstPort {
			t.Errorf("frame %d: ports %d>%d, want %d>%d", i, tcp.SrcPort(), tcp.DstPort(), spec.srcPort, spec.dstPort)
		}
		if tcp.Seq() != spec.seq || tcp.Ack() != spec.ack {
			t.Errorf("frame %d: seq/ack %d/%d, want %d/%d", i, tcp.Seq(), tcp.Ack(), spec.seq, spec.ack)
		}
		if tcp.Flags() != spec.flags {
			t.Errorf("frame %d: flags %v, want %v", i, tcp.Flags(), spec.flags)
		}
		if tcp.Window() != spec.window || tcp.Urgent() != spec.urgent {
			t.Errorf("frame %d: window/urgent %d/%d, want %d/%d", i, tcp.Window(), tcp.Urgent(), spec.window, spec.urgent)
		}
		if !bytes.Equal(tcp.Payload(), spec.payload) {
			t.Errorf("frame %d: payload differs (%d bytes vs %d)", i, len(tcp.Payload()), len(spec.payload))
		}
		if got := TCPChecksum(f.IP.Src(), f.IP.Dst(), tcp); got != tcp.Checksum() {
			t.Errorf("frame %d: TCPChecksum = %#x, gopacket stored %#x", i, got, tcp.Checksum())
		}
		if !sameOptions(&f.Opts, &wantOpts) {
			t.Errorf("frame %d: options\n got %+v\nwant %+v", i, f.Opts, wantOpts)
		}
		checkOffsets(t, tcp.Options(), &f.Opts)

		// Cross-check with gopacket's own decoder too.
		pk := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.NoCopy)
		gt, ok := pk.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if !ok {
			t.Fatalf("frame %d: gopacket did not decode TCP", i)
		}
		if int(gt.DataOffset)*4 != tcp.HeaderLen() || gt.Checksum != tcp.Checksum() {
			t.Errorf("frame %d: gopacket header len %d csum %#x, ours %d %#x", i, gt.DataOffset*4, gt.Checksum, tcp.HeaderLen(), tcp.Checksum())
		}
	}
}

// checkOffsets verifies that each recorded offset points at the option's
// kind byte with the right length byte.
func checkOffsets(t testing.TB, opts []byte, o *TCPOptions) {
	t.Helper()
	if o.HasTimestamp {
		if o.TimestampOffset < 0 || o.TimestampOffset+OptTimestampLen > len(opts) ||
			opts[o.TimestampOffset] != OptTimestamp || opts[o.TimestampOffset+1] != OptTimestampLen {
			t.Errorf("bad TimestampOffset %d in %x", o.TimestampOffset, opts)
		}
	} else if o.TimestampOffset != -1 {
		t.Errorf("TimestampOffset = %d without timestamp", o.TimestampOffset)
	}
	if o.NumSACK > 0 {
		n := 2 + 8*o.NumSACK
		if o.SACKOffset < 0 || o.SACKOffset+n > len(opts) ||
			opts[o.SACKOffset] != OptSACK || int(opts[o.SACKOffset+1]) != n {
			t.Errorf("bad SACKOffset %d in %x", o.SACKOffset, opts)
		}
	} else if o.SACKOffset != -1 {
		t.Errorf("SACKOffset = %d without SACK", o.SACKOffset)
	}
	if o.FastOpen {
		if o.FastOpenOffset < 0 || o.FastOpenOffset+o.FastOpenLen > len(opts) ||
			(opts[o.FastOpenOffset] != OptFastOpen && opts[o.FastOpenOffset] != OptFastOpenExp) ||
			int(opts[o.FastOpenOffset+1]) != o.FastOpenLen {
			t.Errorf("bad FastOpenOffset %d len %d in %x", o.FastOpenOffset, o.FastOpenLen, opts)
		}
	} else if o.FastOpenOffset != -1 {
		t.Errorf("FastOpenOffset = %d without Fast Open", o.FastOpenOffset)
	}
}

func baseSpec() frameSpec {
	return frameSpec{
		srcMAC:  MAC{2, 0, 0, 0, 0, 1},
		dstMAC:  MAC{2, 0, 0, 0, 0, 2},
		src:     mustAddr("198.18.0.1"),
		dst:     mustAddr("198.18.0.2"),
		ttl:     64,
		id:      7,
		srcPort: 40000,
		dstPort: 80,
		seq:     1000,
		ack:     2000,
		flags:   TCPFlagAck | TCPFlagPsh,
		window:  65535,
		options: []layers.TCPOption{
			tcpOpt(layers.TCPOptionKindNop), tcpOpt(layers.TCPOptionKindNop),
			tcpOpt(layers.TCPOptionKindTimestamps, 0, 0, 0, 1, 0, 0, 0, 2),
		},
		payload:      []byte("hello"),
		dontFragment: true,
	}
}

func TestParseTCPv4Errors(t *testing.T) {
	good := buildFrame(t, baseSpec())
	mod := func(f func(b []byte) []byte) []byte {
		return f(append([]byte(nil), good...))
	}
	withSpec := func(f func(s *frameSpec)) []byte {
		s := baseSpec()
		f(&s)
		return buildFrame(t, s)
	}
	ipOff, tcpOff := EthernetLen, EthernetLen+20
	tests := []struct {
		name  string
		frame []byte
		want  error
		// views that must be set on return
		eth, ip, tcp bool
	}{
		{"good", good, nil, true, true, true},
		{"empty", nil, ErrTruncated, false, false, false},
		{"short ethernet", good[:13], ErrTruncated, false, false, false},
		{"ethernet only", good[:14], ErrTruncated, true, false, false},
		{"vlan", mod(func(b []byte) []byte { binary.BigEndian.PutUint16(b[12:], uint16(EtherTypeVLAN)); return b }), ErrNotTCPv4, true, false, false},
		{"arp", mod(func(b []byte) []byte { binary.BigEndian.PutUint16(b[12:], uint16(EtherTypeARP)); return b }), ErrNotTCPv4, true, false, false},
		{"ipv6", mod(func(b []byte) []byte { binary.BigEndian.PutUint16(b[12:], uint16(EtherTypeIPv6)); return b }), ErrNotTCPv4, true, false, false},
		{"udp", withSpec(func(s *frameSpec) { s.protocol = layers.IPProtocolUDP; s.skipTCPLayer = true }), ErrNotTCPv4, true, true, false},
		{"ip version 6", mod(func(b []byte) []byte { b[ipOff] = 0x65; return b }), ErrBadVersion, true, false, false},
		{"ihl 4", mod(func(b []byte) []byte { b[ipOff] = 0x44; return b }), ErrBadHeaderLen, true, false, false},
		{"ihl past end", mod(func(b []byte) []byte { b[ipOff] = 0x4f; return b[:ipOff+56] }), ErrTruncated, true, false, false},
		{"total len past end", good[:len(good)-1], ErrTruncated, true, false, false},
		{"total len below header", withSpec(func(s *frameSpec) { s.explicitIPTotalLen = 19 }), ErrBadTotalLen, true, false, false},
		{"bad ip checksum", withSpec(func(s *frameSpec) { s.corruptIPChecksum = true }), ErrBadChecksum, true, false, false},
		{"more fragments", withSpec(func(s *frameSpec) { s.moreFrags = true; s.dontFragment = false }), ErrFragment, true, true, false},
		{"fragment offset", withSpec(func(s *frameSpec) { s.fragOffset = 100; s.dontFragment = false }), ErrFragment, true, true, false},
		{"tcp data offset 4", mod(func(b []byte) []byte { b[tcpOff+12] = 4 << 4; return b }), ErrBadHeaderLen, true, true, false},
		{"tcp header past end", mod(func(b []byte) []byte { b[tcpOff+12] = 15 << 4; return b }), ErrTruncated, true, true, false},
		{"tcp shorter than 20", withSpec(func(s *frameSpec) { s.skipTCPLayer = true; s.payload = make([]byte, 19) }), ErrTruncated, true, true, false},
		{"bad option", mod(func(b []byte) []byte { b[tcpOff+20+3] = 11; return b }), ErrBadOption, true, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f Frame
			// Pre-fill f to prove stale views are cleared.
			f.Eth, f.IP, f.TCP = Ethernet(good), IPv4(good), TCP(good)
			err := ParseTCPv4(tt.frame, &f, true)
			if !errors.Is(err, tt.want) {
				t.Fatalf("ParseTCPv4 = %v, want %v", err, tt.want)
			}
			if (f.Eth != nil) != tt.eth || (f.IP != nil) != tt.ip || (f.TCP != nil) != tt.tcp {
				t.Errorf("views set eth=%v ip=%v tcp=%v, want %v %v %v", f.Eth != nil, f.IP != nil, f.TCP != nil, tt.eth, tt.ip, tt.tcp)
			}
		})
	}
}

func TestParseTCPv4ChecksumOptional(t *testing.T) {
	s := baseSpec()
	s.corruptIPChecksum = true
	frame := buildFrame(t, s)
	var f Frame
	if err := ParseTCPv4(frame, &f, false); err != nil {
		t.Fatalf("without verification: %v", err)
	}
	if err := ParseTCPv4(frame, &f, true); err != ErrBadChecksum {
		t.Fatalf("with verification: %v, want ErrBadChecksum", err)
	}
}

func TestParseTCPv4PaddingAndGSO(t *testing.T) {
	s := baseSpec()
	s.payload = nil
	s.pad = 6
	frame := buildFrame(t, s)
	var f Frame
	if err := ParseTCPv4(frame, &f, true); err != nil {
		t.Fatal(err)
	}
	if len(f.TCP.Payload()) != 0 {
		t.Errorf("padding leaked into payload: %x", f.TCP.Payload())
	}
	if len(f.Eth) != len(frame) {
		t.Errorf("Eth trimmed to %d, want whole frame %d", len(f.Eth), len(frame))
	}

	// A GSO super-frame: tot_len 0. The payload runs to the end.
	s = baseSpec()
	s.payload = bytes.Repeat([]byte{0xab}, 3000)
	frame = buildFrame(t, s)
	binary.BigEndian.PutUint16(frame[EthernetLen+2:], 0)
	ip := IPv4(frame[EthernetLen:])
	ip.SetChecksum(ip.ComputeChecksum())
	if err := ParseTCPv4(frame, &f, true); err != ErrBadTotalLen {
		t.Fatalf("ParseTCPv4 on tot_len 0 = %v, want ErrBadTotalLen", err)
	}
	if err := ParseTCPv4GSO(frame, &f, true); err != nil {
		t.Fatalf("ParseTCPv4GSO: %v", err)
	}
	if !bytes.Equal(f.TCP.Payload(), s.payload) {
		t.Errorf("GSO payload %d bytes, want %d", len(f.TCP.Payload()), len(s.payload))
	}
}

func TestParseTCPv4Rewrite(t *testing.T) {
	// Rewriting through the views must change the frame, and incremental
	// checksum updates must leave a frame that gopacket accepts.
	frame := buildFrame(t, baseSpec())
	var f Frame
	if err := ParseTCPv4(frame, &f, true); err != nil {
		t.Fatal(err)
	}
	newSrc := mustAddr("198.19.1.1")
	oldSrc := f.IP.Src()
	o4, n4 := oldSrc.As4(), newSrc.As4()
	oldW, newW := binary.BigEndian.Uint32(o4[:]), binary.BigEndian.Uint32(n4[:])
	f.IP.SetSrc(newSrc)
	f.IP.SetChecksum(UpdateChecksum32(f.IP.Checksum(), oldW, newW))
	f.TCP.SetChecksum(UpdateChecksum32(f.TCP.Checksum(), oldW, newW))
	oldSeq := f.TCP.Seq()
	f.TCP.SetSeq(oldSeq + 0x80000000)
	f.TCP.SetChecksum(UpdateChecksum32(f.TCP.Checksum(), oldSeq, oldSeq+0x80000000))
	f.Eth.SetDst(BroadcastMAC)

	pk := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	gip := pk.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	gtcp := pk.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if !gip.SrcIP.Equal(newSrc.AsSlice()) || gtcp.Seq != oldSeq+0x80000000 {
		t.Fatalf("rewrite not visible to gopacket: %v %d", gip.SrcIP, gtcp.Seq)
	}
	if pk.Layer(layers.LayerTypeEthernet).(*layers.Ethernet).DstMAC.String() != "ff:ff:ff:ff:ff:ff" {
		t.Errorf("dst MAC not rewritten")
	}
	if c := refChecksum(f.IP[:f.IP.HeaderLen()]); c != 0 {
		t.Errorf("IP header does not verify after update: residue %#x", c)
	}
	if c := refTCPChecksum(newSrc, f.IP.Dst(), f.TCP); c != f.TCP.Checksum() {
		t.Errorf("TCP checksum after update %#x, reference %#x", f.TCP.Checksum(), c)
	}
}

func TestParseTCPv4Allocs(t *testing.T) {
	s := baseSpec()
	s.options = append(s.options,
		tcpOpt(layers.TCPOptionKindSACK, append(be32(1), be32(2)...)...),
		tcpOpt(layers.TCPOptionKindMSS, 5, 0xb4))
	frame := buildFrame(t, s)
	var f Frame
	allocs := testing.AllocsPerRun(1000, func() {
		if err := ParseTCPv4(frame, &f, true); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("ParseTCPv4 allocates %v times per run", allocs)
	}
	if !f.Opts.HasMSS || f.Opts.NumSACK != 1 || !f.Opts.HasTimestamp {
		t.Errorf("options not parsed: %+v", f.Opts)
	}
}

func BenchmarkParseTCPv4(b *testing.B) {
	s := baseSpec()
	s.options = append(s.options, tcpOpt(layers.TCPOptionKindNop), tcpOpt(layers.TCPOptionKindNop),
		tcpOpt(layers.TCPOptionKindSACK, append(be32(1), be32(2)...)...))
	s.payload = make([]byte, 1400)
	frame := buildFrame(b, s)
	var f Frame
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if err := ParseTCPv4(frame, &f, true); err != nil {
			b.Fatal(err)
		}
	}
}
