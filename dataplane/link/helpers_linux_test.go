//go:build linux

package link

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// requireRoot skips tests that create namespaces or AF_PACKET sockets.
func requireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("skipping: needs root (CAP_SYS_ADMIN for network namespaces, CAP_NET_RAW for AF_PACKET)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		tb.Skip("skipping: needs iproute2's ip command")
	}
}

// testNS is a network namespace created for one test and deleted after it.
type testNS struct{ name string }

var nsSeq atomic.Uint32

func newNS(tb testing.TB) *testNS {
	tb.Helper()
	requireRoot(tb)
	n := &testNS{name: fmt.Sprintf("ftblink-%d-%d-%08x", os.Getpid(), nsSeq.Add(1), rand.Uint32())}
	if out, err := exec.Command("ip", "netns", "add", n.name).CombinedOutput(); err != nil {
		tb.Fatalf("ip netns add %s: %v: %s", n.name, err, out)
	}
	tb.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", n.name).CombinedOutput(); err != nil {
			tb.Errorf("ip netns del %s: %v: %s", n.name, err, out)
		}
	})
	// Without IPv6 the links stay silent (no DAD, MLD or router
	// solicitations), so every frame a test sees is one it sent.
	n.do(tb, func() {
		for _, f := range []string{"all", "default"} {
			os.WriteFile("/proc/sys/net/ipv6/conf/"+f+"/disable_ipv6", []byte("1"), 0)
		}
	})
	return n
}

// ip runs ip -n NS args... and fails the test on error.
func (n *testNS) ip(tb testing.TB, args ...string) string {
	tb.Helper()
	out, err := exec.Command("ip", append([]string{"-n", n.name}, args...)...).CombinedOutput()
	if err != nil {
		tb.Fatalf("ip -n %s %s: %v: %s", n.name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// do runs f on an OS thread that has entered the namespace. The thread is
// never unlocked, so the runtime discards it when the goroutine ends instead
// of reusing it in the wrong namespace. f must not call tb.Fatal.
func (n *testNS) do(tb testing.TB, f func()) {
	tb.Helper()
	errc := make(chan error)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open("/var/run/netns/"+n.name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			errc <- fmt.Errorf("setns: %w", err)
			return
		}
		f()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		tb.Fatalf("entering namespace %s: %v", n.name, err)
	}
}

// veth creates the pair a<->b, brings both ends up and waits until they
// pass frames: the kernel swaps the "noop" qdisc, which drops everything,
// for the real one only when its link watcher gets round to the new
// carrier (up to a second later, more on a busy machine), and a frame
// written before that is lost.
func (n *testNS) veth(tb testing.TB, a, b string) {
	tb.Helper()
	n.ip(tb, "link", "add", "name", a, "type", "veth", "peer", "name", b)
	n.ip(tb, "link", "set", a, "up")
	n.ip(tb, "link", "set", b, "up")
	deadline := time.Now().Add(10 * time.Second)
	for _, dev := range []string{a, b} {
		for {
			out := n.ip(tb, "link", "show", "dev", dev)
			if strings.Contains(out, "state UP") && !strings.Contains(out, "qdisc noop") {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("%s did not come up: %s", dev, out)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// open opens a port on ifname inside the namespace and closes it at cleanup.
func (n *testNS) open(tb testing.TB, ifname string, opts *Options) *Port {
	tb.Helper()
	var p *Port
	var err error
	n.do(tb, func() { p, err = Open(ifname, opts) })
	if err != nil {
		tb.Fatalf("Open(%s): %v", ifname, err)
	}
	tb.Cleanup(func() { p.Close() })
	return p
}

// etherTest is an IEEE local experimental EtherType, used to mark test frames.
const etherTest = 0x88B5

// testFrame builds an Ethernet frame of size bytes (at least 20) carrying
// tag and seq, with the rest of the payload a pattern derived from both.
func testFrame(dst, src [6]byte, tag byte, seq uint16, size int) []byte {
	f := make([]byte, size)
	copy(f[0:6], dst[:])
	copy(f[6:12], src[:])
	binary.BigEndian.PutUint16(f[12:], etherTest)
	f[14] = tag
	binary.BigEndian.PutUint16(f[15:], seq)
	for i := 17; i < size; i++ {
		f[i] = byte(i) ^ tag ^ byte(seq)
	}
	return f
}

var broadcast = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// withVNet prefixes frame with a header when the port expects one.
func withVNet(p *Port, h VNetHeader, frame []byte) []byte {
	if !p.VNetHdr() {
		return frame
	}
	b := make([]byte, VNetHdrLen+len(frame))
	h.Encode(b)
	copy(b[VNetHdrLen:], frame)
	return b
}

// received is a frame copied out of a read buffer.
type received struct {
	hdr   VNetHeader // zero unless the port has VNetHdr
	frame []byte     // -1-sized (truncated) frames have a nil frame
}

// collect reads from p until stop reports true for the frames so far or the
// timeout elapses. It returns the frames and the largest batch one ReadBatch
// returned.
func collect(tb testing.TB, p *Port, timeout time.Duration, stop func([]received) bool) ([]received, int) {
	tb.Helper()
	poller, err := NewPoller()
	if err != nil {
		tb.Fatal(err)
	}
	defer poller.Close()
	bufs := make([][]byte, 8)
	for i := range bufs {
		bufs[i] = make([]byte, 65536+VNetHdrLen)
	}
	sizes := make([]int, len(bufs))
	fds, ready := []int{p.Fd()}, []bool{false}
	var got []received
	maxBatch := 0
	deadline := time.Now().Add(timeout)
	for !stop(got) && time.Now().Before(deadline) {
		if _, err := poller.Wait(fds, ready, 50*time.Millisecond); err != nil {
			tb.Fatal(err)
		}
		if !ready[0] {
			continue
		}
		n, err := p.ReadBatch(bufs, sizes)
		if err != nil {
			tb.Fatalf("ReadBatch: %v", err)
		}
		maxBatch = max(maxBatch, n)
		for i := range n {
			var r received
			if sizes[i] >= 0 {
				b := bufs[i][:sizes[i]]
				if p.VNetHdr() {
					if len(b) < VNetHdrLen {
						tb.Fatalf("frame of %d bytes has no room for a vnet header", len(b))
					}
					r.hdr = DecodeVNetHeader(b)
					b = b[VNetHdrLen:]
				}
				r.frame = append([]byte(nil), b...)
			}
			got = append(got, r)
		}
	}
	return got, maxBatch
}

// countTagged counts frames of the test EtherType carrying tag.
func countTagged(rs []received, tag byte) int {
	n := 0
	for _, r := range rs {
		if isTagged(r.frame, tag) {
			n++
		}
	}
	return n
}

func isTagged(f []byte, tag byte) bool {
	return len(f) >= 17 && binary.BigEndian.Uint16(f[12:]) == etherTest && f[14] == tag
}

// checksum returns the ones'-complement sum of b added to initial, folded to
// 16 bits but not inverted.
func checksum(b []byte, initial uint32) uint16 {
	s := initial
	for len(b) >= 2 {
		s += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

// pseudoSum is the TCP/UDP pseudo-header sum for an IPv4 header ip and a
// transport segment of length l, folded but not inverted.
func pseudoSum(ip []byte, proto byte, l int) uint16 {
	var ph [12]byte
	copy(ph[0:8], ip[12:20])
	ph[9] = proto
	binary.BigEndian.PutUint16(ph[10:], uint16(l))
	return checksum(ph[:], 0)
}

// tcpFrame builds Ethernet+IPv4+TCP with payload. The IPv4 header checksum is
// filled in; the TCP checksum field holds the pseudo-header sum, the form
// that NEEDS_CSUM metadata expects.
func tcpFrame(dst, src [6]byte, sip, dip [4]byte, sport, dport uint16, seq, ack uint32, flags byte, payload []byte) []byte {
	f := make([]byte, 14+20+20+len(payload))
	copy(f[0:6], dst[:])
	copy(f[6:12], src[:])
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:34]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+20+len(payload)))
	binary.BigEndian.PutUint16(ip[4:], uint16(rand.Uint32()))
	ip[6] = 0x40 // don't fragment
	ip[8] = 64
	ip[9] = unix.IPPROTO_TCP
	copy(ip[12:16], sip[:])
	copy(ip[16:20], dip[:])
	binary.BigEndian.PutUint16(ip[10:], ^checksum(ip, 0))
	tcp := f[34:54]
	binary.BigEndian.PutUint16(tcp[0:], sport)
	binary.BigEndian.PutUint16(tcp[2:], dport)
	binary.BigEndian.PutUint32(tcp[4:], seq)
	binary.BigEndian.PutUint32(tcp[8:], ack)
	tcp[12] = 5 << 4
	tcp[13] = flags
	binary.BigEndian.PutUint16(tcp[14:], 65535)
	copy(f[54:], payload)
	binary.BigEndian.PutUint16(tcp[16:], pseudoSum(ip, unix.IPPROTO_TCP, 20+len(payload)))
	return f
}

const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpPSH = 0x08
	tcpACK = 0x10
)
