package integration_test

// Bad input: malformed frames, a SYN flood past the connection cap and
// out-of-window segments injected into a live connection, all while a
// verified stream runs through the box.

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/engine"
	"github.com/ftbridge/ftbridge/integration/labsvc"
)

// backgroundDownload runs a paced, verified download on c and reports its
// result on the returned channel.
func backgroundDownload(c net.Conn, size int64, seed uint64, pace *labsvc.Pace) <-chan error {
	ch := make(chan error, 1)
	go func() {
		res, err := labsvc.Download(c, size, seed, pace)
		if err == nil && res.SHA256 != labsvc.StreamHash(size, seed) {
			err = fmt.Errorf("hash mismatch")
		}
		if err != nil {
			err = fmt.Errorf("%w (after %d bytes)", err, res.Bytes)
		}
		ch <- err
	}()
	return ch
}

// dropDelta returns after[k]-before[k] for every drop reason.
func dropDelta(before, after engine.Snapshot) map[string]int64 {
	d := map[string]int64{}
	for k, v := range after.Drops {
		d[k] = int64(v) - int64(before.Drops[k])
	}
	return d
}

func fmtDrops(d map[string]int64) string {
	var keys []string
	for k, v := range d {
		if v != 0 {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, d[k]))
	}
	return strings.Join(parts, " ")
}

// badFrame is one malformed frame kind and the drop counter it must raise
// ("" when several reasons are acceptable, e.g. random garbage).
type badFrame struct {
	name    string
	counter string
	build   func(dst net.HardwareAddr) []byte
}

// offload says whether f goes through the checksum-offload socket (its
// name ends in "-offload").
func (f badFrame) offload() bool { return strings.HasSuffix(f.name, "-offload") }

// badFrames are the malformed frames sent from the client side. src and
// macs are the client's; they never use the live stream's port.
func badFrames(b *bridgeLab, srcMAC net.HardwareAddr, rnd *rand.Rand) []badFrame {
	client, vip := b.ClientIP, b.VIP
	base := func(dst net.HardwareAddr) seg {
		return seg{srcMAC: srcMAC, dstMAC: dst, src: client, dst: vip, sport: 40001, dport: 7000,
			seq: 1000, ack: 2000, flags: tcpACK, win: 1000, payload: []byte("bad input")}
	}
	mod := func(f func(fr []byte) []byte) func(net.HardwareAddr) []byte {
		return func(dst net.HardwareAddr) []byte { return f(base(dst).frame()) }
	}
	return []badFrame{
		{"ethernet-header-only", "malformed", mod(func(fr []byte) []byte { return fr[:14] })},
		{"ipv4-truncated", "malformed", mod(func(fr []byte) []byte { return fr[:14+12] })},
		{"ipv4-ihl-3", "malformed", mod(func(fr []byte) []byte { fr[14] = 0x43; fixIPSum(fr); return fr })},
		{"ipv4-ihl-past-end", "malformed", mod(func(fr []byte) []byte {
			fr = fr[:14+40]
			fr[14] = 0x4f
			binary.BigEndian.PutUint16(fr[16:], 40)
			fixIPSum(fr)
			return fr
		})},
		{"ipv4-version-6", "malformed", mod(func(fr []byte) []byte { fr[14] = 0x65; fixIPSum(fr); return fr })},
		{"ipv4-total-length-past-end", "malformed", mod(func(fr []byte) []byte {
			binary.BigEndian.PutUint16(fr[16:], uint16(len(fr)-14+100))
			fixIPSum(fr)
			return fr
		})},
		{"ipv4-total-length-below-header", "malformed", mod(func(fr []byte) []byte {
			binary.BigEndian.PutUint16(fr[16:], 12)
			fixIPSum(fr)
			return fr
		})},
		{"ipv4-bad-header-checksum", "malformed", mod(func(fr []byte) []byte { fr[14+10] ^= 0xff; return fr })},
		{"tcp-data-offset-past-end", "malformed", func(dst net.HardwareAddr) []byte {
			s := base(dst)
			s.payload = nil
			fr := s.frame()
			fr[14+20+12] = 15 << 4 // 60-byte header in a 20-byte segment
			return fr
		}},
		{"tcp-data-offset-4", "malformed", mod(func(fr []byte) []byte { fr[14+20+12] = 4 << 4; return fr })},
		{"tcp-truncated-header", "malformed", func(dst net.HardwareAddr) []byte {
			s := base(dst)
			s.payload = nil
			fr := s.frame()[:14+20+12]
			binary.BigEndian.PutUint16(fr[16:], 32)
			fixIPSum(fr)
			return fr
		}},
		{"tcp-option-zero-length", "malformed", func(dst net.HardwareAddr) []byte {
			s := base(dst)
			s.opts = []byte{8, 0, 0, 0} // timestamp kind, length 0
			return s.frame()
		}},
		{"tcp-option-length-1", "malformed", func(dst net.HardwareAddr) []byte {
			s := base(dst)
			s.opts = []byte{2, 1, 0, 0}
			return s.frame()
		}},
		{"tcp-option-overlong", "malformed", func(dst net.HardwareAddr) []byte {
			s := base(dst)
			s.opts = []byte{1, 1, 8, 40, 0, 0, 0, 0} // timestamp claiming 40 bytes
			return s.frame()
		}},
		{"tcp-option-mss-wrong-length", "malformed", func(dst net.HardwareAddr) []byte {
			s := base(dst)
			s.flags = tcpSYN
			s.opts = []byte{2, 6, 5, 0xb4, 0, 0, 1, 1}
			return s.frame()
		}},
		{"tcp-bad-checksum", "bad-checksum", func(dst net.HardwareAddr) []byte {
			s := base(dst)
			s.badTCPSum = true
			return s.frame()
		}},
		{"tcp-syn-bad-checksum", "bad-checksum", func(dst net.HardwareAddr) []byte {
			s := base(dst)
			s.flags, s.ack, s.payload, s.badTCPSum = tcpSYN, 0, nil, true
			s.opts = []byte{2, 4, 5, 0xb4}
			return s.frame()
		}},
		{"ip-fragment-first", "fragment", func(dst net.HardwareAddr) []byte {
			s := base(dst)
			s.fragField = 0x2000 // MF
			return s.frame()
		}},
		{"ip-fragment-later", "fragment", func(dst net.HardwareAddr) []byte {
			s := base(dst)
			s.fragField = 185 // offset 1480, last fragment
			return s.frame()
		}},
		{"tcp-no-connection", "no-connection", func(dst net.HardwareAddr) []byte {
			s := base(dst)
			return s.frame()
		}},
		{"tcp-fin-no-connection", "no-connection", func(dst net.HardwareAddr) []byte {
			s := base(dst)
			s.flags = tcpFIN | tcpACK
			return s.frame()
		}},
		// The same with the checksum left to offload, as the kernel's own
		// TCP sends over veth (see rawSock.offload).
		{"tcp-no-connection-offload", "no-connection", func(dst net.HardwareAddr) []byte {
			return base(dst).frame()
		}},
		{"arp-truncated", "malformed", func(dst net.HardwareAddr) []byte {
			fr := make([]byte, 14+10)
			copy(fr[0:6], dst)
			copy(fr[6:12], srcMAC)
			binary.BigEndian.PutUint16(fr[12:], 0x0806)
			copy(fr[14:], []byte{0, 1, 8, 0, 6, 4, 0, 1, 1, 2})
			return fr
		}},
		{"garbage-ipv4", "", func(dst net.HardwareAddr) []byte {
			fr := make([]byte, 14+20+rnd.IntN(200))
			for i := range fr {
				fr[i] = byte(rnd.Uint32())
			}
			copy(fr[0:6], dst)
			copy(fr[6:12], srcMAC)
			binary.BigEndian.PutUint16(fr[12:], 0x0800)
			return fr
		}},
		{"garbage-any", "", func(dst net.HardwareAddr) []byte {
			fr := make([]byte, 14+rnd.IntN(1400))
			for i := range fr {
				fr[i] = byte(rnd.Uint32())
			}
			copy(fr[0:6], dst)
			copy(fr[6:12], srcMAC)
			return fr
		}},
	}
}

// TestMalformedFrames sends every kind of malformed frame from the client
// namespace, to the VIP's MAC and to broadcast, while a verified download
// runs through the box.
func TestMalformedFrames(t *testing.T) {
	b := newBridgeLab(t, labOptions{replicas: 2})
	b.logEventsOnFailure()
	b.waitHealthy(7000, "a", "b")
	guard := b.guardResets()
	c := b.dial(7000)
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if last, _, err := labsvc.Incr(c, 1); err != nil || last != 1 {
		t.Fatalf("incr: %d %v", last, err)
	}
	clientMAC := b.ifMAC(b.ClientNS, "eth0")
	vipMAC := b.neighMAC(b.ClientNS, b.VIP)
	if up := b.ifMAC(b.BoxNS, b.Uplink); vipMAC.String() != up.String() {
		t.Logf("VIP MAC %s (the uplink's is %s)", vipMAC, up)
	}
	raw := b.rawSocket(b.ClientNS, "eth0", false)
	rawOff := b.rawSocket(b.ClientNS, "eth0", true)
	send := func(f badFrame, dst net.HardwareAddr) error {
		if f.offload() {
			return rawOff.send(f.build(dst))
		}
		return raw.send(f.build(dst))
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	frames := badFrames(b, clientMAC, rnd)
	bcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	before := b.snapshot()

	const size = 3 << 20
	done := backgroundDownload(c, size, 5, &labsvc.Pace{Chunk: 32 << 10, Delay: 10 * time.Millisecond})
	// Each kind alone first, to see which counter it moves, then all of
	// them mixed for the rest of the download.
	perKind := map[string]map[string]int64{}
	for _, f := range frames {
		s0 := b.snapshot()
		for i := 0; i < 10; i++ {
			for _, dst := range []net.HardwareAddr{vipMAC, bcast} {
				if err := send(f, dst); err != nil {
					t.Fatalf("%s: send: %v", f.name, err)
				}
			}
		}
		time.Sleep(5 * time.Millisecond)
		perKind[f.name] = dropDelta(s0, b.snapshot())
	}
	sent := 0
	for deadline := time.Now().Add(300 * time.Millisecond); time.Now().Before(deadline); {
		f := frames[rnd.IntN(len(frames))]
		dst := vipMAC
		if rnd.IntN(4) == 0 {
			dst = bcast
		}
		if err := send(f, dst); err == nil {
			sent++
		}
		if sent%64 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("download during the bad frames: %v", err)
	}
	after := b.snapshot()
	total := dropDelta(before, after)
	t.Logf("drops while sending: %s (mixed phase: %d frames)", fmtDrops(total), sent)
	for _, f := range frames {
		d := perKind[f.name]
		t.Logf("  %-32s %s", f.name, fmtDrops(d))
		if f.counter != "" && d[f.counter] < 20 {
			t.Errorf("%s: drops[%q] rose by %d for 20 frames (all drops: %s)", f.name, f.counter, d[f.counter], fmtDrops(d))
		}
	}
	for _, k := range []string{"malformed", "bad-checksum", "fragment", "no-connection"} {
		if total[k] <= 0 {
			t.Errorf("drops[%q] did not increase", k)
		}
	}
	if last, _, err := labsvc.Incr(c, 3); err != nil || last != 4 {
		t.Fatalf("incr after the bad frames: %d %v", last, err)
	}
	b.checkMembers(c, "a", "b")
	if err := labsvc.Quit(c); err != nil {
		t.Fatal(err)
	}
	if after.Failovers != 0 || after.Divergences != 0 {
		t.Errorf("failovers %d, divergences %d", after.Failovers, after.Divergences)
	}
	guard.check()
	b.daemonAlive()
}

// floodSource returns a random source in 198.18.0.0/24 that is none of the
// lab's own addresses (client .1, VIP .10, the probe source .254).
func floodSource(rnd *rand.Rand) netip.Addr {
	for {
		x := byte(2 + rnd.IntN(252))
		if x != 10 && x != 254 {
			return netip.AddrFrom4([4]byte{198, 18, 0, x})
		}
	}
}

// TestSYNFlood floods the VIP with SYNs from made-up sources past a table
// of 64 connections while an established stream runs.
func TestSYNFlood(t *testing.T) {
	const maxConns = 64
	b := newBridgeLab(t, labOptions{replicas: 2, extra: fmt.Sprintf(`, "limits": {"max_connections": %d}`, maxConns)})
	b.logEventsOnFailure()
	b.waitHealthy(7000, "a", "b")
	guard := b.guardResets()
	c := b.dial(7000)
	c.SetDeadline(time.Now().Add(60 * time.Second))
	clientMAC := b.ifMAC(b.ClientNS, "eth0")
	vipMAC := b.neighMAC(b.ClientNS, b.VIP)
	// The SYNs leave like the client kernel's own (checksum offload), so
	// they reach the connection table whatever the box thinks of full
	// checksums (TestTCPChecksumVerification covers those).
	raw := b.rawSocket(b.ClientNS, "eth0", true)
	before := b.snapshot()

	const size = 3 << 20
	done := backgroundDownload(c, size, 8, &labsvc.Pace{Chunk: 32 << 10, Delay: 10 * time.Millisecond})
	rnd := rand.New(rand.NewPCG(3, 4))
	const floodN = 5000
	sendErrs := 0
	maxSeen := 0
	for i := 0; i < floodN; i++ {
		s := seg{srcMAC: clientMAC, dstMAC: vipMAC, src: floodSource(rnd), dst: b.VIP,
			sport: uint16(1024 + rnd.IntN(60000)), dport: 7000, seq: rnd.Uint32(), flags: tcpSYN, win: 64240,
			opts: []byte{2, 4, 5, 0xb4, 4, 2, 1, 3, 3, 7}}
		if err := raw.send(s.frame()); err != nil {
			sendErrs++
		}
		if i%500 == 499 {
			time.Sleep(2 * time.Millisecond)
			if s := b.snapshot(); s.Connections > maxSeen {
				maxSeen = s.Connections
			}
		}
	}
	during := b.snapshot()
	maxSeen = max(maxSeen, during.Connections)
	if err := <-done; err != nil {
		t.Fatalf("established download during the flood: %v", err)
	}
	d := dropDelta(before, during)
	t.Logf("flood of %d SYNs (%d send errors): max connections seen %d, drops %s", floodN, sendErrs, maxSeen, fmtDrops(d))
	if maxSeen > maxConns {
		t.Errorf("connections %d > max_connections %d", maxSeen, maxConns)
	}
	if d["table-full"] <= 0 {
		t.Errorf(`drops["table-full"] did not increase`)
	}
	if last, _, err := labsvc.Incr(c, 3); err != nil || last != 3 {
		t.Fatalf("incr on the established connection after the flood: %d %v", last, err)
	}
	b.checkMembers(c, "a", "b")

	// The flood's entries never complete their handshake (nobody answers
	// the box's SYN-ACKs): they must go (the handshake bound is 5s) and
	// leave the established connection.
	start := time.Now()
	var s engine.Snapshot
	for {
		s = b.snapshot()
		if s.Connections <= 1 || time.Since(start) > 15*time.Second {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	expired := time.Since(start)
	if s.Connections > 1 {
		t.Errorf("%d connections left %v after the flood (want 1, the established one): the flood's half-open entries do not expire: %s",
			s.Connections, expired.Round(100*time.Millisecond), connSummary(s))
	} else {
		t.Logf("half-open entries gone %v after the flood", expired.Round(100*time.Millisecond))
		if expired > 8*time.Second {
			t.Errorf("half-open entries took %v to expire; the handshake bound is 5s", expired.Round(100*time.Millisecond))
		}
	}
	c2, err := b.Dial(b.ClientNS, "tcp", fmt.Sprintf("%s:7000", b.VIP), 3*time.Second)
	if err != nil {
		t.Fatalf("a new connection after the flood: %v (drops %s)", err, fmtDrops(dropDelta(during, b.snapshot())))
	}
	defer c2.Close()
	c2.SetDeadline(time.Now().Add(20 * time.Second))
	if res, err := labsvc.Download(c2, 1<<20, 9, nil); err != nil || res.SHA256 != labsvc.StreamHash(1<<20, 9) {
		t.Fatalf("new connection after the flood: %v", err)
	}
	for _, cc := range []net.Conn{c, c2} {
		if err := labsvc.Quit(cc); err != nil {
			t.Fatal(err)
		}
	}
	guard.check()
	b.daemonAlive()
}

// TestTCPChecksumVerification sends SYNs to the VIP from a raw socket in
// the client namespace: one with a correct, complete TCP checksum (as a
// router or a NIC without checksum offload hands it over), one with the
// checksum left to offload (as the local TCP stack sends over veth), and
// one with a wrong checksum. The first two must be answered with a
// SYN-ACK, the last dropped and counted as bad-checksum.
func TestTCPChecksumVerification(t *testing.T) {
	b := newBridgeLab(t, labOptions{replicas: 2})
	b.logEventsOnFailure()
	b.waitHealthy(7000, "a", "b")
	c := b.dial(7000) // fills the client's neighbour entry for the VIP
	clientMAC := b.ifMAC(b.ClientNS, "eth0")
	vipMAC := b.neighMAC(b.ClientNS, b.VIP)
	full := b.rawSocket(b.ClientNS, "eth0", false)
	off := b.rawSocket(b.ClientNS, "eth0", true)
	sn := b.sniff(b.ClientNS, "eth0")
	// The SYNs come from addresses the client does not own, so its kernel
	// drops the SYN-ACKs instead of answering them with RSTs (which would
	// be more frames for the checksum counters).
	for i, tc := range []struct {
		name     string
		sock     *rawSock
		bad      bool
		answered bool
	}{
		{"full-checksum", full, false, true},
		{"offloaded-checksum", off, false, true},
		{"wrong-checksum", full, true, false},
	} {
		port := uint16(41000 + i)
		s0 := b.snapshot()
		src := netip.AddrFrom4([4]byte{198, 18, 0, byte(77 + i)})
		syn := seg{srcMAC: clientMAC, dstMAC: vipMAC, src: src, dst: b.VIP, sport: port, dport: 7000,
			seq: 123456789, flags: tcpSYN, win: 64240, opts: []byte{2, 4, 5, 0xb4}, badTCPSum: tc.bad}
		if err := tc.sock.send(syn.frame()); err != nil {
			t.Fatal(err)
		}
		_, err := sn.next(time.Second, func(h tcpHdr) bool {
			return !h.outgoing && h.dst == netip.AddrPortFrom(src, port) && h.flags&(tcpSYN|tcpACK) == tcpSYN|tcpACK
		})
		d := dropDelta(s0, b.snapshot())
		t.Logf("%s: SYN-ACK: %v; drops %s", tc.name, err == nil, fmtDrops(d))
		switch {
		case tc.answered && err != nil:
			t.Errorf("%s: a valid SYN got no SYN-ACK (drops: %s)", tc.name, fmtDrops(d))
		case !tc.answered && err == nil:
			t.Errorf("%s: a SYN with a wrong checksum was answered", tc.name)
		}
		if tc.answered && d["bad-checksum"] != 0 {
			t.Errorf("%s: a valid SYN counted as bad-checksum", tc.name)
		}
		if !tc.answered && d["bad-checksum"] < 1 {
			t.Errorf("%s: bad-checksum did not rise", tc.name)
		}
	}
	if err := labsvc.Quit(c); err != nil {
		t.Fatal(err)
	}
	b.daemonAlive()
}

// injection is a segment forged into a live connection: from the client's
// side (spoofing the client) or from a replica's namespace (spoofing that
// replica), built from a segment of the connection seen on that link.
type injection struct {
	name string
	// side is "client" or the replica index as "0", "1".
	side string
	make func(seen tcpHdr) seg
}

// clientInjections spoof the client. seen is a segment from the VIP to
// the client: seen.ack is the client's next sequence number, seen.seq the
// server's.
var clientInjections = []injection{
	{"client-data-far-ahead", "client", func(h tcpHdr) seg {
		return seg{seq: h.ack + 1<<30, ack: h.seq, flags: tcpACK | tcpPSH, win: 500, payload: []byte("GEN 1 1\n")}
	}},
	{"client-data-old", "client", func(h tcpHdr) seg {
		return seg{seq: h.ack - 1<<30, ack: h.seq, flags: tcpACK | tcpPSH, win: 500, payload: []byte("QUIT\n")}
	}},
	{"client-ack-of-unsent-data", "client", func(h tcpHdr) seg {
		return seg{seq: h.ack, ack: h.seq + 1<<30, flags: tcpACK, win: 500}
	}},
	{"client-rst-far", "client", func(h tcpHdr) seg {
		return seg{seq: h.ack + 1<<31, flags: tcpRST}
	}},
	{"client-rst-out-of-window", "client", func(h tcpHdr) seg {
		return seg{seq: h.ack + 1<<29, flags: tcpRST}
	}},
	{"client-rst-behind", "client", func(h tcpHdr) seg {
		return seg{seq: h.ack - 100000, flags: tcpRST}
	}},
	// In the window but not the expected sequence number: RFC 5961 3.2
	// asks for a challenge ACK, not a reset.
	{"client-rst-in-window", "client", func(h tcpHdr) seg {
		return seg{seq: h.ack + 1000, flags: tcpRST}
	}},
	// A SYN on the live 4-tuple with another ISN: RFC 5961 4.2 asks for a
	// challenge ACK; only a client that really restarted answers it with
	// an RST.
	{"client-syn-same-tuple", "client", func(h tcpHdr) seg {
		return seg{seq: h.ack + 77777, flags: tcpSYN, win: 64240, opts: []byte{2, 4, 5, 0xb4}}
	}},
}

// replicaInjections spoof a replica; seen is a segment the replica sent to
// the client (its own sequence space).
func replicaInjections(i int) []injection {
	side := fmt.Sprint(i)
	name := func(s string) string { return fmt.Sprintf("replica-%c-%s", 'a'+i, s) }
	return []injection{
		{name("rst-far"), side, func(h tcpHdr) seg { return seg{seq: h.seq + 1<<31, flags: tcpRST} }},
		{name("rst-out-of-window"), side, func(h tcpHdr) seg { return seg{seq: h.seq + 1<<24, flags: tcpRST} }},
		{name("data-far-ahead"), side, func(h tcpHdr) seg {
			return seg{seq: h.seq + 1<<30, ack: h.ack, flags: tcpACK | tcpPSH, win: 500, payload: []byte("forged bytes")}
		}},
		{name("data-old"), side, func(h tcpHdr) seg {
			return seg{seq: h.seq - 1<<30, ack: h.ack, flags: tcpACK | tcpPSH, win: 500, payload: []byte("forged bytes")}
		}},
	}
}

// TestInjectedSegments forges out-of-window segments, RSTs with wrong
// sequence numbers and a SYN into a live download, from the client's side
// and from each replica's: the download completes byte for byte, the
// connection keeps both replicas, nothing fails over.
func TestInjectedSegments(t *testing.T) {
	cases := append(append(append([]injection{}, clientInjections...), replicaInjections(0)...), replicaInjections(1)...)
	for _, inj := range cases {
		t.Run(inj.name, func(t *testing.T) {
			b := newBridgeLab(t, labOptions{replicas: 2})
			b.logEventsOnFailure()
			b.waitHealthy(7000, "a", "b")
			guard := b.guardResets()
			c := b.dial(7000)
			c.SetDeadline(time.Now().Add(8 * time.Second))
			local := addrPort(c.LocalAddr())

			// Where to watch and to forge from.
			var ns string
			var srcMAC, dstMAC net.HardwareAddr
			var match func(tcpHdr) bool
			if inj.side == "client" {
				ns = b.ClientNS
				if _, _, err := labsvc.Incr(c, 1); err != nil { // fills the neighbour entry
					t.Fatal(err)
				}
				srcMAC, dstMAC = b.ifMAC(ns, "eth0"), b.neighMAC(ns, b.VIP)
				match = func(h tcpHdr) bool { return !h.outgoing && h.dst == local && h.payloadLen > 0 }
			} else {
				i := int(inj.side[0] - '0')
				ns = b.ReplicaNS[i]
				srcMAC, dstMAC = b.ifMAC(ns, "eth0"), b.ifMAC(b.BoxNS, b.ReplicaPorts[i])
				match = func(h tcpHdr) bool { return h.outgoing && h.dst == local && h.payloadLen > 0 }
			}
			sn := b.sniff(ns, "eth0")
			raw := b.rawSocket(ns, "eth0", true)

			const size = 2 << 20
			done := backgroundDownload(c, size, 31, &labsvc.Pace{Chunk: 32 << 10, Delay: 10 * time.Millisecond})
			time.Sleep(200 * time.Millisecond)
			seen, err := sn.next(2*time.Second, match)
			if err != nil {
				t.Fatalf("no segment of the connection seen in %s: %v", ns, err)
			}
			sn.close()
			s0 := b.snapshot()
			f := inj.make(seen)
			f.srcMAC, f.dstMAC = srcMAC, dstMAC
			if inj.side == "client" {
				f.src, f.dst, f.sport, f.dport = local.Addr(), b.VIP, local.Port(), 7000
			} else {
				f.src, f.dst, f.sport, f.dport = b.VIP, local.Addr(), 7000, local.Port()
			}
			for k := 0; k < 3; k++ {
				if err := raw.send(f.frame()); err != nil {
					t.Fatal(err)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err := <-done; err != nil {
				t.Fatalf("download after the forged segment: %v", err)
			}
			s1 := b.snapshot()
			t.Logf("forged seq %d ack %d flags %#x (seen seq %d ack %d); drops %s", f.seq, f.ack, f.flags, seen.seq, seen.ack,
				fmtDrops(dropDelta(s0, s1)))
			if last, _, err := labsvc.Incr(c, 2); err != nil {
				t.Fatalf("incr after the download: %d %v", last, err)
			}
			b.checkMembers(c, "a", "b")
			if s1.Failovers != 0 || s1.Divergences != 0 {
				t.Errorf("failovers %d, divergences %d after a forged segment", s1.Failovers, s1.Divergences)
			}
			if err := labsvc.Quit(c); err != nil {
				t.Fatal(err)
			}
			guard.check()
			b.daemonAlive()
		})
	}
}
