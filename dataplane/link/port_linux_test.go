//go:build linux

package link

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pair creates a namespace with veth a<->b and opens a port on each end.
func pair(tb testing.TB, aOpts, bOpts *Options) (*testNS, *Port, *Port) {
	tb.Helper()
	ns := newNS(tb)
	ns.veth(tb, "ftba", "ftbb")
	return ns, ns.open(tb, "ftba", aOpts), ns.open(tb, "ftbb", bOpts)
}

func TestOpenMetadata(t *testing.T) {
	ns := newNS(t)
	ns.veth(t, "ftba", "ftbb")
	ns.ip(t, "link", "set", "ftba", "mtu", "1400", "address", "02:00:5e:10:20:30")
	p := ns.open(t, "ftba", &Options{VNetHdr: true, Promisc: true})
	if p.Name() != "ftba" || p.MTU() != 1400 || p.MAC() != [6]byte{2, 0, 0x5e, 0x10, 0x20, 0x30} || !p.VNetHdr() {
		t.Errorf("port = name %q mtu %d mac %x vnet %v; want ftba 1400 02005e102030 true", p.Name(), p.MTU(), p.MAC(), p.VNetHdr())
	}
	var ev LinkEvent
	var ok bool
	ns.do(t, func() { ev, ok = LinkState("ftba") })
	if !ok || ev.Index != p.Index() || ev.MAC != p.MAC() {
		t.Errorf("LinkState(ftba) = %+v, %v; port index %d", ev, ok, p.Index())
	}
	// A membership raises the promiscuity count, not the user-visible
	// IFF_PROMISC flag.
	if out := ns.ip(t, "-d", "link", "show", "ftba"); !strings.Contains(out, "promiscuity 1 ") {
		t.Errorf("Promisc: ftba's promiscuity is not 1: %s", out)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if p.Fd() != -1 || p.Close() != nil {
		t.Error("second Close or Fd after Close misbehaves")
	}
	if _, err := p.ReadBatch(make([][]byte, 1), make([]int, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("ReadBatch after Close = %v, want net.ErrClosed", err)
	}
	if out := ns.ip(t, "-d", "link", "show", "ftba"); !strings.Contains(out, "promiscuity 0 ") {
		t.Errorf("promiscuous mode outlived the socket: %s", out)
	}
}

func TestOpenMissing(t *testing.T) {
	ns := newNS(t)
	var err error
	ns.do(t, func() { _, err = Open("ftbmissing0", nil) })
	if err == nil || !strings.Contains(err.Error(), "ftbmissing0") {
		t.Errorf("Open(missing) = %v, want an error naming ftbmissing0", err)
	}
	if !errors.Is(err, ErrPortGone) || !errors.Is(err, unix.ENODEV) {
		t.Errorf("Open(missing) = %v, want ErrPortGone and ENODEV", err)
	}
	long := strings.Repeat("x", unix.IFNAMSIZ)
	if _, err := Open(long, nil); err == nil || !strings.Contains(err.Error(), long) {
		t.Errorf("Open(too long) = %v, want an error naming it", err)
	}
}

func TestReadBatch(t *testing.T) {
	for _, vnet := range []bool{false, true} {
		t.Run(fmt.Sprintf("vnet=%v", vnet), func(t *testing.T) {
			_, a, b := pair(t, &Options{VNetHdr: vnet}, nil)
			const n = 5
			frames := make([][]byte, n)
			for i := range frames {
				frames[i] = testFrame(a.MAC(), b.MAC(), 'B', uint16(i), 60+i*300)
			}
			sent, err := b.WriteBatch(frames)
			if sent != n || err != nil {
				t.Fatalf("WriteBatch = %d, %v; want %d, nil", sent, err, n)
			}
			// Let every frame reach a's queue so one call can take them all.
			time.Sleep(20 * time.Millisecond)
			got, maxBatch := collect(t, a, 2*time.Second, func(r []received) bool { return len(r) >= n })
			if len(got) != n {
				t.Fatalf("received %d frames, want %d", len(got), n)
			}
			if maxBatch < 2 {
				t.Errorf("largest batch from one ReadBatch = %d, want several", maxBatch)
			}
			for i, r := range got {
				if !bytes.Equal(r.frame, frames[i]) {
					t.Errorf("frame %d differs:\n got %x\nwant %x", i, r.frame, frames[i])
				}
				if vnet && r.hdr.GSOType != VNetGSONone {
					t.Errorf("frame %d: vnet header %+v, want no GSO", i, r.hdr)
				}
			}
		})
	}
}

// TestIgnoreOutgoing sends from a second socket on the same interface: the
// kernel never loops a socket's own transmissions back to it, but without
// PACKET_IGNORE_OUTGOING it would deliver everything else leaving the
// interface, including other ports' and the host stack's frames.
func TestIgnoreOutgoing(t *testing.T) {
	ns, a, b := pair(t, nil, nil)
	other := ns.open(t, "ftba", nil)
	if err := other.Write(testFrame(b.MAC(), a.MAC(), 'A', 0, 64)); err != nil {
		t.Fatal(err)
	}
	if err := a.Write(testFrame(b.MAC(), a.MAC(), 'S', 0, 64)); err != nil {
		t.Fatal(err)
	}
	// b must see both frames, proving they were sent...
	atB, _ := collect(t, b, 2*time.Second, func(r []received) bool { return countTagged(r, 'A')+countTagged(r, 'S') >= 2 })
	if countTagged(atB, 'A') != 1 || countTagged(atB, 'S') != 1 {
		t.Fatalf("b received %d frames from the other socket and %d from a, want 1 each", countTagged(atB, 'A'), countTagged(atB, 'S'))
	}
	// ...and a must see neither: once b's later marker has arrived at a,
	// an outgoing frame would have been queued before it.
	if err := b.Write(testFrame(a.MAC(), b.MAC(), 'M', 0, 64)); err != nil {
		t.Fatal(err)
	}
	atA, _ := collect(t, a, 2*time.Second, func(r []received) bool { return countTagged(r, 'M') > 0 })
	if countTagged(atA, 'M') != 1 {
		t.Fatalf("a did not receive b's marker: %d frames", len(atA))
	}
	if c := countTagged(atA, 'A') + countTagged(atA, 'S'); c != 0 {
		t.Errorf("a read %d outgoing frames despite PACKET_IGNORE_OUTGOING", c)
	}
}

func TestReadTruncated(t *testing.T) {
	_, a, b := pair(t, nil, nil)
	big := testFrame(a.MAC(), b.MAC(), 'T', 0, 200)
	small := testFrame(a.MAC(), b.MAC(), 'T', 1, 40)
	if n, err := b.WriteBatch([][]byte{big, small}); n != 2 || err != nil {
		t.Fatalf("WriteBatch = %d, %v", n, err)
	}
	time.Sleep(20 * time.Millisecond)
	bufs := [][]byte{make([]byte, 64), make([]byte, 64)}
	sizes := []int{99, 99}
	n, err := a.ReadBatch(bufs, sizes)
	if n != 2 || err != nil {
		t.Fatalf("ReadBatch = %d, %v; want 2, nil", n, err)
	}
	if sizes[0] != -1 {
		t.Errorf("sizes[0] = %d for a 200-byte frame in a 64-byte buffer, want -1", sizes[0])
	}
	if sizes[1] != len(small) || !bytes.Equal(bufs[1][:len(small)], small) {
		t.Errorf("second frame: size %d (want %d), content %x", sizes[1], len(small), bufs[1][:max(sizes[1], 0)])
	}
}

// TestVNetChecksumOffload writes a TCP SYN whose checksum is left to the
// kernel (NEEDS_CSUM) to a real TCP stack and reads back its SYN-ACK, which
// veth delivers with a partial checksum described by the vnet header.
func TestVNetChecksumOffload(t *testing.T) {
	ns := newNS(t)
	ns.veth(t, "ftba", "ftbb")
	a := ns.open(t, "ftba", &Options{VNetHdr: true})
	ns.ip(t, "addr", "add", "198.18.0.2/24", "dev", "ftbb")
	aMAC := a.MAC()
	ns.ip(t, "neigh", "replace", "198.18.0.1", "lladdr", net.HardwareAddr(aMAC[:]).String(), "dev", "ftbb", "nud", "permanent")
	var bMAC [6]byte
	var ln net.Listener
	var err error
	ns.do(t, func() {
		ev, _ := LinkState("ftbb")
		bMAC = ev.MAC
		ln, err = net.Listen("tcp4", "198.18.0.2:0")
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)

	sip, dip := [4]byte{198, 18, 0, 1}, [4]byte{198, 18, 0, 2}
	syn := tcpFrame(bMAC, a.MAC(), sip, dip, 40000, port, 1000, 0, tcpSYN, nil)
	h := VNetHeader{Flags: VNetFlagNeedsCsum, CsumStart: 34, CsumOffset: 16}
	if err := a.Write(withVNet(a, h, syn)); err != nil {
		t.Fatal(err)
	}
	isSynAck := func(f []byte) bool {
		return len(f) >= 54 && binary.BigEndian.Uint16(f[12:]) == 0x0800 && f[23] == unix.IPPROTO_TCP &&
			binary.BigEndian.Uint16(f[34:]) == port && binary.BigEndian.Uint16(f[36:]) == 40000 &&
			f[47]&(tcpSYN|tcpACK) == tcpSYN|tcpACK
	}
	got, _ := collect(t, a, 3*time.Second, func(rs []received) bool {
		return len(rs) > 0 && isSynAck(rs[len(rs)-1].frame)
	})
	var reply received
	for _, r := range got {
		if isSynAck(r.frame) {
			reply = r
		}
	}
	if reply.frame == nil {
		t.Fatalf("no SYN-ACK from the kernel: the NEEDS_CSUM SYN was not accepted (%d other frames)", len(got))
	}
	f := reply.frame
	if ack := binary.BigEndian.Uint32(f[42:]); ack != 1001 {
		t.Errorf("SYN-ACK acknowledges %d, want 1001", ack)
	}
	ihl := int(f[14]&0xf) * 4
	seg := f[14+ihl : 14+int(binary.BigEndian.Uint16(f[16:]))]
	if reply.hdr.Flags&VNetFlagNeedsCsum != 0 {
		// Complete the checksum as a NIC would, where the header says.
		if int(reply.hdr.CsumStart) != 14+ihl || reply.hdr.CsumOffset != 16 {
			t.Fatalf("vnet header %+v does not point at the TCP checksum", reply.hdr)
		}
		at := f[int(reply.hdr.CsumStart)+int(reply.hdr.CsumOffset):]
		binary.BigEndian.PutUint16(at, ^checksum(f[reply.hdr.CsumStart:14+len(seg)+ihl], 0))
	} else {
		t.Logf("SYN-ACK arrived with vnet flags %#x (no partial checksum)", reply.hdr.Flags)
	}
	if s := checksum(seg, uint32(pseudoSum(f[14:14+ihl], unix.IPPROTO_TCP, len(seg)))); s != 0xffff {
		t.Errorf("SYN-ACK TCP checksum does not verify (sum %#x), vnet header %+v", s, reply.hdr)
	}
}

// TestVNetGSO writes a TCP super-frame with GSO metadata on one end and
// expects the other end to read it unsegmented with the metadata intact.
func TestVNetGSO(t *testing.T) {
	_, a, b := pair(t, &Options{VNetHdr: true}, &Options{VNetHdr: true})
	payload := make([]byte, 3000)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	f := tcpFrame(b.MAC(), a.MAC(), [4]byte{198, 18, 1, 1}, [4]byte{198, 18, 1, 2}, 5000, 6000, 1, 1, tcpACK|tcpPSH, payload)
	h := VNetHeader{
		Flags: VNetFlagNeedsCsum, GSOType: VNetGSOTCPv4,
		HdrLen: 54, GSOSize: 1000, CsumStart: 34, CsumOffset: 16,
	}
	if err := a.Write(withVNet(a, h, f)); err != nil {
		t.Fatalf("Write(super-frame): %v", err)
	}
	got, _ := collect(t, b, 2*time.Second, func(r []received) bool { return len(r) > 0 })
	if len(got) != 1 {
		t.Fatalf("received %d frames, want the one super-frame", len(got))
	}
	r := got[0]
	if r.hdr.GSOType != VNetGSOTCPv4 || r.hdr.GSOSize != 1000 || r.hdr.Flags&VNetFlagNeedsCsum == 0 ||
		r.hdr.CsumStart != 34 || r.hdr.CsumOffset != 16 {
		t.Errorf("received vnet header %+v, want TCPv4 GSO of 1000 with checksum at 34+16", r.hdr)
	}
	if !bytes.Equal(r.frame, f) {
		t.Errorf("super-frame content differs (got %d bytes, want %d)", len(r.frame), len(f))
	}

	// The same frame without GSO metadata exceeds the MTU and is refused.
	h.GSOType, h.GSOSize = VNetGSONone, 0
	if n, err := a.WriteBatch([][]byte{withVNet(a, h, f)}); n != 0 || !errors.Is(err, unix.EMSGSIZE) {
		t.Errorf("WriteBatch(oversized) = %d, %v; want 0, EMSGSIZE", n, err)
	}
}

func TestLinkDownUpGone(t *testing.T) {
	ns, a, b := pair(t, nil, nil)
	poller, err := NewPoller()
	if err != nil {
		t.Fatal(err)
	}
	defer poller.Close()
	bufs, sizes := [][]byte{make([]byte, 2048)}, []int{0}
	waitReady := func() {
		t.Helper()
		ready := []bool{false}
		if _, err := poller.Wait([]int{a.Fd()}, ready, 2*time.Second); err != nil || !ready[0] {
			t.Fatalf("poll on a: ready %v, err %v; want the fd flagged", ready[0], err)
		}
	}

	ns.ip(t, "link", "set", "ftba", "down")
	waitReady()
	if _, err := a.ReadBatch(bufs, sizes); !errors.Is(err, ErrLinkDown) {
		t.Errorf("ReadBatch after link down = %v, want ErrLinkDown", err)
	}
	if err := a.Write(testFrame(b.MAC(), a.MAC(), 'D', 0, 64)); !errors.Is(err, ErrLinkDown) {
		t.Errorf("Write on a down link = %v, want ErrLinkDown", err)
	}
	if err := a.Check(); !errors.Is(err, ErrLinkDown) {
		t.Errorf("Check on a down link = %v, want ErrLinkDown", err)
	}

	// Up again: the kernel re-attaches the socket and traffic flows.
	ns.ip(t, "link", "set", "ftba", "up")
	deadline := time.Now().Add(3 * time.Second)
	for a.Check() != nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := a.Check(); err != nil {
		t.Fatalf("Check after link up = %v", err)
	}
	if err := b.Write(testFrame(a.MAC(), b.MAC(), 'U', 0, 64)); err != nil {
		t.Fatal(err)
	}
	if got, _ := collect(t, a, 2*time.Second, func(r []received) bool { return countTagged(r, 'U') > 0 }); countTagged(got, 'U') != 1 {
		t.Fatalf("no traffic after link came back up")
	}

	ns.ip(t, "link", "del", "ftba")
	waitReady()
	for i := range 2 { // the condition is sticky
		if _, err := a.ReadBatch(bufs, sizes); !errors.Is(err, ErrPortGone) {
			t.Errorf("ReadBatch #%d after delete = %v, want ErrPortGone", i, err)
		}
	}
	if _, err := a.WriteBatch([][]byte{testFrame(broadcast, a.MAC(), 'G', 0, 64)}); !errors.Is(err, ErrPortGone) {
		t.Errorf("WriteBatch after delete = %v, want ErrPortGone", err)
	}
	if err := a.Check(); !errors.Is(err, ErrPortGone) {
		t.Errorf("Check after delete = %v, want ErrPortGone", err)
	}
}

// TestDownThenDeleted covers the case the kernel reports only once: the
// link goes down (ENETDOWN), and its later deletion raises no new error.
func TestDownThenDeleted(t *testing.T) {
	ns, a, _ := pair(t, nil, nil)
	bufs, sizes := [][]byte{make([]byte, 2048)}, []int{0}
	ns.ip(t, "link", "set", "ftba", "down")
	if _, err := a.ReadBatch(bufs, sizes); !errors.Is(err, ErrLinkDown) {
		t.Fatalf("ReadBatch after link down = %v, want ErrLinkDown", err)
	}
	if n, err := a.ReadBatch(bufs, sizes); n != 0 || err != nil {
		t.Fatalf("second ReadBatch while down = %d, %v; want 0, nil", n, err)
	}
	ns.ip(t, "link", "del", "ftba")
	if _, err := a.ReadBatch(bufs, sizes); !errors.Is(err, ErrPortGone) {
		t.Errorf("ReadBatch after delete of a down link = %v, want ErrPortGone", err)
	}
}

func TestPortAllocs(t *testing.T) {
	_, a, b := pair(t, nil, nil)
	bufs, sizes := make([][]byte, 8), make([]int, 8)
	for i := range bufs {
		bufs[i] = make([]byte, 2048)
	}
	if _, err := a.ReadBatch(bufs, sizes); err != nil { // sizes the arrays
		t.Fatal(err)
	}
	if allocs := testing.AllocsPerRun(100, func() {
		if n, err := a.ReadBatch(bufs, sizes); n != 0 || err != nil {
			t.Fatalf("ReadBatch on an empty socket = %d, %v", n, err)
		}
	}); allocs != 0 {
		t.Errorf("ReadBatch on an empty socket: %v allocations per call, want 0", allocs)
	}
	frames := make([][]byte, 4)
	for i := range frames {
		frames[i] = testFrame(b.MAC(), a.MAC(), 'W', uint16(i), 1514)
	}
	if allocs := testing.AllocsPerRun(100, func() {
		if n, err := a.WriteBatch(frames); n != 4 || err != nil {
			t.Fatalf("WriteBatch = %d, %v", n, err)
		}
	}); allocs != 0 {
		t.Errorf("WriteBatch of 4 frames: %v allocations per call, want 0", allocs)
	}
	if allocs := testing.AllocsPerRun(100, func() {
		if err := a.Write(frames[0]); err != nil {
			t.Fatal(err)
		}
	}); allocs != 0 {
		t.Errorf("Write: %v allocations per call, want 0", allocs)
	}
	// b has been receiving all along; draining full batches must not
	// allocate either.
	if allocs := testing.AllocsPerRun(20, func() {
		if _, err := b.ReadBatch(bufs, sizes); err != nil {
			t.Fatal(err)
		}
	}); allocs != 0 {
		t.Errorf("ReadBatch with frames queued: %v allocations per call, want 0", allocs)
	}
}

const benchBatch = 32

func BenchmarkWriteBatch(b *testing.B) {
	_, a, _ := pair(b, nil, nil)
	frames := make([][]byte, benchBatch)
	for i := range frames {
		frames[i] = testFrame(broadcast, a.MAC(), 'X', uint16(i), 1514)
	}
	b.SetBytes(int64(benchBatch * 1514))
	b.ReportAllocs()
	dropped := 0
	for b.Loop() {
		if n, err := a.WriteBatch(frames); err != nil {
			if !errors.Is(err, ErrBackpressure) {
				b.Fatal(err)
			}
			dropped += benchBatch - n
		}
	}
	b.ReportMetric(float64(dropped)/float64(b.N), "backpressured/op")
}

func BenchmarkReadBatch(b *testing.B) {
	_, a, src := pair(b, nil, nil)
	frames := make([][]byte, benchBatch)
	for i := range frames {
		frames[i] = testFrame(a.MAC(), src.MAC(), 'R', uint16(i), 1514)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // producer: keeps a's queue fed
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			src.WriteBatch(frames)
		}
	}()
	defer func() { close(stop); <-done }()

	poller, err := NewPoller()
	if err != nil {
		b.Fatal(err)
	}
	defer poller.Close()
	bufs, sizes := make([][]byte, benchBatch), make([]int, benchBatch)
	for i := range bufs {
		bufs[i] = make([]byte, 2048)
	}
	fds, ready := []int{a.Fd()}, []bool{false}
	b.ReportAllocs()
	b.SetBytes(1514)
	b.ResetTimer()
	for got := 0; got < b.N; {
		n, err := a.ReadBatch(bufs, sizes)
		if err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			if _, err := poller.Wait(fds, ready, time.Second); err != nil {
				b.Fatal(err)
			}
			continue
		}
		got += n
	}
}

// TestReadKernelDropsNoAlloc: the engine reads the counter every probe
// round, so the read must not allocate; a closed port says so.
func TestReadKernelDropsNoAlloc(t *testing.T) {
	n := newNS(t)
	n.veth(t, "d0", "d1")
	rx := n.open(t, "d0", nil)
	if a := testing.AllocsPerRun(100, func() { rx.ReadKernelDrops() }); a != 0 {
		t.Errorf("ReadKernelDrops: %v allocations, want 0", a)
	}
	rx.Close()
	if _, err := rx.ReadKernelDrops(); err == nil {
		t.Fatal("ReadKernelDrops on a closed port: no error")
	}
}
