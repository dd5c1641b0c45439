package failover

import (
	"testing"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/pkt"
)

// tsNondecreasing checks the TSvals of ss (in order) never go backwards from last.
func tsNondecreasing(t *testing.T, last uint32, ss []sentSeg) uint32 {
	t.Helper()
	for _, s := range ss {
		if !s.H.HasTS {
			continue
		}
		if int32(s.H.TSVal-last) < 0 {
			t.Errorf("TSval to the client went backwards: %d after %d (%v)", s.H.TSVal, last, s)
		}
		last = s.H.TSVal
	}
	return last
}

func testFailoverPrimaryDown(t *testing.T, backupTS uint32) {
	f := newFix(t, testParams(), defaultCli(), rc(10, 0xFFFFFFF0, 1_000_000), rc(11, 0x00000100, backupTS))
	lastTS := f.lastT
	f.repData(0, 0, pattern(0, 100, 0))
	f.repData(1, 0, pattern(0, 100, 0))
	ss := f.o.takeClient()
	f.wantOneData(ss, 0, pattern(0, 100, 0))
	lastTS = tsNondecreasing(t, lastTS, ss)
	f.clientAck(30)
	// The primary's clock ran ahead of the backup's since the SYN-ACK.
	f.rTS[0] += 5000
	f.repAck(0, 0, 0xFFFF)
	lastTS = tsNondecreasing(t, lastTS, f.o.takeClient())
	f.o.drain()

	f.c.RemoveReplica(f.now, 10, ReasonReplicaDown, false, f.o)
	evs := f.o.takeEvents()
	fo := eventsOf(evs, EventFailover)
	if len(fo) != 1 || fo[0].Member != 1 || fo[0].From != 0 || fo[0].Reason != ReasonReplicaDown {
		t.Fatalf("events %+v", evs)
	}
	if rm := eventsOf(evs, EventMemberRemoved); len(rm) != 1 || rm[0].Member != 0 || rm[0].Reason != ReasonReplicaDown {
		t.Errorf("member-removed events %+v", rm)
	}
	if f.c.Primary() != 1 || f.c.Failovers != 1 {
		t.Errorf("primary %d failovers %d", f.c.Primary(), f.c.Failovers)
	}
	if rs := f.o.takeRep(0); len(rs) != 0 {
		t.Errorf("removed member without rst got %v", rs)
	}
	// The unacknowledged part is resent at once from the box's copy.
	ss = f.o.takeClient()
	d := f.wantOneData(ss, 30, pattern(30, 70, 0))
	if d.H.Ack != f.cli.isn+1 {
		t.Errorf("resend ack %#x want %#x", d.H.Ack, f.cli.isn+1)
	}
	lastTS = tsNondecreasing(t, lastTS, ss)
	// The new primary is told what the client has (in its space).
	if a := f.o.takeRep(1); len(a) == 0 || a[0].H.Ack != f.reps[1].isn+1+30 {
		t.Errorf("new primary got %v, want ACK %#x", a, f.reps[1].isn+1+30)
	}
	// Its later output continues the stream: no gap, no duplicate.
	f.repData(1, 100, pattern(100, 50, 0))
	ss = f.o.takeClient()
	f.wantOneData(ss, 100, pattern(100, 50, 0))
	lastTS = tsNondecreasing(t, lastTS, ss)
	f.repData(1, 150, pattern(150, 10, 0))
	ss = f.o.takeClient()
	f.wantOneData(ss, 150, pattern(150, 10, 0))
	tsNondecreasing(t, lastTS, ss)
}

func TestFailoverPrimaryDownNegativeTSDelta(t *testing.T) { testFailoverPrimaryDown(t, 77) }
func TestFailoverPrimaryDownPositiveTSDelta(t *testing.T) { testFailoverPrimaryDown(t, 0xFFFFFF00) }

// After failover the new primary's clock (translated) ahead of tsSent: it is used.
func TestFailoverTSFollowsNewPrimary(t *testing.T) {
	f := newFix2(t, testParams())
	f.repData(0, 0, "a")
	f.repData(1, 0, "a")
	f.o.drain()
	f.c.RemoveReplica(f.now, 10, ReasonReplicaDown, false, f.o)
	f.o.drain()
	f.rTS[1] += 100 // backup's clock 100 ticks later
	f.repData(1, 1, "b")
	d := f.wantOneData(f.o.takeClient(), 1, "b")
	want := f.rTS[1] - (f.reps[1].ts - f.reps[0].ts)
	if d.H.TSVal != want {
		t.Errorf("TSval %d want %d (backup's TSval minus tsDelta)", d.H.TSVal, want)
	}
}

func TestFailoverCascade(t *testing.T) {
	f := newFix3(t, testParams())
	for i := 0; i < 3; i++ {
		f.repData(i, 0, pattern(0, 100, 0))
	}
	f.wantOneData(f.o.takeClient(), 0, pattern(0, 100, 0))
	f.clientAck(100)
	f.o.drain()

	f.c.RemoveReplica(f.now, 10, ReasonReplicaDown, true, f.o)
	if fo := eventsOf(f.o.takeEvents(), EventFailover); len(fo) != 1 || fo[0].From != 0 || fo[0].Member != 1 {
		t.Fatalf("failover events %+v", fo)
	}
	if rs := f.o.takeRep(0); len(rs) != 1 || !rs[0].H.Flags.Has(pkt.TCPFlagRst) || rs[0].H.Seq != f.cli.isn+1 {
		t.Errorf("old primary reset with %v, want RST seq %#x", rs, f.cli.isn+1)
	}
	if d := dataSegs(f.o.takeClient()); len(d) != 0 {
		t.Errorf("everything was acknowledged, yet resent %v", d)
	}
	f.repData(2, 100, pattern(100, 50, 0))
	f.repData(1, 100, pattern(100, 50, 0))
	f.wantOneData(f.o.takeClient(), 100, pattern(100, 50, 0))

	f.c.RemoveReplica(f.now, 11, ReasonReplicaDown, false, f.o)
	if fo := eventsOf(f.o.takeEvents(), EventFailover); len(fo) != 1 || fo[0].From != 1 || fo[0].Member != 2 {
		t.Fatalf("failover events %+v", fo)
	}
	f.wantOneData(f.o.takeClient(), 100, pattern(100, 50, 0))
	f.repData(2, 150, pattern(150, 30, 0))
	f.wantOneData(f.o.takeClient(), 150, pattern(150, 30, 0))
	if f.c.Failovers != 2 || f.c.Primary() != 2 {
		t.Errorf("failovers %d primary %d", f.c.Failovers, f.c.Primary())
	}

	f.c.RemoveReplica(f.now, 12, ReasonReplicaDown, false, f.o)
	ss := f.o.takeClient()
	if len(ss) != 1 || ss[0].H.Flags != pkt.TCPFlagRst || ss[0].H.Seq != f.vISN+1+180 {
		t.Errorf("client reset %v, want RST seq %#x", ss, f.vISN+1+180)
	}
	if f.c.State() != StateClosed || f.c.CloseReason() != ReasonNoReplica || f.c.Primary() != -1 {
		t.Errorf("state %v reason %v primary %d", f.c.State(), f.c.CloseReason(), f.c.Primary())
	}
	if cl := eventsOf(f.o.takeEvents(), EventClosed); len(cl) != 1 || cl[0].Reason != ReasonNoReplica {
		t.Errorf("closed events %+v", cl)
	}
	if f.p.Hold.Used != 0 {
		t.Errorf("hold used %d after close", f.p.Hold.Used)
	}
}

// Immediate policy: the client got the old primary's bytes before the
// backup produced them. If the promoted backup then produces different
// bytes at those offsets, the client's stream and the survivor's disagree:
// that must be detected (EventDiverged), and the box must never send the
// client different bytes at an offset it already sent.
func TestImmediateFailoverPromotedBackupDiffersFromReleased(t *testing.T) {
	p := testParams()
	p.Immediate = true
	f := newFix2(t, p)
	f.repData(0, 0, "AAAAAAAAAA")
	f.wantOneData(f.o.takeClient(), 0, "AAAAAAAAAA")
	f.c.RemoveReplica(f.now, 10, ReasonReplicaDown, false, f.o)
	f.o.drain()
	f.repData(1, 0, "AAAAABBBBB") // the survivor's version differs at offset 5
	// The survivor retransmits (the client has not acknowledged): whatever
	// the box sends now must be the bytes the client already has.
	f.repData(1, 0, "AAAAABBBBB")
	for _, s := range dataSegs(f.o.takeClient()) {
		off := s.H.Seq - (f.vISN + 1)
		want := "AAAAAAAAAA"[off : off+uint32(len(s.P))]
		if string(s.P) != want {
			t.Errorf("client got %q at offset %d where it already had %q", s.P, off, want)
		}
	}
	if len(eventsOf(f.o.takeEvents(), EventDiverged)) == 0 && !f.c.Diverged {
		t.Errorf("promoted backup's output differs from released output, but no divergence reported")
	}
}

// The failover's stall is reported once the client gets its first segment
// after it, measured from the last segment before it.
func TestFailoverDoneReportsStall(t *testing.T) {
	f := newFix2(t, testParams())
	f.repData(0, 0, "abc")
	f.repData(1, 0, "abc")
	f.o.drain()
	f.adv(40 * time.Millisecond)
	f.c.RemoveReplica(f.now, 10, ReasonReplicaDown, false, f.o)
	// The client has not acknowledged "abc": the box resends it at once,
	// which ends the failover right away.
	evs := f.o.takeEvents()
	done := eventsOf(evs, EventFailoverDone)
	if len(done) != 1 || done[0].Stall != 40*time.Millisecond || done[0].Member != 1 {
		t.Fatalf("failover-done events %+v", done)
	}
	// A second failover with nothing to resend finishes with the next
	// segment the client gets.
	g := newFix3(t, testParams())
	g.repData(0, 0, "x")
	g.repData(1, 0, "x")
	g.repData(2, 0, "x")
	g.clientAck(1)
	g.o.drain()
	g.adv(10 * time.Millisecond)
	g.c.RemoveReplica(g.now, 10, ReasonReplicaDown, false, g.o)
	if d := eventsOf(g.o.takeEvents(), EventFailoverDone); len(d) != 0 {
		t.Fatalf("done before anything reached the client: %+v", d)
	}
	g.adv(25 * time.Millisecond)
	g.repData(1, 1, "y")
	g.repData(2, 1, "y")
	d := eventsOf(g.o.takeEvents(), EventFailoverDone)
	if len(d) != 1 || d[0].Stall != 35*time.Millisecond {
		t.Fatalf("failover-done %+v", d)
	}
}

// The primary fails after the box answered the client's SYN but before the
// client's handshake ACK arrived (a slow client link): the backups are in
// SYN_RECV. The failover must send them nothing (an ACK of their ISN, all
// the client has acknowledged, draws an RST there and cost the soak two
// connections); the client's ACK then completes their handshakes.
func TestFailoverBeforeClientHandshakeACK(t *testing.T) {
	p := testParams()
	cli := defaultCli()
	reps := []repCfg{rc(10, 0xFFFFFFF0, 1_000_000), rc(11, 0x00000100, 77), rc(12, 0x7FFFFFFF, 0xFFFFFF00)}
	f := newConnOnly(t, p, cli, reps...)
	for i, r := range reps {
		f.c.FromReplica(f.now, i, r.synAck(cli.isn, cli.ts), f.o)
	}
	f.vISN = reps[f.c.Primary()].isn
	if sa := f.o.takeClient(); len(sa) != 1 {
		t.Fatalf("want the SYN-ACK to the client, got %v", sa)
	}
	f.o.drain()
	f.adv(time.Millisecond)
	f.c.RemoveReplica(f.now, f.c.MemberID(0), ReasonReplicaDown, true, f.o)
	for i := 1; i < 3; i++ {
		for _, s := range f.o.takeRep(i) {
			t.Errorf("member %d in SYN_RECV got %v before the client's handshake ACK", i, s)
		}
	}
	if !f.c.MemberLive(1) || f.c.Primary() != 1 {
		t.Fatalf("member 1 should be the live primary")
	}
	// The client's handshake ACK reaches both survivors, acknowledging
	// their SYNs.
	f.cTS++
	f.fromClient(f.cseg(0, 0, "", pkt.TCPFlagAck))
	for i := 1; i < 3; i++ {
		got := f.o.takeRep(i)
		if len(got) != 1 || got[0].H.Ack != reps[i].isn+1 {
			t.Errorf("member %d: want the handshake ACK of ISN+1, got %v", i, got)
		}
	}
	f.repData(1, 0, "hello")
	f.repData(2, 0, "hello")
	f.wantOneData(f.o.takeClient(), 0, "hello")
}
