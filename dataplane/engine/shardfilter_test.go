package engine

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"

	"golang.org/x/net/bpf"

	"github.com/ftbridge/ftbridge/dataplane/pkt"
)

// runFilter runs a socket filter in x/net/bpf's interpreter, which follows
// the kernel's semantics (a load past the frame's end rejects it).
func runFilter(t testing.TB, raw []bpf.RawInstruction, frame []byte) bool {
	t.Helper()
	ins, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("filter does not disassemble")
	}
	vm, err := bpf.NewVM(ins)
	if err != nil {
		t.Fatal(err)
	}
	n, err := vm.Run(frame)
	if err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// checkShards asserts that exactly the filter of shardOf's loop accepts
// frame.
func checkShards(t testing.TB, frame []byte, loops int, probe netip.Addr) {
	t.Helper()
	want := shardOf(frame, loops, probe)
	for i := 0; i < loops; i++ {
		if got := runFilter(t, shardFilter(i, loops, probe), frame); got != (i == want) {
			t.Fatalf("loop %d of %d: filter accepts = %v, shardOf says loop %d\nframe % x", i, loops, got, want, frame)
		}
	}
}

func tcpFrame(src, dst netip.AddrPort, payload int) []byte {
	b := make([]byte, pkt.EthernetLen+pkt.IPv4MinLen+pkt.TCPMinLen+payload)
	pkt.EncodeEthernet(b, pkt.MAC{2, 0, 0, 0, 0, 1}, pkt.MAC{2, 0, 0, 0, 0, 2}, pkt.EtherTypeIPv4)
	pkt.EncodeIPv4(b[pkt.EthernetLen:], 0, len(b)-pkt.EthernetLen, 1, 64, pkt.ProtoTCP, src.Addr(), dst.Addr())
	pkt.EncodeTCP(b[pkt.EthernetLen+pkt.IPv4MinLen:], src.Port(), dst.Port(), 1, 2, pkt.TCPFlagAck, 1000, 0)
	return b
}

// TestShardFilterSymmetric: both directions of a connection reach the same
// loop, and connections spread over every loop.
func TestShardFilterSymmetric(t *testing.T) {
	probe := netip.MustParseAddr("198.18.0.254")
	vip := netip.MustParseAddrPort("198.18.0.10:6379")
	for _, loops := range []int{2, 3, 4, 7} {
		hits := make([]int, loops)
		for i := 0; i < 2000; i++ {
			client := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)}), uint16(20000+i*7))
			in, out := tcpFrame(client, vip, 0), tcpFrame(vip, client, 100)
			a, b := shardOf(in, loops, probe), shardOf(out, loops, probe)
			if a != b {
				t.Fatalf("%v: client to service on loop %d, service to client on loop %d", client, a, b)
			}
			hits[a]++
			if i < 100 {
				checkShards(t, in, loops, probe)
				checkShards(t, out, loops, probe)
			}
		}
		for i, n := range hits {
			// 2000 connections: a fair split gives 2000/loops each.
			if n < 2000/loops/2 {
				t.Errorf("%d loops: loop %d got %d of 2000 connections: %v", loops, i, n, hits)
			}
		}
	}
}

// TestShardFilterLoopZero: what is not a classifiable TCP segment goes to
// loop 0 (it counts and answers it), and so do answers to the probes.
func TestShardFilterLoopZero(t *testing.T) {
	probe := netip.MustParseAddr("198.18.0.254")
	vip := netip.MustParseAddrPort("198.18.0.10:80")
	arp := make([]byte, pkt.EthernetLen+pkt.ARPLen)
	pkt.EncodeEthernet(arp, pkt.BroadcastMAC, pkt.MAC{2, 0, 0, 0, 0, 1}, pkt.EtherTypeARP)
	pkt.EncodeARP(arp[pkt.EthernetLen:], pkt.ARPRequest, pkt.MAC{2, 0, 0, 0, 0, 1}, probe, pkt.MAC{}, vip.Addr())
	udp := tcpFrame(netip.MustParseAddrPort("198.18.1.1:5000"), vip, 8)
	udp[pkt.EthernetLen+9] = 17
	frag := tcpFrame(netip.MustParseAddrPort("198.18.1.1:5001"), vip, 8)
	binary.BigEndian.PutUint16(frag[pkt.EthernetLen+6:], 5) // fragment offset 40
	short := tcpFrame(netip.MustParseAddrPort("198.18.1.1:5002"), vip, 0)[:pkt.EthernetLen+pkt.IPv4MinLen+2]
	longIHL := tcpFrame(netip.MustParseAddrPort("198.18.1.1:5003"), vip, 0)
	longIHL[pkt.EthernetLen] = 0x4f // a 60-byte IP header the frame cannot hold with ports
	answer := tcpFrame(vip, netip.AddrPortFrom(probe, 33001), 0)
	for name, f := range map[string][]byte{"arp": arp, "udp": udp, "fragment": frag, "short": short, "long-ihl": longIHL, "probe-answer": answer, "runt": arp[:20]} {
		for _, loops := range []int{2, 3} {
			if got := shardOf(f, loops, probe); got != 0 {
				t.Errorf("%s: shardOf = %d, want loop 0", name, got)
			}
			checkShards(t, f, loops, probe)
		}
	}
}

// TestShardFilterRandom compares filter and reference over random frames
// that pass the first checks more often than uniform bytes would.
func TestShardFilterRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	probe := netip.MustParseAddr("198.18.0.254")
	for i := 0; i < 3000; i++ {
		f := tcpFrame(netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 1, byte(rng.IntN(256))}), uint16(rng.IntN(65536))),
			netip.MustParseAddrPort("198.18.0.10:80"), rng.IntN(40))
		for j := rng.IntN(4); j > 0; j-- {
			f[rng.IntN(len(f))] = byte(rng.IntN(256))
		}
		f = f[:rng.IntN(len(f)+1)]
		checkShards(t, f, 2+rng.IntN(3), probe)
	}
}

// FuzzShardFilter: the kernel's filter and the Go reference agree on every
// frame, and the reference never panics.
func FuzzShardFilter(f *testing.F) {
	f.Add(tcpFrame(netip.MustParseAddrPort("198.18.1.1:4000"), netip.MustParseAddrPort("198.18.0.10:80"), 4), uint8(3))
	f.Add([]byte{1, 2, 3}, uint8(2))
	probe := netip.MustParseAddr("198.18.0.254")
	f.Fuzz(func(t *testing.T, frame []byte, n uint8) {
		loops := 2 + int(n%6)
		checkShards(t, frame, loops, probe)
	})
}
