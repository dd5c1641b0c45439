package integration_test

// Connection and replica life cycle through the box: ICMP to the VIP, a
// failed replica that comes back, a replaced replica host, close
// handshakes and TIME_WAIT, many connections across a failover, a lost
// handshake ACK. Each lab ends with the leak check: no connection and no
// held byte left.

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/ftbridge/ftbridge/integration/labsvc"
)

// shortTimeWait keeps closed connections 1s, so that a lab can check that
// its table drains.
const shortTimeWait = `, "timers": {"time_wait": "1s"}`

// TestICMPEchoToVIP pings the VIP: the primary answers; after the primary
// fails the new primary does.
func TestICMPEchoToVIP(t *testing.T) {
	for _, f := range []fault{faults[0], faults[1]} { // kill9 (host alive), linkdown (host gone)
		t.Run(f.name, func(t *testing.T) {
			b := newBridgeLab(t, labOptions{replicas: 2})
			b.logEventsOnFailure()
			b.waitHealthy(7000, "a", "b")
			echoes := func() (a, bb uint64) {
				return b.snmp(b.ReplicaNS[0], "Icmp", "InEchos"), b.snmp(b.ReplicaNS[1], "Icmp", "InEchos")
			}
			a0, b0 := echoes()
			n, err := b.icmpEcho(b.ClientNS, b.VIP, 3, time.Second)
			if err != nil || n != 3 {
				t.Fatalf("echo to the VIP: %d of 3 answered, %v", n, err)
			}
			a1, b1 := echoes()
			if a1-a0 != 3 || b1 != b0 {
				t.Errorf("echo requests seen by a: %d, by b: %d; want 3 and 0 (the primary answers, the backup's copy is contained)", a1-a0, b1-b0)
			}
			// A connection makes the failover visible in the log.
			c := b.dial(7000)
			if err := f.inject(b, 0); err != nil {
				t.Fatal(err)
			}
			if _, _, err := labsvc.Incr(c, 2); err != nil {
				t.Fatal(err)
			}
			b.waitLog(5*time.Second, "failover", "from=a")
			if f.name == "linkdown" {
				b.waitLog(5*time.Second, "replica-down", "replica=a")
			}
			start := time.Now()
			n, err = b.icmpEcho(b.ClientNS, b.VIP, 3, time.Second)
			if err != nil || n != 3 {
				t.Fatalf("echo to the VIP after the primary failed (%s): %d of 3 answered, %v", f.name, n, err)
			}
			a2, b2 := echoes()
			t.Logf("after %s: echo requests seen by a: %d, by b: %d (3 echoes in %v)", f.name, a2-a1, b2-b1, time.Since(start).Round(time.Millisecond))
			if f.name == "linkdown" && b2-b1 != 3 {
				t.Errorf("after a lost its link, b saw %d echo requests, want 3", b2-b1)
			}
			if err := labsvc.Quit(c); err != nil {
				t.Fatal(err)
			}
			b.daemonAlive()
		})
	}
}

// TestRestartedReplicaServesNewConnections kills the primary's server,
// restarts it and checks that the replica is a live member (and the
// primary, being preferred) of new connections, while the connection that
// failed over keeps running on b.
func TestRestartedReplicaServesNewConnections(t *testing.T) {
	b := newBridgeLab(t, labOptions{replicas: 2, extra: shortTimeWait})
	b.logEventsOnFailure()
	b.waitHealthy(7000, "a", "b")
	guard := b.guardResets()
	c1 := b.dial(7000)
	c1.SetDeadline(time.Now().Add(30 * time.Second))
	if _, _, err := labsvc.Incr(c1, 3); err != nil {
		t.Fatal(err)
	}
	if err := b.server(0).Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if last, _, err := labsvc.Incr(c1, 3); err != nil || last != 6 {
		t.Fatalf("incr across the failover: %d %v", last, err)
	}
	b.waitLog(5*time.Second, "failover", "from=a")
	b.waitLog(5*time.Second, "replica-down", "replica=a", "port=")
	b.startLabsvc(0)
	b.waitHealthy(7000, "a", "b")
	c2 := b.dial(7000)
	c2.SetDeadline(time.Now().Add(30 * time.Second))
	res, err := labsvc.Download(c2, 4<<20, 3, nil)
	if err != nil || res.SHA256 != labsvc.StreamHash(4<<20, 3) {
		t.Fatalf("download on a new connection: %v", err)
	}
	b.checkMembers(c2, "a", "b")
	// The failed-over connection stays on b; a may have rejoined it as a
	// backup (the "rejoin" policy, "auto" by default).
	if got, ok := liveMembers(b.snapshot(), c1.LocalAddr()); !ok || len(got) == 0 || got[0] != "b" {
		t.Errorf("live members of the failed-over connection: %v (ok %v), want b as primary", got, ok)
	} else {
		t.Logf("failed-over connection: live members %v (primary first)", got)
	}
	if last, _, err := labsvc.Incr(c1, 2); err != nil || last != 8 {
		t.Fatalf("incr on the failed-over connection: %d %v", last, err)
	}
	for _, c := range []net.Conn{c1, c2} {
		if err := labsvc.Quit(c); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	guard.check()
	b.waitDrained(5 * time.Second)
	b.daemonAlive()
}

// TestReplacedReplicaHost deletes the primary's namespace (the host dies),
// builds it again (new port, new MAC) and starts its server: the box
// reopens the port and the replica serves new connections.
func TestReplacedReplicaHost(t *testing.T) {
	b := newBridgeLab(t, labOptions{replicas: 2, extra: shortTimeWait})
	b.logEventsOnFailure()
	b.waitHealthy(7000, "a", "b")
	guard := b.guardResets()
	c1 := b.dial(7000)
	c1.SetDeadline(time.Now().Add(30 * time.Second))
	if _, _, err := labsvc.Incr(c1, 1); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteNS(b.ReplicaNS[0]); err != nil {
		t.Fatal(err)
	}
	if last, _, err := labsvc.Incr(c1, 2); err != nil || last != 3 {
		t.Fatalf("incr across the failover: %d %v", last, err)
	}
	b.waitLog(5*time.Second, "failover", "from=a")
	if err := b.RecreateReplica(0); err != nil {
		t.Fatal(err)
	}
	b.startLabsvc(0)
	b.waitLog(10*time.Second, "port-back")
	b.waitHealthy(7000, "a", "b")
	c2 := b.dial(7000)
	c2.SetDeadline(time.Now().Add(30 * time.Second))
	res, err := labsvc.Download(c2, 4<<20, 4, nil)
	if err != nil || res.SHA256 != labsvc.StreamHash(4<<20, 4) {
		t.Fatalf("download on a new connection: %v", err)
	}
	b.checkMembers(c2, "a", "b")
	if last, _, err := labsvc.Incr(c1, 1); err != nil || last != 4 {
		t.Fatalf("incr on the failed-over connection: %d %v", last, err)
	}
	for _, c := range []net.Conn{c1, c2} {
		if err := labsvc.Quit(c); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	guard.check()
	b.waitDrained(5 * time.Second)
	b.daemonAlive()
}

// readEOF expects a clean end of stream (FIN) and no further data.
func readEOF(c net.Conn) error {
	var buf [64]byte
	n, err := c.Read(buf[:])
	switch {
	case n > 0:
		return fmt.Errorf("data %q where the end of stream was expected", buf[:n])
	case errors.Is(err, io.EOF):
		return nil
	}
	return fmt.Errorf("not a clean end of stream: %v", err)
}

// watchStates polls the box's view of the connection from local until it
// is gone and returns the states it was seen in, in order.
func (b *bridgeLab) watchStates(local net.Addr, timeout time.Duration) ([]string, bool) {
	var states []string
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		s := b.snapshot()
		cs, ok := connOf(s, local)
		if !ok {
			return states, true
		}
		if len(states) == 0 || states[len(states)-1] != cs.State {
			states = append(states, cs.State)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return states, false
}

// TestCloseHandshakes closes connections in every order the protocol
// allows and checks that the box's entries go through time-wait and
// disappear, that nobody sees an RST, and that the table drains.
func TestCloseHandshakes(t *testing.T) {
	b := newBridgeLab(t, labOptions{replicas: 2, extra: shortTimeWait})
	b.logEventsOnFailure()
	b.waitHealthy(7000, "a", "b")
	guard := b.guardResets()
	rsts := b.countClientRSTs()
	cases := []struct {
		name string
		run  func(c *net.TCPConn) error
	}{
		{"client-closes-first", func(c *net.TCPConn) error {
			if last, _, err := labsvc.Incr(c, 3); err != nil || last != 3 {
				return fmt.Errorf("incr: %d %v", last, err)
			}
			if err := c.CloseWrite(); err != nil {
				return err
			}
			return readEOF(c) // the server closes once it reads our FIN
		}},
		{"client-half-closes-after-upload", func(c *net.TCPConn) error {
			const n = 2 << 20
			if _, err := fmt.Fprintf(c, "SINK %d\n", n); err != nil {
				return err
			}
			if _, err := io.Copy(c, labsvc.Stream(n, 12)); err != nil {
				return err
			}
			// Half-close right behind the data: the reply travels the
			// direction that is still open.
			if err := c.CloseWrite(); err != nil {
				return err
			}
			want := labsvc.StreamHash(n, 12)
			line := make([]byte, 65)
			if _, err := io.ReadFull(c, line); err != nil {
				return fmt.Errorf("reading the hash after CloseWrite: %w", err)
			}
			if string(line) != fmt.Sprintf("%x\n", want) {
				return fmt.Errorf("hash reply %q", line)
			}
			return readEOF(c)
		}},
		{"server-closes-first", func(c *net.TCPConn) error {
			if _, err := labsvc.Download(c, 1<<20, 13, nil); err != nil {
				return err
			}
			return labsvc.Quit(c) // BYE, then the server's FIN, then EOF
		}},
		{"server-closes-first-after-idle", func(c *net.TCPConn) error {
			time.Sleep(300 * time.Millisecond)
			return labsvc.Quit(c)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := b.dial(7000).(*net.TCPConn)
			c.SetDeadline(time.Now().Add(20 * time.Second))
			local := c.LocalAddr()
			if err := tc.run(c); err != nil {
				t.Fatal(err)
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			states, gone := b.watchStates(local, 5*time.Second)
			t.Logf("box states after close: %v, removed: %v", states, gone)
			if !gone {
				t.Errorf("the entry of %s is still there 5s after the close (time_wait 1s): states %v", local, states)
			}
			if !contains(states, "time-wait") {
				t.Errorf("the entry of %s never showed time-wait (states %v)", local, states)
			}
			if r := rsts.resetsTo(addrPort(local)); len(r) != 0 {
				t.Errorf("%d RST(s) sent to the client's %s", len(r), local)
			}
		})
	}
	guard.check()
	b.waitDrained(5 * time.Second)
	b.daemonAlive()
}

// TestManyConnectionsFailover runs 50 paced downloads at once and kills
// the primary's server in the middle: every one completes byte for byte.
func TestManyConnectionsFailover(t *testing.T) {
	b := newBridgeLab(t, labOptions{replicas: 2, extra: shortTimeWait})
	b.logEventsOnFailure()
	b.waitHealthy(7000, "a", "b")
	guard := b.guardResets()
	const n, size = 50, 512 << 10
	conns := b.dialN(n, 7000, 30*time.Second)
	if s := b.snapshot(); s.Connections != n {
		t.Fatalf("%d connections in the box, want %d", s.Connections, n)
	}
	injected := b.after(250*time.Millisecond, func() error { return b.server(0).Signal(syscall.SIGKILL) })
	res, errs := pacedDownloads(conns, size, 1000)
	if err := <-injected; err != nil {
		t.Fatal(err)
	}
	checkAll(t, conns, errs)
	var worst, shortest time.Duration = 0, time.Hour
	for i, c := range conns {
		if err := labsvc.Quit(c); err != nil {
			t.Errorf("quit %s: %v", c.LocalAddr(), err)
		}
		c.Close()
		worst = max(worst, res[i].MaxGap)
		shortest = min(shortest, res[i].Duration)
	}
	if shortest < 300*time.Millisecond {
		t.Errorf("a download took only %v: over before the kill at 250ms", shortest)
	}
	logStall(t, "kill9-50conns-worst", worst)
	b.waitLog(5*time.Second, "failover", "from=a")
	guard.check()
	b.waitDrained(5 * time.Second)
	b.daemonAlive()
}

// TestHandshakeACKLost loses the client's handshake ACK (and every pure
// ACK for 1.5s, so the replicas retransmit their SYN-ACKs meanwhile): the
// connection must still work once the client sends data.
func TestHandshakeACKLost(t *testing.T) {
	ipt := iptablesCmd()
	if ipt == "" {
		t.Skip("needs iptables")
	}
	b := newBridgeLab(t, labOptions{replicas: 2, extra: shortTimeWait})
	b.logEventsOnFailure()
	b.waitHealthy(7000, "a", "b")
	guard := b.guardResets()
	// Pure ACKs (no data: IP length at most 40 + 40 bytes of options).
	rule := []string{"OUTPUT", "-p", "tcp", "--dport", "7000", "--tcp-flags", "SYN,ACK,FIN,RST,PSH", "ACK",
		"-m", "length", "--length", "0:80", "-j", "DROP"}
	if out, err := b.Run(b.ClientNS, ipt, append([]string{"-w", "-I"}, rule...)...); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	c := b.dial(7000)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	time.Sleep(1500 * time.Millisecond)
	if out, err := b.Run(b.ClientNS, ipt, append([]string{"-w", "-D"}, rule...)...); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	if last, _, err := labsvc.Incr(c, 3); err != nil || last != 3 {
		t.Fatalf("incr after the lost handshake ACK: %d %v", last, err)
	}
	res, err := labsvc.Download(c, 1<<20, 14, nil)
	if err != nil || res.SHA256 != labsvc.StreamHash(1<<20, 14) {
		t.Fatalf("download: %v", err)
	}
	b.checkMembers(c, "a", "b")
	if err := labsvc.Quit(c); err != nil {
		t.Fatal(err)
	}
	c.Close()
	guard.check()
	b.waitDrained(5 * time.Second)
	b.daemonAlive()
}
