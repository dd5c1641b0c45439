package lab

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ftbridge/ftbridge/integration/impair"
)

// impairBin is the impair command, built once for all tests of the package.
var impairBin struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if impairBin.dir != "" {
		os.RemoveAll(impairBin.dir)
	}
	os.Exit(code)
}

// newImpairedLab builds a lab with the given links impaired, sharing one
// impair binary across tests.
func newImpairedLab(t *testing.T, replicas int, links ...string) *Lab {
	t.Helper()
	needRoot(t)
	impairBin.once.Do(func() {
		impairBin.dir, impairBin.err = os.MkdirTemp("", "ftblab-impair-bin-")
		if impairBin.err == nil {
			impairBin.path, impairBin.err = impair.Build(impairBin.dir)
		}
	})
	if impairBin.err != nil {
		t.Fatal(impairBin.err)
	}
	return newLab(t, Options{Replicas: replicas, Impaired: links, ImpairBin: impairBin.path})
}

// operState reads a link's operational state.
func operState(t *testing.T, ns, dev string) string {
	t.Helper()
	return addrInfo(t, ns, dev).OperState
}

// waitOper waits (bounded) for a link's operational state to become want.
func waitOper(t *testing.T, ns, dev, want string) {
	t.Helper()
	var got string
	for i := 0; i < 200; i++ {
		if got = operState(t, ns, dev); got == want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("%s/%s operstate %s, want %s", ns, dev, got, want)
}

func TestImpairTopology(t *testing.T) {
	l := newImpairedLab(t, 2, "up0", "rp1")
	impNS := []string{l.Name + "-imp-up0", l.Name + "-imp-rp1"}
	list := netnsList(t)
	for _, ns := range impNS {
		if !list[ns] {
			t.Fatalf("impairment namespace %s missing", ns)
		}
		links, err := l.links(ns)
		if err != nil || strings.Join(links, ",") != "tohost,tobox" && strings.Join(links, ",") != "tobox,tohost" {
			t.Errorf("%s links %v (%v), want tohost and tobox", ns, links, err)
		}
		for _, dev := range []string{"tohost", "tobox"} {
			if in := addrInfo(t, ns, dev); len(in.AddrInfo) != 0 || in.OperState != "UP" {
				t.Errorf("%s/%s: addresses %+v, operstate %s; want none and UP", ns, dev, in.AddrInfo, in.OperState)
			}
		}
		if v := sysctlCLI(t, l, ns, "net.ipv6.conf.all.disable_ipv6"); v != "1" {
			t.Errorf("%s: IPv6 not disabled", ns)
		}
	}
	// Everything else is as in an unimpaired lab.
	wantAddrs(t, l.ClientNS, "eth0", "198.18.0.1/24")
	for _, ns := range l.ReplicaNS {
		wantAddrs(t, ns, "eth0", "198.18.0.10/24")
	}
	if links, err := l.links(l.BoxNS); err != nil || len(links) != 3 {
		t.Errorf("box links %v (%v), want up0 + 2 ports", links, err)
	}
	for _, dev := range []string{"up0", "rp0", "rp1"} {
		if operState(t, l.BoxNS, dev) != "UP" {
			t.Errorf("box/%s not UP", dev)
		}
	}
	st, err := l.ImpairStats("up0")
	if err != nil {
		t.Fatal(err)
	}
	if st.Specs[0].Dir != impair.ToBox || !st.Specs[0].IsZero() || !st.Specs[1].IsZero() {
		t.Errorf("fresh link specs %+v, want clear", st.Specs)
	}
	// Only listed links are impaired; bad specs never reach a forwarder.
	if err := l.Impair("rp0", impair.Spec{Loss: 0.1}); err == nil {
		t.Error("Impair on an unimpaired link succeeded")
	}
	if err := l.Impair("up0", impair.Spec{Loss: 2}); err == nil {
		t.Error("Impair accepted loss 2")
	}
	if _, err := l.ImpairStats("rp7"); err == nil {
		t.Error("ImpairStats on a missing link succeeded")
	}
	// The forwarders are the lab's processes: Close kills them and
	// deletes the impairment namespaces.
	var pids []int
	for _, ip := range l.imps {
		pids = append(pids, ip.proc.Pid())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		waitGone(t, pid)
	}
	list = netnsList(t)
	for _, ns := range impNS {
		if list[ns] {
			t.Errorf("%s survived Close", ns)
		}
	}
}

func TestImpairOptionsRejected(t *testing.T) {
	needRoot(t)
	for _, links := range [][]string{{"rp2"}, {"up0", "up0"}, {"eth0"}} {
		before := netnsList(t)
		l, err := New(Options{Replicas: 2, Impaired: links, ImpairBin: "/bin/true"})
		if err == nil {
			l.Close()
			t.Errorf("Impaired %v accepted", links)
			continue
		}
		for ns := range netnsList(t) {
			if !before[ns] && strings.HasPrefix(ns, "ftb") {
				t.Errorf("namespace %s leaked after refusing %v", ns, links)
			}
		}
	}
	if l, err := New(Options{Impaired: []string{"up0"}, ImpairBin: "/nonexistent/impair"}); err == nil {
		l.Close()
		t.Error("a missing ImpairBin was accepted")
	}
}

// stream is size bytes of deterministic pseudo-random data.
func stream(size int, seed uint64) io.Reader {
	var s [32]byte
	s[0] = byte(seed)
	return io.LimitReader(rand.NewChaCha8(s), int64(size))
}

func streamHash(size int, seed uint64) [32]byte {
	h := sha256.New()
	io.Copy(h, stream(size, seed))
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// transfer sends size bytes through the lab, client to replica when upload
// is set and replica to client otherwise, over one fresh connection to ln,
// checks them byte-exact and returns how long it took.
func transfer(t *testing.T, l *Lab, ln net.Listener, size int, upload bool, seed uint64) time.Duration {
	t.Helper()
	const limit = 120 * time.Second
	type result struct {
		n   int64
		sum [32]byte
		err error
	}
	// The sink hashes what it reads until EOF; the source writes and
	// closes its write side.
	sink := func(c net.Conn) result {
		h := sha256.New()
		n, err := io.Copy(h, c)
		var r result
		r.n, r.err = n, err
		h.Sum(r.sum[:0])
		return r
	}
	source := func(c net.Conn) error {
		if _, err := io.Copy(c, stream(size, seed)); err != nil {
			return err
		}
		return c.(*net.TCPConn).CloseWrite()
	}
	server := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			server <- result{err: err}
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(limit))
		if upload {
			server <- sink(c)
			return
		}
		err = source(c)
		io.Copy(io.Discard, c) // until the client closes
		server <- result{err: err}
	}()
	start := time.Now()
	c, err := l.Dial(l.ClientNS, "tcp", ln.Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(limit))
	var got result
	if upload {
		if err := source(c); err != nil {
			t.Fatalf("upload: %v", err)
		}
		got = <-server
	} else {
		got = sink(c)
		c.Close()
		if r := <-server; r.err != nil {
			t.Fatalf("server: %v", r.err)
		}
	}
	d := time.Since(start)
	if got.err != nil {
		t.Fatalf("after %d bytes: %v", got.n, got.err)
	}
	if got.n != int64(size) || got.sum != streamHash(size, seed) {
		t.Fatalf("received %d bytes (want %d), hash match %v", got.n, size, got.sum == streamHash(size, seed))
	}
	return d
}

// minRTT measures the smallest of n request/response round trips of one
// byte over a connection to an echo listener.
func minRTT(t *testing.T, l *Lab, ln net.Listener, n int) time.Duration {
	t.Helper()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		io.Copy(c, c)
	}()
	c, err := l.Dial(l.ClientNS, "tcp", ln.Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.(*net.TCPConn).SetNoDelay(true)
	c.SetDeadline(time.Now().Add(30 * time.Second))
	best := time.Duration(1<<63 - 1)
	b := []byte{0}
	for i := 0; i < n; i++ {
		start := time.Now()
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, b); err != nil {
			t.Fatal(err)
		}
		best = min(best, time.Since(start))
	}
	return best
}

// impairCase sets spec on link, runs a transfer each way and returns the
// counters of the link for those transfers.
func impairCase(t *testing.T, l *Lab, ln net.Listener, link string, spec impair.Spec, size int) impair.Counters {
	t.Helper()
	if err := l.Impair(link, spec); err != nil {
		t.Fatal(err)
	}
	before, err := l.ImpairStats(link)
	if err != nil {
		t.Fatal(err)
	}
	down := transfer(t, l, ln, size, false, 1)
	up := transfer(t, l, ln, size, true, 2)
	// Let delayed and held-back frames (the last ACKs) leave before
	// counting. A late frame (a delayed ACK, a retransmitted FIN) can still
	// be queued at any single instant, and the counters are read one by
	// one, so the balance is read again until it settles, for a bounded
	// time; a frame truly unaccounted for keeps it off and fails below.
	time.Sleep(spec.Delay + spec.Jitter + impair.ReorderHold + 100*time.Millisecond)
	var c impair.Counters
	for deadline := time.Now().Add(2 * time.Second); ; {
		after, err := l.ImpairStats(link)
		if err != nil {
			t.Fatal(err)
		}
		c = after.Total().Sub(before.Total())
		if c.Forwarded+c.Lost+c.Overflow+c.Errors == c.Received+c.Duplicated || time.Now().After(deadline) {
			break
		}
		time.Sleep(spec.Delay + spec.Jitter + 20*time.Millisecond)
	}
	if err := l.ClearImpair(link); err != nil {
		t.Fatal(err)
	}
	t.Logf("%v on %s: %d MB down in %v, up in %v; %+v", spec, link, size>>20, down.Round(time.Millisecond), up.Round(time.Millisecond), c)
	if c.Errors != 0 {
		t.Errorf("%d frames lost to errors:\n%s", c.Errors, l.impLog(link))
	}
	// Every frame is accounted for.
	if c.Forwarded+c.Lost+c.Overflow+c.Errors != c.Received+c.Duplicated {
		t.Errorf("forwarded %d + lost %d + overflow %d + errors %d != received %d + duplicated %d",
			c.Forwarded, c.Lost, c.Overflow, c.Errors, c.Received, c.Duplicated)
	}
	// Per-frame decisions act on wire-sized packets, not super-frames.
	if perFrame := spec.Loss > 0 || spec.Duplicate > 0 || spec.Reorder > 0; perFrame && c.Segmented == 0 {
		t.Errorf("%v split no super-frame: %+v", spec, c)
	}
	return c
}

// TestImpairTCP runs TCP across the client link and replica 0's link, both
// impaired, through a temporary bridge in the box.
func TestImpairTCP(t *testing.T) {
	l := newImpairedLab(t, 1, "up0", "rp0")
	ln, err := l.Listen(l.ReplicaNS[0], "tcp", net.JoinHostPort(l.VIP.String(), "7100"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	undo := bridge(t, l, "rp0")
	defer undo()
	const size = 20 << 20

	t.Run("clear", func(t *testing.T) {
		c := impairCase(t, l, ln, "up0", impair.Spec{}, size)
		if c.Bytes < 2*size || c.Forwarded != c.Received || c.Lost+c.Delayed+c.Reordered+c.Duplicated+c.Overflow != 0 {
			t.Errorf("clear link counters %+v: want everything forwarded untouched", c)
		}
		if st, _ := l.ImpairStats("rp0"); st.ToBox.Bytes < size || st.FromBox.Bytes < size {
			t.Errorf("rp0 forwarded %d/%d bytes for two %d-byte transfers", st.ToBox.Bytes, st.FromBox.Bytes, size)
		}
	})
	t.Run("loss5", func(t *testing.T) {
		c := impairCase(t, l, ln, "up0", impair.Spec{Loss: 0.05}, size)
		if c.Lost == 0 {
			t.Errorf("5%% loss dropped nothing: %+v", c)
		}
	})
	t.Run("reorder", func(t *testing.T) {
		c := impairCase(t, l, ln, "rp0", impair.Spec{Reorder: 0.1}, size)
		if c.Reordered == 0 {
			t.Errorf("reorder 10%% reordered nothing: %+v", c)
		}
	})
	t.Run("duplicate", func(t *testing.T) {
		c := impairCase(t, l, ln, "up0", impair.Spec{Duplicate: 0.05}, size)
		if c.Duplicated == 0 || c.Forwarded != c.Received+c.Duplicated {
			t.Errorf("duplicate 5%%: %+v", c)
		}
	})
	t.Run("delay-jitter", func(t *testing.T) {
		c := impairCase(t, l, ln, "rp0", impair.Spec{Delay: 5 * time.Millisecond, Jitter: 2 * time.Millisecond}, size)
		if c.Delayed == 0 {
			t.Errorf("delay delayed nothing: %+v", c)
		}
	})
	t.Run("everything", func(t *testing.T) {
		spec := impair.Spec{Loss: 0.02, Duplicate: 0.02, Reorder: 0.05, Delay: 2 * time.Millisecond, Jitter: time.Millisecond}
		if err := l.Impair("rp0", spec); err != nil {
			t.Fatal(err)
		}
		defer l.ClearImpair("rp0")
		c := impairCase(t, l, ln, "up0", spec, size/4)
		if c.Lost == 0 || c.Duplicated == 0 || c.Reordered == 0 || c.Delayed == 0 {
			t.Errorf("combined impairment: %+v", c)
		}
	})
	t.Run("rtt", func(t *testing.T) {
		base := minRTT(t, l, ln, 20)
		if err := l.Impair("up0", impair.Spec{Dir: impair.ToBox, Delay: 20 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		one := minRTT(t, l, ln, 10)
		// Adding the other direction keeps the first: 20ms each way.
		if err := l.Impair("up0", impair.Spec{Dir: impair.FromBox, Delay: 20 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		both := minRTT(t, l, ln, 10)
		st, err := l.ImpairStats("up0")
		if err != nil {
			t.Fatal(err)
		}
		if err := l.ClearImpair("up0"); err != nil {
			t.Fatal(err)
		}
		cleared := minRTT(t, l, ln, 20)
		t.Logf("min RTT: %v clear, %v with 20ms to the box, %v with 20ms each way, %v cleared", base, one, both, cleared)
		if one-base < 15*time.Millisecond {
			t.Errorf("20ms one-way delay added only %v to the RTT", one-base)
		}
		if both-base < 35*time.Millisecond {
			t.Errorf("20ms each way added only %v to the RTT", both-base)
		}
		if st.Specs[0].Delay != 20*time.Millisecond || st.Specs[1].Delay != 20*time.Millisecond {
			t.Errorf("specs in force %+v", st.Specs)
		}
		if cleared > base+10*time.Millisecond {
			t.Errorf("RTT %v after clearing, %v before", cleared, base)
		}
	})
	t.Run("rate", func(t *testing.T) {
		// 20 Mbit/s from the replica: 2 MB need at least 0.8s.
		if err := l.Impair("rp0", impair.Spec{Dir: impair.ToBox, RateBps: 20e6}); err != nil {
			t.Fatal(err)
		}
		defer l.ClearImpair("rp0")
		const n = 2 << 20
		d := transfer(t, l, ln, n, false, 3)
		mbps := float64(n) * 8 / d.Seconds() / 1e6
		t.Logf("2 MB at 20 Mbit/s took %v (%.1f Mbit/s)", d.Round(time.Millisecond), mbps)
		if d < 700*time.Millisecond {
			t.Errorf("2 MB took %v through a 20 Mbit/s limit", d)
		}
	})
}

// TestImpairFaultsPassThrough checks that SetLink, DeleteNS and
// RecreateReplica behave on an impaired link as on a direct one.
func TestImpairFaultsPassThrough(t *testing.T) {
	l := newImpairedLab(t, 2, "up0", "rp1")
	ns := l.ReplicaNS[1]

	// Host end down: the box port loses carrier, and back.
	if err := l.SetLink(ns, "eth0", false); err != nil {
		t.Fatal(err)
	}
	waitOper(t, l.BoxNS, "rp1", "DOWN")
	if err := l.SetLink(ns, "eth0", true); err != nil {
		t.Fatal(err)
	}
	waitOper(t, l.BoxNS, "rp1", "UP")
	// Box end down: the host loses carrier, and back.
	if err := l.SetLink(l.BoxNS, "up0", false); err != nil {
		t.Fatal(err)
	}
	waitOper(t, l.ClientNS, "eth0", "DOWN")
	if err := l.SetLink(l.BoxNS, "up0", true); err != nil {
		t.Fatal(err)
	}
	waitOper(t, l.ClientNS, "eth0", "UP")

	// Traffic still flows after the flaps, and the forwarders survived.
	addr := net.JoinHostPort(l.VIP.String(), "7101")
	ln, err := l.Listen(ns, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	undo := bridge(t, l, "rp1")
	roundTrip(t, l, ln)
	undo()
	ln.Close()

	spec := impair.Spec{Dir: impair.FromBox, Delay: 3 * time.Millisecond, Loss: 0.01, Seed: 5}
	if err := l.Impair("rp1", spec); err != nil {
		t.Fatal(err)
	}
	fwd := l.imps["rp1"].proc

	// Deleting the host removes the box port, as without impairment.
	if err := l.DeleteNS(ns); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Interface(l.BoxNS, "rp1"); err == nil {
		t.Error("box port rp1 survived its replica's deletion")
	}
	if netnsList(t)[l.Name+"-imp-rp1"] {
		t.Error("impairment namespace survived its replica's deletion")
	}
	if !fwd.Exited() {
		t.Error("forwarder of a deleted link still runs")
	}
	if err := l.Impair("rp1", spec); err == nil {
		t.Error("Impair on a deleted link succeeded")
	}
	if operState(t, l.BoxNS, "up0") != "UP" {
		t.Error("unrelated impaired link up0 went down")
	}

	// Recreating rebuilds the point with the spec last set.
	if err := l.RecreateReplica(1); err != nil {
		t.Fatal(err)
	}
	st, err := l.ImpairStats("rp1")
	if err != nil {
		t.Fatal(err)
	}
	want := spec
	if st.Specs[1] != want || !st.Specs[0].IsZero() {
		t.Errorf("specs after RecreateReplica %+v, want from-box %+v", st.Specs, want)
	}
	ln, err = l.Listen(ns, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	undo = bridge(t, l, "rp1")
	if err := l.ClearImpair("rp1"); err != nil {
		t.Fatal(err)
	}
	// The recreated eth0 has a new MAC, which the client's cache would
	// take seconds to notice.
	if _, err := l.Run(l.ClientNS, "ip", "neigh", "flush", "all"); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, l, ln)
	undo()

	// Deleting the box takes every impairment point with it.
	if err := l.DeleteNS(l.BoxNS); err != nil {
		t.Fatal(err)
	}
	for _, link := range []string{"up0", "rp1"} {
		if netnsList(t)[l.Name+"-imp-"+link] {
			t.Errorf("impairment point %s survived the box", link)
		}
	}
	if _, err := l.Interface(l.ClientNS, "eth0"); err == nil {
		t.Error("client eth0 survived the box's deletion")
	}
}

// TestImpairForwarderLog checks that spec changes are logged, for failure
// messages.
func TestImpairForwarderLog(t *testing.T) {
	l := newImpairedLab(t, 1, "rp0")
	if err := l.Impair("rp0", impair.Spec{Loss: 0.5}); err != nil {
		t.Fatal(err)
	}
	log := l.impLog("rp0")
	if !strings.Contains(log, "loss=50%") || !bytes.Contains([]byte(log), []byte("forwarding tohost <-> tobox")) {
		t.Errorf("forwarder log lacks the spec or its start:\n%s", log)
	}
	if err := l.ClearImpair("rp0"); err != nil {
		t.Fatal(err)
	}
	// SIGUSR1 prints the counters into the log.
	if err := l.imps["rp0"].proc.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200 && !strings.Contains(l.impLog("rp0"), `impair: stats {"to_box":{"received"`); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if log := l.impLog("rp0"); !strings.Contains(log, `impair: stats {"to_box":{"received"`) {
		t.Errorf("no stats in the log after SIGUSR1:\n%s", log)
	}
	if err := l.imps["rp0"].proc.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := l.Impair("rp0", impair.Spec{}); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("Impair with a dead forwarder: %v", err)
	}
}
