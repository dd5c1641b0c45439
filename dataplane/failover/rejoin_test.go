package failover

import (
	"testing"

	"github.com/ftbridge/ftbridge/dataplane/pkt"
)

// startJoin builds a two-member connection with one request/response
// done, fails the primary (member 0, replica 10) and starts its rejoin;
// what the join sent is left in the recorder.
func startJoin(t *testing.T, p *Params) *fix {
	f := newFix2(t, p)
	f.clientData(0, "GET1")
	f.repData(0, 0, "RESP1")
	f.repData(1, 0, "RESP1")
	f.clientAck(5)
	f.o.drain()
	f.c.RemoveReplica(f.now, 10, ReasonReplicaDown, false, f.o)
	if f.c.Primary() != 1 {
		t.Fatalf("primary %d after failover", f.c.Primary())
	}
	f.o.drain()
	if !f.c.Join(f.now, 10, f.o) {
		t.Fatal("Join refused on a re-joinable connection")
	}
	return f
}

// rejoinFix builds a two-member connection with one request/response
// done, fails the primary (member 0, replica 10) and starts its rejoin
// with a new incarnation (new ISN and clock).
func rejoinFix(t *testing.T, p *Params) *fix {
	f := startJoin(t, p)
	syn := f.o.takeRep(0)
	if len(syn) != 1 || syn[0].H.Flags != pkt.TCPFlagSyn || syn[0].H.Seq != f.cli.isn ||
		syn[0].H.MSS != f.cli.mss || syn[0].H.WScale != int8(f.cli.ws) || !syn[0].H.SACKPermitted || !syn[0].H.HasTS {
		t.Fatalf("want the client's SYN replayed to the joiner, got %v", syn)
	}
	if ev := eventsOf(f.o.takeEvents(), EventJoinStarted); len(ev) != 1 || ev[0].Member != 0 {
		t.Fatalf("join-started events %v", ev)
	}
	// The new incarnation answers with another ISN and clock.
	f.reps[0] = rc(10, 0x8000_0000, 42)
	f.rTS[0] = 42
	f.fromRep(0, f.reps[0].synAck(f.cli.isn, f.cTS))
	return f
}

func TestRejoinThenSecondFailover(t *testing.T) {
	f := rejoinFix(t, testParams())
	// The handshake completes and the logged input is replayed.
	rs := f.o.takeRep(0)
	var replay []byte
	for _, s := range rs {
		if s.H.Ack != f.reps[0].isn+1 {
			t.Errorf("joiner ACK %#x, want %#x", s.H.Ack, f.reps[0].isn+1)
		}
		if len(s.P) > 0 {
			if s.H.Seq != f.cli.isn+1 {
				t.Errorf("replay at seq %#x, want %#x", s.H.Seq, f.cli.isn+1)
			}
			replay = append(replay, s.P...)
		}
	}
	if string(replay) != "GET1" {
		t.Fatalf("replayed %q, want GET1", replay)
	}
	if f.c.Redundancy() != 1 {
		t.Fatalf("a joiner must not count as redundancy yet: %d", f.c.Redundancy())
	}
	// Its output replays the stream; the client sees none of it again.
	f.repData(0, 0, "RESP1")
	if got := f.o.takeClient(); len(dataSegs(got)) != 0 {
		t.Fatalf("replayed output reached the client: %v", got)
	}
	if ev := eventsOf(f.o.takeEvents(), EventJoinCompleted); len(ev) != 1 {
		t.Fatalf("join did not complete")
	}
	if f.c.Redundancy() != 2 || !f.c.MemberLive(0) {
		t.Fatalf("redundancy %d after the join", f.c.Redundancy())
	}
	// Live traffic now reaches both; matched release waits for both again.
	f.clientData(5, "GET2")
	for m := 0; m < 2; m++ {
		if d := dataSegs(f.o.takeRep(m)); len(d) != 1 || string(d[0].P) != "GET2" {
			t.Fatalf("member %d did not get the live input: %v", m, d)
		}
	}
	f.repData(1, 5, "RESP2")
	if d := dataSegs(f.o.takeClient()); len(d) != 0 {
		t.Fatalf("released before the rejoined member matched: %v", d)
	}
	f.repData(0, 5, "RESP2")
	f.wantOneData(f.o.takeClient(), 5, "RESP2")
	f.clientAck(10)
	f.o.drain()

	// The second failure: the other replica. The rejoined one carries on.
	f.c.RemoveReplica(f.now, 11, ReasonReplicaDown, false, f.o)
	if f.c.Primary() != 0 || f.c.State() != StateEstablished {
		t.Fatalf("primary %d state %v after the second failover", f.c.Primary(), f.c.State())
	}
	f.o.drain()
	f.clientData(10, "GET3")
	f.repData(0, 10, "RESP3")
	f.wantOneData(f.o.takeClient(), 10, "RESP3")
}

func TestRejoinMismatchRefused(t *testing.T) {
	f := rejoinFix(t, testParams())
	f.o.drain()
	f.repData(0, 0, "RESPX")
	evs := f.o.takeEvents()
	fail := eventsOf(evs, EventJoinFailed)
	if len(fail) != 1 || fail[0].Reason != ReasonJoinMismatch {
		t.Fatalf("want join-failed(join-mismatch), got %v", evs)
	}
	if rst := withFlag(f.o.takeRep(0), pkt.TCPFlagRst); len(rst) != 1 {
		t.Fatalf("the refused joiner was not reset")
	}
	if f.c.Redundancy() != 1 || f.c.State() != StateEstablished {
		t.Fatalf("redundancy %d state %v", f.c.Redundancy(), f.c.State())
	}
	// The connection goes on on the survivor.
	f.clientData(5, "GET2")
	f.repData(1, 5, "RESP2")
	f.wantOneData(f.o.takeClient(), 5, "RESP2")
}

func TestRejoinTimeout(t *testing.T) {
	p := testParams()
	f := rejoinFix(t, p)
	f.o.drain()
	f.adv(p.JoinTimeout)
	f.tick()
	if ev := eventsOf(f.o.takeEvents(), EventJoinFailed); len(ev) != 1 || ev[0].Reason != ReasonJoinTimeout {
		t.Fatalf("want join-failed(join-timeout), got %v", ev)
	}
}

func TestInputLogOverflowNotRejoinable(t *testing.T) {
	p := testParams()
	p.LogMax = 8
	f := newFix2(t, p)
	f.clientData(0, "0123456789")
	if !f.c.LogOverflowed() || f.c.Rejoinable() {
		t.Fatalf("overflowed %v rejoinable %v", f.c.LogOverflowed(), f.c.Rejoinable())
	}
	if p.Log.Used != 0 {
		t.Fatalf("log budget not returned: %d", p.Log.Used)
	}
	f.repData(0, 0, "ok")
	f.repData(1, 0, "ok")
	f.wantOneData(f.o.takeClient(), 0, "ok")
	f.c.RemoveReplica(f.now, 10, ReasonReplicaDown, false, f.o)
	if f.c.Join(f.now, 10, f.o) {
		t.Fatal("Join accepted on a connection whose log overflowed")
	}
}

func TestInputLogOutOfOrder(t *testing.T) {
	p := testParams()
	f := newFix2(t, p)
	// Bytes 4..8 arrive before 0..4.
	f.fromClient(f.cseg(4, 0, "EFGH", pkt.TCPFlagAck))
	f.fromClient(f.cseg(0, 0, "ABCD", pkt.TCPFlagAck))
	if got := string(f.c.in.slice(f.c.in.base, f.c.in.end())); got != "ABCDEFGH" {
		t.Fatalf("log %q", got)
	}
	if p.Log.Used != 8 {
		t.Fatalf("log budget %d", p.Log.Used)
	}
	f.c.Abandon(f.now, f.o)
	if p.Log.Used != 0 {
		t.Fatalf("log budget after close %d", p.Log.Used)
	}
}

func TestTolerantDivergenceBehindClientAck(t *testing.T) {
	for _, tolerant := range []bool{false, true} {
		p := testParams()
		p.Tolerant = tolerant
		f := newFix2(t, p)
		f.clientData(0, "GET")
		f.repData(0, 0, "Date: 1\n")
		f.repData(1, 0, "Date: 2\n") // differs at offset 6
		evs := f.o.takeEvents()
		d := eventsOf(evs, EventDiverged)
		if len(d) != 1 || d[0].Offset != f.vISN+1+6 {
			t.Fatalf("tolerant=%v: divergence events %v", tolerant, evs)
		}
		if tolerant != f.c.MemberLive(1) {
			t.Fatalf("tolerant=%v: backup live %v", tolerant, f.c.MemberLive(1))
		}
		if !tolerant {
			continue
		}
		// Not a candidate until the client acknowledged past the difference.
		if f.c.Promote(f.now, 11, f.o) {
			t.Fatal("promoted a backup whose differing bytes the client has not acknowledged")
		}
		f.clientAck(8)
		f.o.drain()
		f.c.RemoveReplica(f.now, 10, ReasonReplicaDown, false, f.o)
		if f.c.Primary() != 1 {
			t.Fatalf("tolerant: backup not promoted after the client passed the difference")
		}
	}
}

// The input log overflowing while a join is under way fails the join; the
// joiner's late SYN-ACK and data then meet a gone member, not a nil log.
func TestRejoinLogDroppedMidJoin(t *testing.T) {
	p := testParams()
	p.LogMax = 16
	f := newFix2(t, p)
	f.clientData(0, "GET1")
	f.repData(0, 0, "RESP1")
	f.repData(1, 0, "RESP1")
	f.clientAck(5)
	f.c.RemoveReplica(f.now, 10, ReasonReplicaDown, false, f.o)
	if !f.c.Join(f.now, 10, f.o) {
		t.Fatal("Join refused")
	}
	f.o.drain()
	f.clientData(5, "0123456789abcdef") // overflows the 16-byte log
	if ev := eventsOf(f.o.takeEvents(), EventJoinFailed); len(ev) != 1 || ev[0].Reason != ReasonLogDropped {
		t.Fatalf("want join-failed(log-dropped), got %v", ev)
	}
	f.reps[0] = rc(10, 0x8000_0000, 42)
	f.fromRep(0, f.reps[0].synAck(f.cli.isn, f.cTS))
	f.repData(0, 0, "RESP1")
	if f.c.State() != StateEstablished || f.c.Redundancy() != 1 {
		t.Fatalf("state %v redundancy %d", f.c.State(), f.c.Redundancy())
	}
}

// TestRejoinResetsStaleConnection: the joiner still holds the old
// incarnation of the connection (its link was down when the box took it
// out) and answers the join's SYN with a challenge ACK. The box resets
// that incarnation at the sequence it acknowledges and sends the SYN
// again; the join then completes. The resets are bounded.
func TestRejoinResetsStaleConnection(t *testing.T) {
	f := startJoin(t, testParams())
	f.o.drain()
	// The old incarnation's challenge ACK: its own sequence, acknowledging
	// the client's bytes it had.
	challenge := f.rseg(0, 5, 4, "", pkt.TCPFlagAck, 0xFFFF)
	f.fromRep(0, challenge)
	got := f.o.takeRep(0)
	if len(got) != 2 || got[0].H.Flags != pkt.TCPFlagRst || got[0].H.Seq != challenge.Ack ||
		got[1].H.Flags != pkt.TCPFlagSyn || got[1].H.Seq != f.cli.isn {
		t.Fatalf("after a challenge ACK: want RST at %#x then the SYN again, got %v", challenge.Ack, got)
	}
	// Bounded: an incarnation that keeps answering is not reset forever.
	for k := 0; k < 10; k++ {
		f.fromRep(0, f.rseg(0, 5, 4, "", pkt.TCPFlagAck, 0xFFFF))
	}
	if n := len(withFlag(f.o.takeRep(0), pkt.TCPFlagRst)); n != maxStaleResets-1 {
		t.Fatalf("%d more resets after 10 challenge ACKs, want %d", n, maxStaleResets-1)
	}
	// The listener answers the SYN: the join goes on as usual.
	f.reps[0] = rc(10, 0x8000_0000, 42)
	f.rTS[0] = 42
	f.fromRep(0, f.reps[0].synAck(f.cli.isn, f.cTS))
	f.o.drain()
	f.repData(0, 0, "RESP1")
	if ev := eventsOf(f.o.takeEvents(), EventJoinCompleted); len(ev) != 1 {
		t.Fatalf("join did not complete after the stale connection was reset")
	}
}
