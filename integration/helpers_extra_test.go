package integration_test

// Helpers for realservers_test.go, netem_test.go, badinput_test.go and
// lifecycle_test.go: real servers in replica namespaces, raw frames from any
// lab namespace, kernel counters, and non-fatal snapshots for goroutines.

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/engine"
	"github.com/ftbridge/ftbridge/integration/impair"
	"github.com/ftbridge/ftbridge/integration/lab"
	"github.com/ftbridge/ftbridge/integration/labsvc"
	"golang.org/x/sys/unix"
)

// needBinary skips the test when a program the test runs is not installed
// (.ci/run installs them in CI).
func needBinary(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not installed", name)
	}
}

// impairCmd is the lab impairer's command, built once into the test
// binaries' directory (TestMain removes it).
var impairCmd struct {
	once sync.Once
	path string
	err  error
}

// impairBinary builds the lab's impairment forwarder once per test binary.
func impairBinary(t *testing.T) string {
	t.Helper()
	impairCmd.once.Do(func() { impairCmd.path, impairCmd.err = impair.Build(bins.dir) })
	if impairCmd.err != nil {
		t.Fatal(impairCmd.err)
	}
	return impairCmd.path
}

// startServer starts a real server program in replica i's namespace as a
// recorded lab process (so the lab's cleanup kills its whole process group
// and resumes it if a test stopped it) and waits until it listens on port.
func (b *bridgeLab) startServer(i, port int, name string, args ...string) *lab.Proc {
	b.t.Helper()
	ns := b.ReplicaNS[i]
	p, err := b.Start(ns, name, args...)
	if err != nil {
		b.t.Fatal(err)
	}
	b.servers[ns] = append(b.servers[ns], p)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		out, _ := b.Run(ns, "ss", "-Hltn", fmt.Sprintf("sport = :%d", port))
		if strings.Contains(out, "LISTEN") {
			return p
		}
		if p.Exited() {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.t.Fatalf("%s in %s does not listen on port %d; its log:\n%s", name, ns, port, tail(p.Log(), 30))
	return nil
}

// events returns the last n lines of the daemon's log without the
// SNAPSHOT lines (which are long and say little about what happened).
func (b *bridgeLab) events(n int) string {
	var keep []string
	for _, l := range strings.Split(b.daemon.Log(), "\n") {
		if l != "" && !strings.Contains(l, "SNAPSHOT ") {
			keep = append(keep, l)
		}
	}
	if len(keep) > n {
		keep = keep[len(keep)-n:]
	}
	return strings.Join(keep, "\n")
}

// findLog is waitLog without failing: it returns "" on timeout.
func (b *bridgeLab) findLog(timeout time.Duration, parts ...string) string {
	deadline := time.Now().Add(timeout)
	for {
		if l := findLine(b.daemon.Log(), parts...); l != "" {
			return l
		}
		if time.Now().After(deadline) {
			return ""
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logEventsOnFailure logs the daemon's events (without snapshots) when the
// test fails.
func (b *bridgeLab) logEventsOnFailure() {
	b.t.Cleanup(func() {
		if b.t.Failed() && b.daemon != nil {
			b.t.Logf("ftbridged events (tail, without snapshots):\n%s", b.events(60))
		}
	})
}

// trySnapshot is snapshot without t.Fatal, for goroutines other than the
// test's own.
func (b *bridgeLab) trySnapshot() (engine.Snapshot, error) {
	before := strings.Count(b.daemon.Log(), "SNAPSHOT ")
	if err := b.daemon.Signal(syscall.SIGUSR1); err != nil {
		return engine.Snapshot{}, err
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		log := b.daemon.Log()
		if strings.Count(log, "SNAPSHOT ") > before {
			i := strings.LastIndex(log, "SNAPSHOT ")
			line := log[i+len("SNAPSHOT "):]
			if j := strings.IndexByte(line, '\n'); j >= 0 {
				var s engine.Snapshot
				err := json.Unmarshal([]byte(line[:j]), &s)
				return s, err
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return engine.Snapshot{}, errors.New("no snapshot from ftbridged")
}

// waitSnapshot polls snapshots until ok accepts one, and returns it; on
// timeout the test fails with the last snapshot's summary.
func (b *bridgeLab) waitSnapshot(timeout time.Duration, what string, ok func(engine.Snapshot) bool) engine.Snapshot {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	var s engine.Snapshot
	for {
		s = b.snapshot()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.t.Fatalf("after %v: %s not reached: connections=%d held_bytes=%d conns=%s\nevents:\n%s",
		timeout, what, s.Connections, s.HeldBytes, connSummary(s), b.events(30))
	return s
}

// connSummary is a short description of a snapshot's connections.
func connSummary(s engine.Snapshot) string {
	var parts []string
	for i, c := range s.Conns {
		if i == 8 {
			parts = append(parts, fmt.Sprintf("... %d more", len(s.Conns)-i))
			break
		}
		var ms []string
		for _, m := range c.Members {
			f := m.Replica
			if m.Primary {
				f += "*"
			}
			if !m.Live {
				f += "(gone)"
			}
			ms = append(ms, f)
		}
		parts = append(parts, fmt.Sprintf("%s %s [%s] held=%d", c.Client, c.State, strings.Join(ms, " "), c.Held))
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

// connOf finds the snapshot entry of the client's connection from local.
func connOf(s engine.Snapshot, local net.Addr) (engine.ConnStatus, bool) {
	for _, c := range s.Conns {
		if c.Client == local.String() {
			return c, true
		}
	}
	return engine.ConnStatus{}, false
}

// liveMembers returns the names of the live members of the client's
// connection from local, the primary first (ok false if the box has no such
// connection).
func liveMembers(s engine.Snapshot, local net.Addr) (names []string, ok bool) {
	cs, ok := connOf(s, local)
	if !ok {
		return nil, false
	}
	for _, m := range cs.Members {
		if m.Live && m.Primary {
			names = append([]string{m.Replica}, names...)
		} else if m.Live {
			names = append(names, m.Replica)
		}
	}
	return names, true
}

// checkMembers fails the test unless the live members of the client's
// connection from c are exactly want (primary first).
func (b *bridgeLab) checkMembers(c net.Conn, want ...string) {
	b.t.Helper()
	s := b.snapshot()
	got, ok := liveMembers(s, c.LocalAddr())
	if !ok {
		b.t.Errorf("the box has no connection from %s: %s", c.LocalAddr(), connSummary(s))
		return
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		b.t.Errorf("live members of %s: %v, want %v (primary first); events:\n%s", c.LocalAddr(), got, want, b.events(20))
	}
}

// waitDrained waits until the connection table is empty and nothing is
// held (the leak check at the end of a lab's tests).
func (b *bridgeLab) waitDrained(timeout time.Duration) {
	b.t.Helper()
	b.waitSnapshot(timeout, "connections == 0 and held_bytes == 0", func(s engine.Snapshot) bool {
		return s.Connections == 0 && s.HeldBytes == 0
	})
}

// snmp reads one counter of /proc/net/snmp (e.g. "Tcp", "EstabResets") in
// ns.
func (b *bridgeLab) snmp(ns, group, field string) uint64 {
	b.t.Helper()
	out, err := b.Run(ns, "cat", "/proc/net/snmp")
	if err != nil {
		b.t.Fatal(err)
	}
	var names []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != group+":" {
			continue
		}
		if names == nil {
			names = f[1:]
			continue
		}
		for i, n := range names {
			if n == field && i+1 < len(f) {
				v, err := strconv.ParseUint(f[i+1], 10, 64)
				if err != nil {
					b.t.Fatalf("snmp %s %s: %q", group, field, f[i+1])
				}
				return v
			}
		}
	}
	b.t.Fatalf("no %s %s in /proc/net/snmp of %s", group, field, ns)
	return 0
}

// resetGuard records the client namespace's TCP EstabResets counter (the
// kernel's count of established connections ended by an RST); check fails
// the test if any client connection was reset since.
type resetGuard struct {
	b    *bridgeLab
	base uint64
}

func (b *bridgeLab) guardResets() *resetGuard {
	b.t.Helper()
	return &resetGuard{b: b, base: b.snmp(b.ClientNS, "Tcp", "EstabResets")}
}

func (g *resetGuard) check() {
	g.b.t.Helper()
	if n := g.b.snmp(g.b.ClientNS, "Tcp", "EstabResets"); n != g.base {
		g.b.t.Errorf("the client saw %d connection reset(s) (Tcp EstabResets %d -> %d)", n-g.base, g.base, n)
	}
}

// fileSHA256 hashes a file.
func fileSHA256(path string) ([32]byte, int64, error) {
	var sum [32]byte
	f, err := os.Open(path)
	if err != nil {
		return sum, 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	h.Sum(sum[:0])
	return sum, n, err
}

// waitSecondPhase sleeps until the wall clock is at least at off past a
// full second and at most 500ms past it: nginx's Date header has one-second
// resolution, so a request made early in a second gets the same Date from
// every replica.
func waitSecondPhase(off time.Duration) {
	for {
		ns := time.Duration(time.Now().Nanosecond())
		if ns >= off && ns < 500*time.Millisecond {
			return
		}
		d := time.Second - ns + off
		if ns < off {
			d = off - ns
		}
		time.Sleep(d)
	}
}

// lineConn reads CRLF protocols (memcached) one line at a time.
type lineConn struct {
	c net.Conn
	r *bufio.Reader
}

func (l *lineConn) line() (string, error) {
	s, err := l.r.ReadString('\n')
	if err != nil {
		return s, err
	}
	if !strings.HasSuffix(s, "\r\n") {
		return s, fmt.Errorf("line %q does not end in CRLF", s)
	}
	return strings.TrimSuffix(s, "\r\n"), nil
}

// ---- raw frames ----

// TCP flags.
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpPSH = 0x08
	tcpACK = 0x10
)

// ifMAC returns dev's MAC in ns.
func (b *bridgeLab) ifMAC(ns, dev string) net.HardwareAddr {
	b.t.Helper()
	ifi, err := b.Interface(ns, dev)
	if err != nil {
		b.t.Fatal(err)
	}
	return ifi.HardwareAddr
}

// neighMAC reads ip's link-layer address from ns's neighbour table.
func (b *bridgeLab) neighMAC(ns string, ip netip.Addr) net.HardwareAddr {
	b.t.Helper()
	out, err := b.Run(ns, "ip", "-j", "neigh", "show", "to", ip.String())
	if err != nil {
		b.t.Fatal(err)
	}
	var ns_ []struct {
		LLAddr string `json:"lladdr"`
	}
	if err := json.Unmarshal([]byte(out), &ns_); err != nil {
		b.t.Fatalf("ip -j neigh: %v: %q", err, out)
	}
	for _, n := range ns_ {
		if n.LLAddr != "" {
			mac, err := net.ParseMAC(n.LLAddr)
			if err != nil {
				b.t.Fatal(err)
			}
			return mac
		}
	}
	b.t.Fatalf("no neighbour entry for %s in %s: %q", ip, ns, out)
	return nil
}

// rawSock sends hand-made Ethernet frames out of one interface.
type rawSock struct {
	fd      int
	ifindex int
	// offload: frames go out with a virtio_net_hdr asking for checksum
	// offload (NEEDS_CSUM), exactly as a local TCP stack's segments do on
	// veth; the TCP checksum field then carries the pseudo-header sum.
	offload bool
}

// rawSocket opens an AF_PACKET socket on dev in ns that only sends (its
// protocol is 0, so it receives nothing). With offload, TCP/IPv4 frames
// are sent the way the kernel's own TCP sends them (checksum left to the
// device); other frames go unchanged.
func (b *bridgeLab) rawSocket(ns, dev string, offload bool) *rawSock {
	b.t.Helper()
	rs := &rawSock{fd: -1, offload: offload}
	err := b.InNS(ns, func() error {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		rs.fd, rs.ifindex = fd, ifi.Index
		if offload {
			return unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1)
		}
		return nil
	})
	if err != nil {
		if rs.fd >= 0 {
			unix.Close(rs.fd)
		}
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { unix.Close(rs.fd) })
	return rs
}

// virtio_net_hdr fields.
const (
	vnetHdrLen        = 10
	vnetFlagNeedsCsum = 1
)

// send sends one frame; ENOBUFS (a full queue during a flood) is reported
// as is.
func (r *rawSock) send(frame []byte) error {
	proto := uint16(0)
	if len(frame) >= 14 {
		proto = binary.BigEndian.Uint16(frame[12:])
	}
	sa := &unix.SockaddrLinklayer{Ifindex: r.ifindex, Protocol: htons(proto), Halen: 6}
	if len(frame) >= 6 {
		copy(sa.Addr[:], frame[:6])
	}
	if r.offload {
		frame = withVNetHdr(frame)
	}
	return unix.Sendto(r.fd, frame, 0, sa)
}

// withVNetHdr prepends a virtio_net_hdr: for a well-formed TCP/IPv4 frame
// one that asks for checksum offload (and the TCP checksum field replaced
// by the pseudo-header sum, as the kernel leaves it), otherwise a zero one.
func withVNetHdr(frame []byte) []byte {
	out := make([]byte, vnetHdrLen+len(frame))
	copy(out[vnetHdrLen:], frame)
	f := out[vnetHdrLen:]
	if len(f) < 14+20 || binary.BigEndian.Uint16(f[12:]) != 0x0800 {
		return out
	}
	ip := f[14:]
	hl := int(ip[0]&0x0f) * 4
	tl := int(binary.BigEndian.Uint16(ip[2:]))
	if ip[0]>>4 != 4 || ip[9] != 6 || hl < 20 || tl < hl+20 || tl > len(ip) ||
		binary.BigEndian.Uint16(ip[6:])&0x3fff != 0 {
		return out
	}
	tcpLen := tl - hl
	var ph [12]byte
	copy(ph[0:4], ip[12:16])
	copy(ph[4:8], ip[16:20])
	ph[9] = 6
	binary.BigEndian.PutUint16(ph[10:], uint16(tcpLen))
	partial := ^csum(ph[:], 0) // folded, not complemented
	binary.BigEndian.PutUint16(ip[hl+16:], partial)
	out[0] = vnetFlagNeedsCsum
	binary.NativeEndian.PutUint16(out[2:], uint16(14+hl+20)) // hdr_len
	binary.NativeEndian.PutUint16(out[6:], uint16(14+hl))    // csum_start
	binary.NativeEndian.PutUint16(out[8:], 16)               // csum_offset
	return out
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// seg describes one TCP/IPv4 segment in an Ethernet frame.
type seg struct {
	srcMAC, dstMAC net.HardwareAddr
	src, dst       netip.Addr
	sport, dport   uint16
	seq, ack       uint32
	flags          uint8
	win            uint16
	opts           []byte // padded to a multiple of 4 by frame
	payload        []byte
	ipID           uint16
	fragField      uint16 // IPv4 flags and fragment offset
	badTCPSum      bool
}

// frame encodes s with correct lengths and checksums (unless badTCPSum).
func (s seg) frame() []byte {
	opts := append([]byte(nil), s.opts...)
	for len(opts)%4 != 0 {
		opts = append(opts, 1) // NOP
	}
	thl := 20 + len(opts)
	tl := 20 + thl + len(s.payload)
	f := make([]byte, 14+tl)
	copy(f[0:6], s.dstMAC)
	copy(f[6:12], s.srcMAC)
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(tl))
	binary.BigEndian.PutUint16(ip[4:], s.ipID)
	binary.BigEndian.PutUint16(ip[6:], s.fragField)
	ip[8] = 64
	ip[9] = 6
	src, dst := s.src.As4(), s.dst.As4()
	copy(ip[12:16], src[:])
	copy(ip[16:20], dst[:])
	binary.BigEndian.PutUint16(ip[10:], csum(ip[:20], 0))
	tcp := ip[20:]
	binary.BigEndian.PutUint16(tcp[0:], s.sport)
	binary.BigEndian.PutUint16(tcp[2:], s.dport)
	binary.BigEndian.PutUint32(tcp[4:], s.seq)
	binary.BigEndian.PutUint32(tcp[8:], s.ack)
	tcp[12] = byte(thl/4) << 4
	tcp[13] = s.flags
	binary.BigEndian.PutUint16(tcp[14:], s.win)
	copy(tcp[20:], opts)
	copy(tcp[thl:], s.payload)
	c := tcpChecksum(ip[12:16], ip[16:20], tcp)
	if s.badTCPSum {
		c ^= 0x5a5a
	}
	binary.BigEndian.PutUint16(tcp[16:], c)
	return f
}

// fixIPSum recomputes the IPv4 header checksum of an Ethernet frame (after
// a test changed the header on purpose, so that only the intended fault is
// wrong).
func fixIPSum(f []byte) {
	ip := f[14:]
	hl := int(ip[0]&0x0f) * 4
	if hl < 20 || hl > len(ip) {
		hl = 20
	}
	ip[10], ip[11] = 0, 0
	binary.BigEndian.PutUint16(ip[10:], csum(ip[:hl], 0))
}

// csum is the Internet checksum of b, starting from a partial sum.
func csum(b []byte, sum uint32) uint16 {
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

func tcpChecksum(src, dst, tcp []byte) uint16 {
	var ph [12]byte
	copy(ph[0:4], src)
	copy(ph[4:8], dst)
	ph[9] = 6
	binary.BigEndian.PutUint16(ph[10:], uint16(len(tcp)))
	var sum uint32
	for i := 0; i < 12; i += 2 {
		sum += uint32(ph[i])<<8 | uint32(ph[i+1])
	}
	// The checksum field must be zero while summing.
	saved := binary.BigEndian.Uint16(tcp[16:])
	tcp[16], tcp[17] = 0, 0
	c := csum(tcp, sum)
	binary.BigEndian.PutUint16(tcp[16:], saved)
	return c
}

// tcpHdr is what a sniffer reports about one captured TCP segment.
type tcpHdr struct {
	src, dst     netip.AddrPort
	srcMAC       net.HardwareAddr
	dstMAC       net.HardwareAddr
	seq, ack     uint32
	flags        uint8
	win          uint16
	payloadLen   int
	outgoing     bool
	capturedTime time.Time
}

// sniffer captures IPv4 TCP segments on one interface.
type sniffer struct {
	fd int
}

func (b *bridgeLab) sniff(ns, dev string) *sniffer {
	b.t.Helper()
	sn := &sniffer{fd: -1}
	err := b.InNS(ns, func() error {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		// ETH_P_ALL: only such taps see outgoing frames too.
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			return err
		}
		tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			unix.Close(fd)
			return err
		}
		sn.fd = fd
		return nil
	})
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(sn.close)
	return sn
}

func (s *sniffer) close() {
	if s.fd >= 0 {
		unix.Close(s.fd)
		s.fd = -1
	}
}

// next returns the next captured segment that match accepts.
func (s *sniffer) next(timeout time.Duration, match func(tcpHdr) bool) (tcpHdr, error) {
	buf := make([]byte, 65536+128)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		n, from, err := unix.Recvfrom(s.fd, buf, 0)
		if err != nil {
			if err == unix.EAGAIN || err == unix.EINTR {
				continue
			}
			return tcpHdr{}, err
		}
		f := buf[:n]
		if len(f) < 14+20+20 || binary.BigEndian.Uint16(f[12:]) != 0x0800 {
			continue
		}
		ip := f[14:]
		hl := int(ip[0]&0x0f) * 4
		if ip[9] != 6 || hl < 20 || len(ip) < hl+20 {
			continue
		}
		tl := int(binary.BigEndian.Uint16(ip[2:]))
		if tl == 0 || tl > len(ip) {
			tl = len(ip)
		}
		tcp := ip[hl:tl]
		thl := int(tcp[12]>>4) * 4
		h := tcpHdr{
			src:          netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip[12:16])), binary.BigEndian.Uint16(tcp[0:])),
			dst:          netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip[16:20])), binary.BigEndian.Uint16(tcp[2:])),
			srcMAC:       append(net.HardwareAddr(nil), f[6:12]...),
			dstMAC:       append(net.HardwareAddr(nil), f[0:6]...),
			seq:          binary.BigEndian.Uint32(tcp[4:]),
			ack:          binary.BigEndian.Uint32(tcp[8:]),
			flags:        tcp[13],
			win:          binary.BigEndian.Uint16(tcp[14:]),
			payloadLen:   max(len(tcp)-thl, 0),
			capturedTime: time.Now(),
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok {
			h.outgoing = ll.Pkttype == unix.PACKET_OUTGOING
		}
		if match(h) {
			return h, nil
		}
	}
	return tcpHdr{}, fmt.Errorf("no matching segment within %v", timeout)
}

// rstCounter counts RST segments sent to the client on its interface
// while it runs (a second witness next to EstabResets).
type rstCounter struct {
	mu   sync.Mutex
	rsts []tcpHdr
	stop chan struct{}
	done chan struct{}
}

func (b *bridgeLab) countClientRSTs() *rstCounter {
	sn := b.sniff(b.ClientNS, "eth0")
	rc := &rstCounter{stop: make(chan struct{}), done: make(chan struct{})}
	client := b.ClientIP
	go func() {
		defer close(rc.done)
		for {
			select {
			case <-rc.stop:
				return
			default:
			}
			h, err := sn.next(100*time.Millisecond, func(h tcpHdr) bool {
				return !h.outgoing && h.flags&tcpRST != 0 && h.dst.Addr() == client
			})
			if err == nil {
				rc.mu.Lock()
				rc.rsts = append(rc.rsts, h)
				rc.mu.Unlock()
			}
		}
	}()
	b.t.Cleanup(rc.halt)
	return rc
}

func (rc *rstCounter) halt() {
	select {
	case <-rc.stop:
	default:
		close(rc.stop)
	}
	<-rc.done
}

// resetsTo returns the RSTs captured towards the client's local address.
func (rc *rstCounter) resetsTo(local netip.AddrPort) []tcpHdr {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []tcpHdr
	for _, h := range rc.rsts {
		if h.dst == local {
			out = append(out, h)
		}
	}
	return out
}

func addrPort(a net.Addr) netip.AddrPort {
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// icmpEcho sends count ICMP echo requests from ns to dst, each waiting up
// to timeout for its reply, and returns how many were answered.
func (b *bridgeLab) icmpEcho(ns string, dst netip.Addr, count int, timeout time.Duration) (int, error) {
	var pc net.PacketConn
	err := b.InNS(ns, func() error {
		var err error
		pc, err = net.ListenPacket("ip4:icmp", "0.0.0.0")
		return err
	})
	if err != nil {
		return 0, err
	}
	defer pc.Close()
	id := uint16(os.Getpid()) ^ uint16(time.Now().UnixNano())
	answered := 0
	buf := make([]byte, 1500)
	for i := 1; i <= count; i++ {
		msg := make([]byte, 8+56)
		msg[0] = 8 // echo request
		binary.BigEndian.PutUint16(msg[4:], id)
		binary.BigEndian.PutUint16(msg[6:], uint16(i))
		for k := 8; k < len(msg); k++ {
			msg[k] = byte(k)
		}
		binary.BigEndian.PutUint16(msg[2:], csum(msg, 0))
		if _, err := pc.WriteTo(msg, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
			return answered, err
		}
		deadline := time.Now().Add(timeout)
		pc.SetReadDeadline(deadline)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				break // timeout: unanswered
			}
			r := buf[:n]
			if n >= 8 && r[0] == 0 && binary.BigEndian.Uint16(r[4:]) == id && binary.BigEndian.Uint16(r[6:]) == uint16(i) &&
				from.String() == dst.String() && string(r[8:]) == string(msg[8:]) {
				answered++
				break
			}
		}
		if i < count {
			time.Sleep(100 * time.Millisecond)
		}
	}
	return answered, nil
}

// iptablesCmd returns an iptables command, or "" when none is installed.
func iptablesCmd() string {
	for _, c := range []string{"iptables", "iptables-legacy"} {
		if _, err := exec.LookPath(c); err == nil {
			return c
		}
	}
	return ""
}

// dialN opens n connections to port, each with deadline d from now.
func (b *bridgeLab) dialN(n, port int, d time.Duration) []net.Conn {
	b.t.Helper()
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = b.dial(port)
		conns[i].SetDeadline(time.Now().Add(d))
	}
	return conns
}

// pacedDownloads runs a paced download of size bytes (16 KiB every
// 20 ms, seed seed0+i) on every connection at once, checks each byte for
// byte, and returns each one's result and error.
func pacedDownloads(conns []net.Conn, size int64, seed0 uint64) ([]labsvc.Result, []error) {
	var wg sync.WaitGroup
	res := make([]labsvc.Result, len(conns))
	errs := make([]error, len(conns))
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seed := seed0 + uint64(i)
			r, err := labsvc.Download(c, size, seed, &labsvc.Pace{Chunk: 16 << 10, Delay: 20 * time.Millisecond})
			if err == nil && r.SHA256 != labsvc.StreamHash(size, seed) {
				err = errors.New("hash mismatch")
			}
			res[i], errs[i] = r, err
		}()
	}
	wg.Wait()
	return res, errs
}

// checkAll fails the test if any connection's error is not nil, naming
// up to five.
func checkAll(t *testing.T, conns []net.Conn, errs []error) {
	t.Helper()
	failed := 0
	for i, err := range errs {
		if err != nil {
			failed++
			if failed <= 5 {
				t.Errorf("connection %d (%s): %v", i, conns[i].LocalAddr(), err)
			}
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d connections failed", failed, len(conns))
	}
}
