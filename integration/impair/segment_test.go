package impair

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/link"
	"github.com/ftbridge/ftbridge/dataplane/pkt"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

var (
	src4 = netip.MustParseAddr("198.18.0.1")
	dst4 = netip.MustParseAddr("198.18.0.10")
	src6 = netip.MustParseAddr("2001:db8::1")
	dst6 = netip.MustParseAddr("2001:db8::10")
)

// gsoFrame builds a TCP super-frame as the kernel hands it to a packet
// socket: virtio_net_hdr with NEEDS_CSUM and the GSO type, HdrLen covering
// some payload too (skb_headlen), a timestamp option, and the checksum field
// holding the partial pseudo-header sum.
func gsoFrame(v6 bool, payload []byte, mss int, flags byte) []byte {
	const optLen = 12
	l3 := ethHdrLen
	ipLen := ipv4MinHdr
	ether := uint16(etherIPv4)
	if v6 {
		ipLen, ether = ipv6HdrLen, etherIPv6
	}
	l4 := l3 + ipLen
	end := l4 + tcpMinHdr + optLen
	f := make([]byte, link.VNetHdrLen+end+len(payload))
	gso := uint8(link.VNetGSOTCPv4)
	if v6 {
		gso = link.VNetGSOTCPv6
	}
	if flags&tcpFlagCWR != 0 {
		gso |= link.VNetGSOECN
	}
	link.VNetHeader{Flags: link.VNetFlagNeedsCsum, GSOType: gso, HdrLen: uint16(end + 100),
		GSOSize: uint16(mss), CsumStart: uint16(l4), CsumOffset: tcpCsumOff}.Encode(f)
	e := f[link.VNetHdrLen:]
	copy(e[0:6], []byte{2, 0, 0, 0, 0, 2})
	copy(e[6:12], []byte{2, 0, 0, 0, 0, 1})
	binary.BigEndian.PutUint16(e[12:], ether)
	ip := e[l3:l4]
	tcpLen := end - l4 + len(payload)
	var s, d netip.Addr
	if v6 {
		s, d = src6, dst6
		ip[0] = 6 << 4
		binary.BigEndian.PutUint16(ip[4:], uint16(tcpLen))
		ip[6], ip[7] = protoTCP, 64
		copy(ip[8:24], s.AsSlice())
		copy(ip[24:40], d.AsSlice())
	} else {
		s, d = src4, dst4
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(ipLen+tcpLen))
		binary.BigEndian.PutUint16(ip[4:], 0xfff0) // wraps while segmenting
		ip[6] = 0x40
		ip[8], ip[9] = 64, protoTCP
		copy(ip[12:16], s.AsSlice())
		copy(ip[16:20], d.AsSlice())
		binary.BigEndian.PutUint16(ip[10:], ^pkt.Fold(pkt.Sum(ip, 0)))
	}
	tcp := e[l4:end]
	binary.BigEndian.PutUint16(tcp[0:], 7000)
	binary.BigEndian.PutUint16(tcp[2:], 40000)
	binary.BigEndian.PutUint32(tcp[4:], 0xfffff000) // wraps while segmenting
	binary.BigEndian.PutUint32(tcp[8:], 12345)
	tcp[12] = byte((tcpMinHdr + optLen) / 4 << 4)
	tcp[13] = flags
	binary.BigEndian.PutUint16(tcp[14:], 502)
	copy(tcp[20:], []byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2})
	binary.BigEndian.PutUint16(tcp[16:], pkt.PartialTCPChecksum(s, d, tcpLen))
	copy(e[end:], payload)
	return f
}

// finish completes a NEEDS_CSUM checksum as the kernel would on transmit.
func finish(t *testing.T, b []byte) []byte {
	t.Helper()
	h := link.DecodeVNetHeader(b)
	if h.Flags != link.VNetFlagNeedsCsum || h.GSOType != link.VNetGSONone {
		t.Fatalf("segment header %+v: want NEEDS_CSUM without GSO", h)
	}
	f := append([]byte(nil), b[link.VNetHdrLen:]...)
	at := int(h.CsumStart) + int(h.CsumOffset)
	binary.BigEndian.PutUint16(f[at:], ^pkt.Fold(pkt.Sum(f[h.CsumStart:], 0)))
	return f
}

func TestSegmentTCP(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		payload := make([]byte, 10000)
		for i := range payload {
			payload[i] = byte(rand.Uint32())
		}
		const mss = 1448
		flags := byte(0x10 | tcpFlagPSH | tcpFlagFIN | tcpFlagCWR)
		super := gsoFrame(v6, payload, mss, flags)
		var pool pool
		segs, ok := segmentTCP(super, pool.get, nil)
		if !ok || len(segs) != 7 {
			t.Fatalf("v6=%v: %d segments, ok %v; want 7", v6, len(segs), ok)
		}
		var got []byte
		for i, seg := range segs {
			f := finish(t, seg)
			p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
			if el := p.ErrorLayer(); el != nil {
				t.Fatalf("segment %d: %v", i, el.Error())
			}
			tcp := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
			if v6 {
				ip := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
				if int(ip.Length) != len(f)-ethHdrLen-ipv6HdrLen {
					t.Errorf("segment %d: IPv6 length %d for %d bytes", i, ip.Length, len(f))
				}
				tcp.SetNetworkLayerForChecksum(ip)
			} else {
				ip := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
				if int(ip.Length) != len(f)-ethHdrLen || ip.Id != uint16(0xfff0+i) || ip.Flags != layers.IPv4DontFragment {
					t.Errorf("segment %d: IPv4 length %d id %#x flags %v", i, ip.Length, ip.Id, ip.Flags)
				}
				if _, r := ip.VerifyChecksum(); !r.Valid {
					t.Errorf("segment %d: bad IPv4 checksum %+v", i, r)
				}
				tcp.SetNetworkLayerForChecksum(ip)
			}
			if err, r := tcp.VerifyChecksum(); err != nil || !r.Valid {
				t.Errorf("segment %d: bad TCP checksum %+v %v", i, r, err)
			}
			last := i == len(segs)-1
			if tcp.Seq != 0xfffff000+uint32(i*mss) || tcp.Ack != 12345 || tcp.Window != 502 || len(tcp.Options) != 3 {
				t.Errorf("segment %d: seq %#x ack %d win %d opts %v", i, tcp.Seq, tcp.Ack, tcp.Window, tcp.Options)
			}
			if tcp.FIN != last || tcp.PSH != last || tcp.CWR != (i == 0) || !tcp.ACK {
				t.Errorf("segment %d: FIN %v PSH %v CWR %v ACK %v", i, tcp.FIN, tcp.PSH, tcp.CWR, tcp.ACK)
			}
			if len(tcp.Payload) > mss || (!last && len(tcp.Payload) != mss) {
				t.Errorf("segment %d: %d payload bytes", i, len(tcp.Payload))
			}
			got = append(got, tcp.Payload...)
		}
		if !bytes.Equal(got, payload) {
			t.Errorf("v6=%v: segments do not reassemble the payload", v6)
		}
		if w, s := wireSize(super, true); s != len(super)-link.VNetHdrLen || w != s+6*(s-len(payload)) {
			t.Errorf("wireSize(super) = %d, %d", w, s)
		}
	}
}

func TestSegmentRefuses(t *testing.T) {
	good := gsoFrame(false, make([]byte, 3000), 1000, 0x10)
	mutate := func(f func(b []byte)) []byte {
		b := append([]byte(nil), good...)
		f(b)
		return b
	}
	setHdr := func(f func(h *link.VNetHeader)) []byte {
		return mutate(func(b []byte) {
			h := link.DecodeVNetHeader(b)
			f(&h)
			h.Encode(b)
		})
	}
	cases := map[string][]byte{
		"not GSO":       setHdr(func(h *link.VNetHeader) { h.GSOType = link.VNetGSONone }),
		"UDP GSO":       setHdr(func(h *link.VNetHeader) { h.GSOType = link.VNetGSOUDPL4 }),
		"v6 type on v4": setHdr(func(h *link.VNetHeader) { h.GSOType = link.VNetGSOTCPv6 }),
		"no csum":       setHdr(func(h *link.VNetHeader) { h.Flags = 0 }),
		"gso size 0":    setHdr(func(h *link.VNetHeader) { h.GSOSize = 0 }),
		"csum start":    setHdr(func(h *link.VNetHeader) { h.CsumStart++ }),
		"not TCP":       mutate(func(b []byte) { b[link.VNetHdrLen+ethHdrLen+9] = protoUDP }),
		"not IP":        mutate(func(b []byte) { b[link.VNetHdrLen+12] = 0x88 }),
		"short":         good[:link.VNetHdrLen+40],
		"headers only":  good[:link.VNetHdrLen+ethHdrLen+ipv4MinHdr+32],
		"tiny":          good[:4],
	}
	for name, b := range cases {
		var p pool
		before := append([]byte(nil), b...)
		segs, ok := segmentTCP(b, p.get, nil)
		if ok || len(segs) != 0 || !bytes.Equal(before, b) {
			t.Errorf("%s: split into %d (ok %v) or modified", name, len(segs), ok)
		}
	}
}

func TestShaperSplitsOnlyForPerFrameDecisions(t *testing.T) {
	super := gsoFrame(false, make([]byte, 14480), 1448, 0x10)
	for _, c := range []struct {
		spec  Spec
		split bool
	}{
		{Spec{}, false},
		{Spec{Delay: time.Millisecond}, false},
		{Spec{RateBps: 1e9}, false},
		{Spec{Loss: 0.5}, true},
		{Spec{Duplicate: 0.5}, true},
		{Spec{Reorder: 0.5}, true},
	} {
		var cnt counters
		s := newShaper(ToBox, true, &cnt)
		c.spec.Dir = ToBox
		s.setSpec(c.spec)
		s.arrive(super, 0)
		var out int
		for now := time.Duration(0); ; now += time.Millisecond {
			s.release(now)
			out += len(s.out)
			for _, b := range s.out {
				if h := link.DecodeVNetHeader(b); c.split && (h.GSOType != link.VNetGSONone || len(b) > 1600) {
					t.Errorf("%v: a %d-byte frame with GSO type %d left", c.spec, len(b), h.GSOType)
				}
			}
			s.recycle()
			if _, ok := s.next(); !ok {
				break
			}
		}
		st := cnt.snapshot()
		if c.split {
			if st.Segmented != 1 || st.Received != 10 || uint64(out) != st.Received+st.Duplicated-st.Lost {
				t.Errorf("%v: %+v, %d out; want 10 segments accounted for", c.spec, st, out)
			}
		} else if st.Segmented != 0 || st.Received != 1 || out != 1 {
			t.Errorf("%v: %+v, %d out; want the super-frame whole", c.spec, st, out)
		}
		if s.queued != 0 || s.queuedBytes != 0 {
			t.Errorf("%v: %d frames, %d bytes still accounted as queued", c.spec, s.queued, s.queuedBytes)
		}
	}
}
