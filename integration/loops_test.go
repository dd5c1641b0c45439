package integration_test

import (
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/ftbridge/ftbridge/integration/labsvc"
)

// loopsConfig runs the dataplane on three loops (flow affinity) whatever
// the machine's cores: the loops share two cores here, which costs speed,
// not correctness.
const loopsConfig = shortTimeWait + `, "loops": 3`

// TestLoopsFailover runs paced downloads spread over three dataplane loops
// and fails the primary under them (kill -9, link down, namespace deleted,
// SIGSTOP, which loops other than 0 find as stalls and report to it):
// every connection, on every loop, completes byte for byte without a
// reset. After the deleted namespace comes back, every loop reopens its
// socket on the new port: new connections on every loop get both
// replicas, and the connections that survived the failure get the
// replica back (rejoin).
func TestLoopsFailover(t *testing.T) {
	for _, f := range []fault{faults[0], faults[1], faults[3], faults[4]} {
		t.Run(f.name, func(t *testing.T) {
			b := newBridgeLab(t, labOptions{replicas: 2, extra: loopsConfig})
			b.logEventsOnFailure()
			b.waitHealthy(7000, "a", "b")
			guard := b.guardResets()
			const n, size = 30, 512 << 10
			conns := b.dialN(n, 7000, 60*time.Second)
			// Idle connections that outlive the fault, to be rejoined.
			idle := b.dialN(12, 7000, 60*time.Second)
			for _, c := range idle {
				if _, _, err := labsvc.Incr(c, 1); err != nil {
					t.Fatal(err)
				}
			}
			s := b.snapshot()
			if s.Connections != n+len(idle) || len(s.Loops) != 3 {
				t.Fatalf("%d connections on loops %v, want %d on 3 loops", s.Connections, s.Loops, n+len(idle))
			}
			for i, c := range s.Loops {
				// 42 connections hashed over 3 loops: an empty loop
				// has a chance of 3*(2/3)^42, below 1e-7.
				if c == 0 {
					t.Fatalf("loop %d has no connection: %v", i, s.Loops)
				}
			}
			t.Logf("connections per loop: %v", s.Loops)
			injected := b.after(250*time.Millisecond, func() error { return f.inject(b, 0) })
			_, errs := pacedDownloads(conns, size, 500)
			if err := <-injected; err != nil {
				t.Fatal(err)
			}
			checkAll(t, conns, errs)
			b.waitLog(5*time.Second, "failover", "from=a")
			for _, c := range idle {
				if last, _, err := labsvc.Incr(c, 1); err != nil || last != 2 {
					t.Fatalf("idle connection %s after the fault: %d %v", c.LocalAddr(), last, err)
				}
			}

			// Bring a back.
			switch f.name {
			case "kill9":
				b.startLabsvc(0)
			case "sigstop":
				if err := b.server(0).Signal(syscall.SIGCONT); err != nil {
					t.Fatal(err)
				}
			case "linkdown":
				if err := b.SetLink(b.ReplicaNS[0], "eth0", true); err != nil {
					t.Fatal(err)
				}
			case "nsdelete":
				if err := b.RecreateReplica(0); err != nil {
					t.Fatal(err)
				}
				b.startLabsvc(0)
				b.waitLog(10*time.Second, "port-back")
			}
			b.waitHealthy(7000, "a", "b")
			// Every surviving connection gets a back, on every loop
			// (after a link down or SIGSTOP, a's server still holds
			// those connections: the box resets them first).
			deadline := time.Now().Add(15 * time.Second)
			for {
				s = b.snapshot()
				if s.ByRedundancy[2] == s.Connections && s.Connections >= len(idle) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("redundancy not restored: %v of %d connections (loops %v)\n%s", s.ByRedundancy, s.Connections, s.Loops, connSummary(s))
				}
				time.Sleep(200 * time.Millisecond)
			}
			fresh := make([]net.Conn, 12)
			for i := range fresh {
				fresh[i] = b.dial(7000)
				fresh[i].SetDeadline(time.Now().Add(30 * time.Second))
				seed := uint64(900 + i)
				res, err := labsvc.Download(fresh[i], 64<<10, seed, nil)
				if err != nil || res.SHA256 != labsvc.StreamHash(64<<10, seed) {
					t.Fatalf("download on new connection %d: %v", i, err)
				}
			}
			s = b.snapshot()
			for _, c := range fresh {
				got, ok := liveMembers(s, c.LocalAddr())
				if !ok || fmt.Sprint(got) != "[a b]" {
					t.Errorf("new connection %s: live members %v (known %v), want [a b]; loops %v", c.LocalAddr(), got, ok, s.Loops)
				}
			}
			for _, group := range [][]net.Conn{conns, idle, fresh} {
				for _, c := range group {
					if err := labsvc.Quit(c); err != nil {
						t.Errorf("quit %s: %v", c.LocalAddr(), err)
					}
					c.Close()
				}
			}
			guard.check()
			b.waitDrained(10 * time.Second)
			b.daemonAlive()
		})
	}
}
