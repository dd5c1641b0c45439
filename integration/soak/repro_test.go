package soak

import (
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/engine"
	"github.com/ftbridge/ftbridge/integration/labsvc"
)

// Regression tests for dataplane bugs the soak and the flood tests found,
// each kept as the reproduction that found it (as root:
// go test ./integration/soak -run 'Stall|Rejoin|Closer|Probe|Hold' -v).

// TestProbeRTTAboveInterval: a replica whose round trip exceeds
// health.interval (20 ms by default; here 2 x 12 ms of added latency) must
// stay healthy. It was never healthy (an answer counted only if it came
// back before the next round replaced the probe's source port) until
// 8dc7e29 made probes adaptive to the round trip.
func TestProbeRTTAboveInterval(t *testing.T) {
	needRoot(t)
	b := newTestBridge(t, BridgeOptions{Replicas: 2, Impaired: true})
	imp := NewImpairer(b.Lab, 1)
	undo, err := imp.Apply(linkOf(b, "b"), Impairment{Kind: "delay", Delay: 12 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer undo()
	from := b.Log.NumEvents()
	time.Sleep(3 * time.Second)
	for _, ev := range b.Log.Events(from) {
		if ev.Kind == engine.EventReplicaDown {
			t.Errorf("replica %s with a 24 ms round trip declared down: %s", ev.Replica, ev.Reason)
		}
	}
}

// TestNoStallUnderLoad: four unpaced 1 GiB downloads through the box,
// two healthy replicas, no fault at all: in about one run in five (run it
// with -count=5) the box failed a healthy, moving replica as stalled ("no
// progress while peers progressed"), at commit 59530a7. In the soak the
// same happened to both replicas of a 2-replica box at once (on different
// connections) during a 20 ms delay on the client's link, and every
// connection was reset.
func TestNoStallUnderLoad(t *testing.T) {
	needRoot(t)
	b := newTestBridge(t, BridgeOptions{Replicas: 2})
	from := b.Log.NumEvents()
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			c, err := b.Dial(LabsvcPort, 5*time.Second)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(60 * time.Second))
			const n = 1 << 30
			res, err := labsvc.Download(c, n, seed, nil)
			if err != nil {
				t.Errorf("download %d: %v", seed, err)
				return
			}
			t.Logf("download %d: %.0f MiB in %v", seed, float64(res.Bytes)/(1<<20), res.Duration.Round(time.Millisecond))
		}(uint64(i))
	}
	wg.Wait()
	for _, ev := range b.Log.Events(from) {
		if ev.Kind == engine.EventStalled || ev.Kind == engine.EventReplicaDown {
			t.Errorf("load alone failed a healthy replica: %s %s replica=%s reason=%s", ev.Time.Format("15:04:05.000"), ev.Kind, ev.Replica, ev.Reason)
		}
	}
}

// TestHoldLimitNoStall: a bulk download whose held output reaches
// limits.max_hold_bytes (1 MiB here; the 4 MiB default is reached the
// same way by a faster path or a slower client) must not stall. It stalled
// for up to a second at a time (output beyond the limit was dropped and
// left to the replica's backed-off retransmission timer) until 8dc7e29
// closed the windows shown to replicas at the hold limit.
func TestHoldLimitNoStall(t *testing.T) {
	needRoot(t)
	b := newTestBridge(t, BridgeOptions{Replicas: 2, Config: map[string]any{"limits": map[string]any{"max_hold_bytes": 1 << 20}}})
	c, err := b.Dial(LabsvcPort, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	const n = 512 << 20
	res, err := labsvc.Download(c, n, 8, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d MiB in %v (%.0f MB/s), longest gap between reads %v", n>>20, res.Duration.Round(time.Millisecond),
		float64(n)/res.Duration.Seconds()/1e6, res.MaxGap.Round(time.Millisecond))
	if res.MaxGap > 200*time.Millisecond {
		t.Errorf("a download through two healthy replicas stalled for %v", res.MaxGap.Round(time.Millisecond))
	}
}

// TestRejoinLogDropped: a replica that comes back is being re-joined
// into a live connection (its SYN is out, or its replay is under way) when
// the client's input outgrows max_log_bytes. dropLog (failover/rejoin.go)
// gives the input log up but does not fail the joins under way, so the
// joiner's SYN-ACK then dereferences the nil output hash (joinSynAck,
// "j.h0 = c.outHash.Sum64()") or the replay slices the log below its new
// base (replay, "c.in.slice"): ftbridged panics and every connection dies
// with it. The soak hits this within a minute with the default
// configuration (rejoin "auto").
func TestRejoinLogDropped(t *testing.T) {
	needRoot(t)
	const logMax = 256 << 10
	b := newTestBridge(t, BridgeOptions{Replicas: 2, Impaired: true, Config: map[string]any{"limits": map[string]any{"max_log_bytes": logMax}}})
	c, err := b.Dial(LabsvcPort, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	const n = 1 << 20
	src := labsvc.Stream(n, 6)
	if _, err := fmt.Fprintf(c, "SINK %d\n", n); err != nil {
		t.Fatal(err)
	}
	// Most of the log budget, so the connection is still re-joinable.
	if _, err := io.CopyN(c, src, logMax-32<<10); err != nil {
		t.Fatal(err)
	}
	from := b.Log.NumEvents()
	if err := b.SignalServers(0, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.Log.WaitEvent(from, 5*time.Second, func(e engine.Event) bool { return e.Kind == engine.EventMemberRemoved && e.Replica == "a" }); !ok {
		t.Fatal("replica a was not removed from the connection")
	}
	// A slow link for a, so that its join takes a while.
	imp := NewImpairer(b.Lab, 1)
	undo, err := imp.Apply(linkOf(b, "a"), Impairment{Kind: "delay", Delay: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer undo()
	if err := b.StartServers(0); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.Log.WaitEvent(from, 20*time.Second, func(e engine.Event) bool { return e.Kind == "rejoin-started" && e.Replica == "a" }); !ok {
		for _, e := range b.Log.Events(from) {
			t.Logf("%s %s %s %s %s", e.Kind, e.Replica, e.Conn, e.Reason, e.Detail)
		}
		t.Fatal("no rejoin of a started")
	}
	// The input outgrows the log while a's join is under way.
	if _, err := io.CopyN(c, src, 128<<10); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if b.Daemon.Exited() {
		t.Fatalf("ftbridged died:\n%s", b.DeathNote())
	}
	if _, err := io.Copy(c, src); err != nil {
		t.Fatal(err)
	}
	var buf [65]byte
	if _, err := io.ReadFull(c, buf[:]); err != nil {
		t.Errorf("SINK reply: %v", err)
	}
}

// TestClientLossNoFalseStall: 3% packet loss on the client's link, which
// every replica sees alike, with three deliberately different replicas
// (one refuses SACK, so the client gets none). In the 3-replica chaos soak
// this failed healthy replicas as stalled ("no progress while peers
// progressed"), two within milliseconds of each other, and reset
// connections; transfers also stopped for tens of seconds: a member that
// negotiated SACK never fast-retransmits on the client's plain duplicate
// ACKs, so every loss toward the client waited for its retransmission
// timer, backed off to seconds. Fixed by counting output lag only once
// the client has all a member sent, and by the box's own loss recovery
// toward a client without SACK (failover/client.go, renoRecovery).
func TestClientLossNoFalseStall(t *testing.T) {
	needRoot(t)
	// Only the client's link has a forwarder: the replicas' links are plain
	// veths, so nothing but the box decides how their progress looks.
	b := newTestBridge(t, BridgeOptions{Replicas: 3, ImpairedPorts: []string{"up0"}})
	imp := NewImpairer(b.Lab, 1)
	undo, err := imp.Apply(linkOf(b, "client"), Impairment{Kind: "loss", Prob: 0.03})
	if err != nil {
		t.Fatal(err)
	}
	defer undo()
	from := b.Log.NumEvents()
	var wg sync.WaitGroup
	stuck := make(chan string, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			c, err := b.Dial(LabsvcPort, 5*time.Second)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			// A 20 s idle deadline per read or write: with 3% loss a
			// transfer slows down, it does not stop for that long.
			ic := &idleConn{Conn: c, idle: 20 * time.Second, onStuck: func() {
				select {
				case stuck <- c.LocalAddr().String():
				default:
				}
			}}
			for k := 0; k < 3; k++ {
				if _, err := labsvc.Upload(ic, labsvc.Stream(8<<20, seed), 8<<20); err != nil {
					t.Errorf("upload %d/%d: %v", seed, k, err)
					return
				}
				if _, err := labsvc.Download(ic, 8<<20, seed, nil); err != nil {
					t.Errorf("download %d/%d: %v", seed, k, err)
					return
				}
			}
		}(uint64(i))
	}
	go func() {
		if who, ok := <-stuck; ok {
			if s, err := b.Snapshot(5 * time.Second); err == nil {
				for _, cs := range s.Conns {
					if cs.Client != who {
						continue
					}
					t.Logf("stuck %s %s primary=%s: %s", cs.Client, cs.State, cs.Primary, cs.Detail)
				}
			}
		}
	}()
	wg.Wait()
	close(stuck)
	for _, ev := range b.Log.Events(from) {
		if ev.Kind == engine.EventStalled || ev.Kind == engine.EventReplicaDown {
			t.Errorf("loss on the client's link failed a healthy replica: %s %s replica=%s reason=%s %s", ev.Time.Format("15:04:05.000"), ev.Kind, ev.Replica, ev.Reason, ev.Detail)
		}
	}
}

// TestStoppedPeerDoesNotBlameCloser: with two replicas, the primary's
// server is stopped (SIGSTOP, a gray failure) just before the client says
// QUIT. The backup answers "BYE" and closes (FIN); the stopped primary
// says nothing. The box must keep the replica that is right: the one that
// closed, since the other one is stalled. It took the closer for a crashed
// replica (a lone FIN not followed within fin_wait), removed it, found the
// stopped one stalled too, and reset the client (found by the soak: a
// SIGSTOP that landed on a QUIT). A lone FIN is now judged only once the
// peers have produced the output before it.
func TestStoppedPeerDoesNotBlameCloser(t *testing.T) {
	needRoot(t)
	// A short hold-down: the stopped replica is back for the next round.
	b := newTestBridge(t, BridgeOptions{Replicas: 2, Config: map[string]any{"health": map[string]any{"hold_down": "200ms"}}})
	fails := 0
	for i := 0; i < 3; i++ {
		c, err := b.Dial(LabsvcPort, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(20 * time.Second))
		if last, _, err := labsvc.Incr(c, 3); err != nil || last != 3 {
			t.Fatalf("incr: %d %v", last, err)
		}
		from := b.Log.NumEvents()
		if err := b.SignalServers(0, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		err = labsvc.Quit(c)
		c.Close()
		if err != nil {
			fails++
			t.Errorf("round %d: QUIT with the primary stopped: %v", i, err)
			time.Sleep(500 * time.Millisecond) // the follower reads the log every 10 ms
			for _, ev := range b.Log.Events(from) {
				t.Logf("  %s %s replica=%s from=%s reason=%s", ev.Time.Format("15:04:05.000"), ev.Kind, ev.Replica, ev.From, ev.Reason)
			}
		}
		if err := b.SignalServers(0, syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		if err := b.WaitHealthy(30*time.Second, "a", "b"); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d of 3 clean closes failed", fails)
}

// idleConn sets a fresh deadline before every read and write, so that a
// transfer fails only when it stops moving, and calls onStuck while a read
// or write has not moved for half that (so the box's view of the
// connection can be logged while it is still stuck).
type idleConn struct {
	net.Conn
	idle    time.Duration
	onStuck func()
}

func (c *idleConn) Read(p []byte) (int, error) {
	c.Conn.SetReadDeadline(time.Now().Add(c.idle))
	tm := time.AfterFunc(c.idle/2, c.onStuck)
	defer tm.Stop()
	return c.Conn.Read(p)
}

func (c *idleConn) Write(p []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(c.idle))
	tm := time.AfterFunc(c.idle/2, c.onStuck)
	defer tm.Stop()
	return c.Conn.Write(p)
}
