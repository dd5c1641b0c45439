package engine

import (
	"net/netip"
	"testing"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/failover"
	"github.com/ftbridge/ftbridge/dataplane/pkt"
)

// Probe verdicts under load, driven round by round on a real engine (veth
// ports in a private namespace, see newBenchBox) with the clock set by
// hand: the loop is not running, judgeRound is called as runProbes would.

// silence makes replica r look unanswered since the given time on every
// level (ARP and each service's TCP probe), with probes outstanding.
func silence(r *replica, since time.Time) {
	r.lastARP = since
	r.arpSeen, r.heard = false, false
	for s := range r.svcLast {
		r.svcLast[s] = since
		r.svcSeen[s] = false
		r.probePort[s] = 40000
	}
}

// rounds runs n probe rounds of the health interval on replica r.
func rounds(e *Engine, r *replica, n int) {
	for range n {
		e.now = e.now.Add(e.cfg.Health.Interval)
		e.judgeRound(r)
		if r.port != nil {
			r.port.backlogged = false
		}
	}
}

func TestProbeSilenceFailsReplica(t *testing.T) {
	bb := newBenchBox(t, 2)
	e := bb.e
	r := e.replicas[0]
	silence(r, e.now)
	rounds(e, r, e.cfg.Health.FailAfter+4)
	if r.up {
		t.Fatal("a replica silent for many rounds on an idle box is still up")
	}
	if r.svcUp[0] {
		t.Fatal("a service silent for many rounds on an idle box is still up")
	}
}

func TestProbeSilenceExcusedWhileBoxOverloaded(t *testing.T) {
	bb := newBenchBox(t, 2)
	e := bb.e
	r := e.replicas[0]
	start := e.now
	silence(r, start)
	// The loop stalled for 3 s after the replica's last answer (a burst
	// of new connections on a starved machine) and has just caught up:
	// the silence so far proves nothing.
	e.now = start.Add(3 * time.Second)
	e.overloadedAt = e.now
	rounds(e, r, 2)
	if !r.up || !r.svcUp[0] {
		t.Fatalf("replica failed (up %v, service up %v) for silence while the box itself was stalled", r.up, r.svcUp[0])
	}
	// Once the box keeps up, silence counts from its recovery: the
	// replica fails a few rounds later as usual.
	rounds(e, r, e.cfg.Health.FailAfter+4)
	if r.up || r.svcUp[0] {
		t.Fatalf("replica silent for %v after the box recovered is still up (up %v, service up %v)",
			e.now.Sub(e.overloadedAt), r.up, r.svcUp[0])
	}
	// A box that stays overloaded excuses silence only up to overloadCap.
	bb2 := newBenchBox(t, 2)
	e2 := bb2.e
	r2 := e2.replicas[0]
	start = e2.now
	silence(r2, start)
	e2.now = start.Add(overloadCap)
	for range e2.cfg.Health.FailAfter + 4 {
		e2.overloadedAt = e2.now
		rounds(e2, r2, 1)
	}
	if r2.up {
		t.Fatalf("replica silent for %v is still up under a box that stays overloaded", e2.now.Sub(start))
	}
}

func TestProbeTrafficCountsAsAnswer(t *testing.T) {
	bb := newBenchBox(t, 2)
	e := bb.e
	r := e.replicas[0]
	silence(r, e.now)
	// No probe answer at all, but the replica's listener answers a client
	// SYN (here one of no known connection: the box resets it, and still
	// takes it as a sign of life) every round.
	svc := netip.AddrPortFrom(benchVIP, benchPort)
	sa := makeSeg(r.peer, r.port.mac, svc, clientAddr(7), pkt.TCPFlagSyn|pkt.TCPFlagAck, 1, 2, 0)
	for range e.cfg.Health.FailAfter + 4 {
		e.handleFrame(r.port, sa.b)
		bb.discard()
		rounds(e, r, 1)
	}
	if !r.up || !r.svcUp[0] {
		t.Fatalf("replica answering SYNs was failed (up %v, service up %v)", r.up, r.svcUp[0])
	}
	// Once it stops, the probes' silence fails it as before.
	rounds(e, r, e.cfg.Health.FailAfter+4)
	if r.up || r.svcUp[0] {
		t.Fatalf("replica silent after its traffic stopped is still up (up %v, service up %v)", r.up, r.svcUp[0])
	}
}

func TestRejoinSweepBoundedAndIdleWhenClean(t *testing.T) {
	bb := newBenchBox(t, 2)
	e := bb.e
	const n = maxJoining + 36
	for i := range n {
		bb.open(t, clientAddr(i))
	}
	b := e.replicas[1]
	e.setDown(b, "test", failover.ReasonReplicaDown, false)
	bb.discard()
	if !e.rejoinDirty {
		t.Fatal("members left connections but the table is not marked for a rejoin sweep")
	}
	// b comes back: one sweep starts at most maxJoining joins and keeps
	// the table marked, since more are left.
	b.up = true
	e.nextSweep = time.Time{}
	e.rejoinSweep()
	bb.discard()
	joining := 0
	for _, ce := range e.conns {
		if i := ce.conn.MemberIndex(b.id); i >= 0 && ce.conn.MemberJoining(i) {
			joining++
		}
	}
	if joining != maxJoining {
		t.Fatalf("%d joins under way after one sweep, want %d", joining, maxJoining)
	}
	if !e.rejoinDirty {
		t.Fatal("sweep cut short by its budget cleared the mark")
	}
	// A table where nothing can join is swept once and then left alone.
	e.setDown(b, "test", failover.ReasonReplicaDown, false)
	bb.discard()
	b.up = false
	e.nextSweep = time.Time{}
	e.rejoinSweep()
	if e.rejoinDirty {
		t.Fatal("a sweep that found nothing to do left the table marked")
	}
}

// TestStallReportsHoldDownOnce: several connections (on one loop or on
// several) report the same replica stalled; it is failed once, held out
// for one hold_down, not for one doubling per report.
func TestStallReportsHoldDownOnce(t *testing.T) {
	bb := newBenchBox(t, 2)
	e := bb.e
	r := e.replicas[0]
	if !r.up {
		t.Fatal("replica not up at start")
	}
	e.overloadedAt = time.Time{}
	for range 5 {
		e.pendingFail = append(e.pendingFail, pendingFailure{id: r.id, reason: failover.ReasonStalled, detail: "stalled"})
	}
	e.runPendingFailures()
	if r.up {
		t.Fatal("a replica reported stalled is still up")
	}
	if got := r.holdUntil.Sub(e.now); got != e.cfg.Health.HoldDown {
		t.Fatalf("held out for %v after one episode reported 5 times, want hold_down %v", got, e.cfg.Health.HoldDown)
	}
	// A later episode, after it came back, doubles it.
	r.up = true
	e.now = r.holdUntil.Add(time.Second)
	e.pendingFail = append(e.pendingFail, pendingFailure{id: r.id, reason: failover.ReasonStalled, detail: "stalled"})
	e.runPendingFailures()
	if got := r.holdUntil.Sub(e.now); got != 2*e.cfg.Health.HoldDown {
		t.Fatalf("second episode held out for %v, want %v", got, 2*e.cfg.Health.HoldDown)
	}
}
