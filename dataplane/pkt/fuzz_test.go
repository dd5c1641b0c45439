package pkt

import (
	"bytes"
	"testing"
	"unsafe"

	"github.com/gopacket/gopacket/layers"
)

// reencodeOptions writes o back out with the Put* helpers, using the
// original option bytes only for the Fast Open cookie, which TCPOptions does
// not copy. It returns the encoding and the TCPOptions that parsing it must
// yield (offsets aside).
func reencodeOptions(opts []byte, o *TCPOptions) ([]byte, TCPOptions) {
	// The encoding is never longer than the options it came from, which
	// the fuzzer may make longer than a TCP header's 40 bytes.
	buf := make([]byte, max(128, len(opts)))
	want := *o
	n := 0
	if o.HasMSS {
		n += PutMSS(buf[n:], o.MSS)
	}
	if o.HasWScale {
		n += PutWScale(buf[n:], o.WScale)
	}
	if o.SACKPermitted {
		n += PutSACKPermitted(buf[n:])
	}
	if o.HasTimestamp {
		n += PutTimestamp(buf[n:], o.TSVal, o.TSEcr)
	}
	if o.NumSACK > 0 {
		n += PutSACK(buf[n:], o.SACK[:o.NumSACK])
	}
	if o.FastOpen {
		cookie := opts[o.FastOpenOffset+2 : o.FastOpenOffset+o.FastOpenLen]
		if opts[o.FastOpenOffset] == OptFastOpenExp {
			cookie = cookie[2:] // drop the experiment magic
			want.FastOpenLen -= 2
		}
		n += PutFastOpen(buf[n:], cookie)
	}
	return buf[:n], want
}

// checkOptionsRoundTrip re-serialises parsed options and parses them again.
func checkOptionsRoundTrip(t *testing.T, opts []byte, o *TCPOptions) {
	t.Helper()
	checkOffsets(t, opts, o)
	if o.NumSACK < 0 || o.NumSACK > 4 {
		t.Fatalf("NumSACK %d", o.NumSACK)
	}
	enc, want := reencodeOptions(opts, o)
	var again TCPOptions
	if err := ParseTCPOptions(enc, &again); err != nil {
		t.Fatalf("re-encoded options %x do not parse: %v (from %x)", enc, err, opts)
	}
	if !sameOptions(&again, &want) {
		t.Fatalf("re-encoded options differ\n got %+v\nwant %+v\nfrom %x via %x", again, want, opts, enc)
	}
	checkOffsets(t, enc, &again)
}

func addFrameSeeds(f *testing.F) {
	s := baseSpec()
	f.Add(buildFrame(f, s))
	s.options = []layers.TCPOption{
		tcpOpt(layers.TCPOptionKindMSS, 5, 0xb4), tcpOpt(layers.TCPOptionKindSACKPermitted),
		tcpOpt(layers.TCPOptionKindTimestamps, 1, 2, 3, 4, 5, 6, 7, 8), tcpOpt(layers.TCPOptionKindNop),
		tcpOpt(layers.TCPOptionKindWindowScale, 7),
	}
	s.flags = TCPFlagSyn
	s.payload = nil
	s.pad = 6
	f.Add(buildFrame(f, s))
	s.options = []layers.TCPOption{tcpOpt(layers.TCPOptionKindSACK, bytes.Repeat([]byte{1, 2, 3, 4}, 8)...)}
	s.ipOptions = []layers.IPv4Option{{OptionType: 0x94, OptionLength: 4, OptionData: []byte{0, 0}}}
	f.Add(buildFrame(f, s))
	s.options = []layers.TCPOption{tcpOpt(OptFastOpen, 1, 2, 3, 4, 5, 6, 7, 8), tcpOpt(OptFastOpenExp, 0xf9, 0x89, 9, 9)}
	f.Add(buildFrame(f, s))
	f.Add([]byte{})
	f.Add(make([]byte, 54))
}

func FuzzParseTCPv4(f *testing.F) {
	addFrameSeeds(f)
	f.Fuzz(func(t *testing.T, frame []byte) {
		var fr Frame
		err := ParseTCPv4(frame, &fr, len(frame)%2 == 0)
		if err == ErrBadOption {
			// The headers are still valid; only the options are not.
			if fr.TCP == nil {
				t.Fatal("ErrBadOption without a TCP view")
			}
		} else if err != nil {
			return
		}
		// Every view must be a window into frame, in order.
		base := uintptr(unsafe.Pointer(unsafe.SliceData(frame)))
		end := base + uintptr(len(frame))
		within := func(name string, b []byte) {
			p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
			if len(b) > 0 && (p < base || p+uintptr(len(b)) > end) {
				t.Fatalf("%s view [%#x,+%d) outside frame [%#x,%#x)", name, p, len(b), base, end)
			}
		}
		if len(fr.Eth) != len(frame) {
			t.Fatalf("Eth len %d, frame %d", len(fr.Eth), len(frame))
		}
		within("IP", fr.IP)
		within("IP payload", fr.IP.Payload())
		within("TCP", fr.TCP)
		within("options", fr.TCP.Options())
		within("payload", fr.TCP.Payload())
		if len(fr.IP) != fr.IP.TotalLen() {
			t.Fatalf("IP view %d bytes, total length %d", len(fr.IP), fr.IP.TotalLen())
		}
		if fr.IP.HeaderLen()+len(fr.TCP) != len(fr.IP) {
			t.Fatalf("IP header %d + TCP %d != IP %d", fr.IP.HeaderLen(), len(fr.TCP), len(fr.IP))
		}
		if fr.TCP.HeaderLen()+len(fr.TCP.Payload()) != len(fr.TCP) || len(fr.TCP.Options()) != fr.TCP.HeaderLen()-TCPMinLen {
			t.Fatal("TCP header/options/payload lengths inconsistent")
		}
		// Exercise every accessor; they must not panic on a parsed frame.
		_, _, _ = fr.Eth.Dst(), fr.Eth.Src(), fr.Eth.Type()
		_, _, _, _ = fr.IP.ID(), fr.IP.TTL(), fr.IP.TOS(), fr.IP.IsFragment()
		src, dst := fr.IP.Src(), fr.IP.Dst()
		_, _ = fr.IP.Checksum(), fr.IP.ComputeChecksum()
		_, _, _, _ = fr.TCP.SrcPort(), fr.TCP.DstPort(), fr.TCP.Window(), fr.TCP.Urgent()
		_ = fr.TCP.Flags().String()

		if err == nil {
			checkOptionsRoundTrip(t, fr.TCP.Options(), &fr.Opts)
		}

		// Incremental checksum updates through the views must match a
		// full recomputation.
		fr.TCP.SetChecksum(TCPChecksum(src, dst, fr.TCP))
		if refTCPChecksum(src, dst, fr.TCP) != fr.TCP.Checksum() {
			t.Fatal("TCPChecksum disagrees with the reference")
		}
		oldSeq := fr.TCP.Seq()
		newSeq := oldSeq ^ 0xa5a5a5a5
		fr.TCP.SetSeq(newSeq)
		fr.TCP.SetChecksum(UpdateChecksum32(fr.TCP.Checksum(), oldSeq, newSeq))
		if want := TCPChecksum(src, dst, fr.TCP); fr.TCP.Checksum() != want {
			t.Fatalf("incremental %#x, full %#x", fr.TCP.Checksum(), want)
		}
	})
}

func FuzzParseTCPOptions(f *testing.F) {
	f.Add([]byte{2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7})
	f.Add([]byte{1, 1, 5, 18, 0, 0, 0, 10, 0, 0, 0, 20, 0, 0, 0, 30, 0, 0, 0, 40})
	f.Add([]byte{34, 10, 1, 2, 3, 4, 5, 6, 7, 8, 254, 4, 0xf9, 0x89})
	f.Add([]byte{8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 8, 10, 0, 0, 0, 3, 0, 0, 0, 4})
	f.Add([]byte{2, 0})
	f.Add([]byte{5, 11, 0})
	f.Add([]byte{1, 0, 2, 4})
	f.Add([]byte{3})
	f.Fuzz(func(t *testing.T, opts []byte) {
		var o TCPOptions
		if err := ParseTCPOptions(opts, &o); err != nil {
			if err != ErrBadOption {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		checkOptionsRoundTrip(t, opts, &o)

		// Stripping an option with NopOut must remove it, unless an
		// earlier duplicate now shows through (the last one wins).
		if o.HasTimestamp {
			c := append([]byte(nil), opts...)
			NopOut(c, o.TimestampOffset, OptTimestampLen)
			var p TCPOptions
			if err := ParseTCPOptions(c, &p); err != nil {
				t.Fatalf("NopOut made options invalid: %v", err)
			}
			if p.HasTimestamp && p.TimestampOffset >= o.TimestampOffset {
				t.Fatalf("timestamp at %d survived NopOut (now at %d)", o.TimestampOffset, p.TimestampOffset)
			}
		}
		if o.FastOpen {
			c := append([]byte(nil), opts...)
			NopOut(c, o.FastOpenOffset, o.FastOpenLen)
			var p TCPOptions
			if err := ParseTCPOptions(c, &p); err != nil {
				t.Fatalf("NopOut made options invalid: %v", err)
			}
			if p.FastOpen && p.FastOpenOffset >= o.FastOpenOffset {
				t.Fatalf("fast open at %d survived NopOut", o.FastOpenOffset)
			}
		}
	})
}

func FuzzARP(f *testing.F) {
	b := make([]byte, ARPLen)
	EncodeARP(b, ARPRequest, MAC{2, 0, 0, 0, 0, 1}, mustAddr("198.18.0.1"), MAC{}, mustAddr("198.18.0.2"))
	f.Add(b)
	f.Add(append(append([]byte(nil), b...), make([]byte, 18)...))
	f.Add(b[:20])
	f.Fuzz(func(t *testing.T, data []byte) {
		a := ARP(data)
		if err := a.Check(); err != nil {
			if err != ErrBadARP && err != ErrTruncated {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		// A valid body must re-encode to exactly its first ARPLen bytes.
		out := make([]byte, ARPLen)
		EncodeARP(out, a.Op(), a.SenderMAC(), a.SenderIP(), a.TargetMAC(), a.TargetIP())
		if !bytes.Equal(out, data[:ARPLen]) {
			t.Fatalf("re-encoded %x, input %x", out, data[:ARPLen])
		}
		if op := a.Op(); op != ARPRequest && op != ARPReply {
			t.Fatalf("Check accepted op %d", op)
		}
	})
}
