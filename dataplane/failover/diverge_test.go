package failover

import (
	"sort"
	"testing"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/pkt"
)

func checkDiverged(t *testing.T, f *fix, m int, off uint32) {
	t.Helper()
	evs := f.o.takeEvents()
	dv := eventsOf(evs, EventDiverged)
	if len(dv) != 1 || dv[0].Member != m || dv[0].Offset != f.vISN+1+off {
		t.Errorf("diverged events %+v, want member %d offset %#x", evs, m, f.vISN+1+off)
	}
	if rm := eventsOf(evs, EventMemberRemoved); len(rm) != 1 || rm[0].Member != m || rm[0].Reason != ReasonDiverged {
		t.Errorf("removed events %+v", evs)
	}
	if !f.c.Diverged || f.c.MemberLive(m) {
		t.Errorf("Diverged=%v live(%d)=%v", f.c.Diverged, m, f.c.MemberLive(m))
	}
	if rs := withFlag(f.o.takeRep(m), pkt.TCPFlagRst); len(rs) != 1 {
		t.Errorf("diverged member %d got %v, want one RST", m, rs)
	}
}

// A backup's differing output: detected at the right offset, the backup is
// out, and the client's stream goes on without waiting for anything else.
func TestDivergedBackupAfterPrimary(t *testing.T) {
	f := newFix2(t, testParams())
	f.repData(0, 0, "AAAAAAAAAA")
	f.o.drain()
	f.repData(1, 0, "AAAXAAAAAA")
	checkDiverged(t, f, 1, 3)
	// The primary's output is no longer waiting for anyone: it must be
	// released now, not at the next unrelated segment or timer.
	if d := dataSegs(f.o.takeClient()); len(d) != 1 || string(d[0].P) != "AAAAAAAAAA" || d[0].H.Seq != f.vISN+1 {
		t.Errorf("after the only backup diverged, client got %v; want [0,10) released at once (held %d, next deadline in %v)",
			d, f.c.HeldBytes(), f.c.NextDeadline().Sub(f.now))
	}
	f.repData(0, 10, "BB")
	var got []byte
	for _, s := range dataSegs(f.o.client) {
		if off := s.H.Seq - (f.vISN + 1); int(off) == len(got) {
			got = append(got, s.P...)
		}
	}
	if string(got) != "AAAAAAAAAABB" {
		t.Errorf("client stream %q, want AAAAAAAAAABB", got)
	}
}

// The same with three members: the two agreeing ones carry on.
func TestDivergedThirdMember(t *testing.T) {
	f := newFix3(t, testParams())
	f.repData(0, 0, pattern(0, 50, 0))
	f.repData(2, 0, pattern(0, 20, 0)+"?"+pattern(21, 29, 0))
	checkDiverged(t, f, 2, 20)
	f.repData(1, 0, pattern(0, 50, 0))
	f.wantOneData(f.o.takeClient(), 0, pattern(0, 50, 0))
}

// The backup produced first; the primary's differing bytes are the truth.
func TestDivergedBackupBeforePrimary(t *testing.T) {
	f := newFix2(t, testParams())
	f.repData(1, 0, "0123456789")
	f.repData(0, 0, "01234x6789")
	checkDiverged(t, f, 1, 5)
	f.wantOneData(f.o.takeClient(), 0, "01234x6789")
	if f.c.Primary() != 0 {
		t.Errorf("primary %d", f.c.Primary())
	}
}

// Stall: a backup that stops acknowledging while the primary does.
func TestStallBackupStopsAcking(t *testing.T) {
	p := testParams()
	f := newFix2(t, p)
	f.clientData(0, "0123456789")
	f.adv(time.Millisecond)
	f.repAck(0, 10, 0xFFFF)
	start := f.now
	if d := f.c.NextDeadline(); !d.Equal(start.Add(p.StallTimeout)) {
		t.Errorf("deadline %v want %v", d, start.Add(p.StallTimeout))
	}
	f.wantStallAt(start.Add(p.StallTimeout), 1, LagAck)
}

// wantStallAt asserts that member m is reported stalled, with lag, by a
// tick at exactly when and not by one a millisecond earlier.
func (f *fix) wantStallAt(when time.Time, m int, lag Lag) {
	f.t.Helper()
	f.now = when.Add(-time.Millisecond)
	f.tick()
	if st := eventsOf(f.o.takeEvents(), EventStalled); len(st) != 0 {
		f.t.Fatalf("stalled before the timeout: %+v", st)
	}
	f.now = when
	f.tick()
	st := eventsOf(f.o.takeEvents(), EventStalled)
	if len(st) != 1 || st[0].Member != m || st[0].Reason != ReasonStalled || st[0].Lag != lag {
		f.t.Errorf("stalled events %+v, want member %d with lag %v", st, m, lag)
	}
}

// Stall: the primary hangs (its output stops) while the backup's runs ahead.
func TestStallPrimaryOutputBehind(t *testing.T) {
	p := testParams()
	f := newFix2(t, p)
	f.repData(1, 0, "hello")
	start := f.now
	f.now = start.Add(p.StallTimeout)
	f.tick()
	st := eventsOf(f.o.takeEvents(), EventStalled)
	if len(st) != 1 || st[0].Member != 0 {
		t.Errorf("stalled events %+v, want member 0", st)
	}
}

// A slow backup that keeps progressing is never taken for a stalled one.
func TestStallSlowButProgressingBackup(t *testing.T) {
	p := testParams()
	f := newFix2(t, p)
	type ev struct {
		at time.Time
		do func()
	}
	var evs []ev
	for k := 0; k < 40; k++ {
		k := k
		at := t0.Add(time.Duration(k) * 100 * time.Millisecond)
		chunk := uint32(10 * (k + 1))
		evs = append(evs, ev{at, func() { f.clientData(0, pattern(k*10, 10, 5)) }})
		evs = append(evs, ev{at.Add(time.Millisecond), func() { f.repAck(0, chunk, 0xFFFF) }})
		// The backup acknowledges later and later: 50ms + 5ms*k.
		evs = append(evs, ev{at.Add(50*time.Millisecond + time.Duration(k)*5*time.Millisecond), func() { f.repAck(1, chunk, 0xFFFF) }})
	}
	sort.SliceStable(evs, func(a, b int) bool { return evs[a].at.Before(evs[b].at) })
	for _, e := range evs {
		for d := f.c.NextDeadline(); !d.IsZero() && !d.After(e.at); d = f.c.NextDeadline() {
			f.now = d
			f.tick()
		}
		f.now = e.at
		e.do()
	}
	if st := eventsOf(f.o.takeEvents(), EventStalled); len(st) != 0 {
		t.Errorf("slow but progressing backup reported stalled: %+v", st)
	}
	if !f.c.MemberLive(1) {
		t.Errorf("backup removed")
	}
}

// Held output is bounded by MaxHold; the budget is the sum of what
// connections hold and returns to zero when they close.
func TestHoldBounded(t *testing.T) {
	p := testParams()
	p.MaxHold = 1000
	p.Hold = &HoldBudget{Max: 1500}
	f := newFix2(t, p)
	f.repData(0, 0, pattern(0, 600, 0))
	f.repData(0, 600, pattern(600, 600, 0))
	f.repData(0, 1200, pattern(1200, 600, 0))
	if f.c.HeldBytes() != 1000 || p.Hold.Used != 1000 {
		t.Fatalf("held %d used %d, want 1000/1000", f.c.HeldBytes(), p.Hold.Used)
	}
	if d := dataSegs(f.o.takeClient()); len(d) != 0 {
		t.Fatalf("released without the backup: %v", d)
	}
	// A second connection sharing the budget gets only what is left.
	g := newFix2(t, p)
	g.repData(0, 0, pattern(0, 800, 0))
	if g.c.HeldBytes() != 500 || p.Hold.Used != 1500 {
		t.Errorf("second conn held %d, used %d; want 500/1500", g.c.HeldBytes(), p.Hold.Used)
	}
	// The backup catches up; the client takes it all; the primary sends the rest again.
	f.repData(1, 0, pattern(0, 1000, 0))
	f.wantOneData(f.o.takeClient(), 0, pattern(0, 1000, 0))
	f.clientAck(1000)
	if f.c.HeldBytes() != 0 || p.Hold.Used != int64(g.c.HeldBytes()) {
		t.Errorf("held %d used %d (other conn %d)", f.c.HeldBytes(), p.Hold.Used, g.c.HeldBytes())
	}
	f.repData(0, 1000, pattern(1000, 800, 0))
	if f.c.HeldBytes() != 800 || p.Hold.Used != 1300 {
		t.Errorf("held %d used %d, want 800/1300", f.c.HeldBytes(), p.Hold.Used)
	}
	f.fromClient(&Segment{Seq: f.cli.isn + 1, Flags: pkt.TCPFlagRst})
	g.fromClient(&Segment{Seq: g.cli.isn + 1, Flags: pkt.TCPFlagRst})
	if p.Hold.Used != 0 {
		t.Errorf("hold used %d after both closed", p.Hold.Used)
	}
}

// Loss on the client's side: both members sent output the client has not
// acknowledged yet (it waits for its own recovery); the backup had more in
// flight and is ahead. The primary is held by its ACK clock, not stalled,
// however long the client takes. Once the client has everything the
// primary sent and the primary still produces nothing, it is stalled.
func TestStallWaitsForClientRecovery(t *testing.T) {
	p := testParams()
	f := newFix2(t, p)
	f.repData(0, 0, pattern(0, 100, 0))
	f.repData(1, 0, pattern(0, 300, 0))
	f.clientAck(50) // the rest of the released 100 bytes was lost
	f.o.drain()
	f.adv(3 * p.StallTimeout)
	f.tick()
	if st := eventsOf(f.o.takeEvents(), EventStalled); len(st) != 0 {
		t.Fatalf("a member waiting for the client's recovery was taken for stalled: %+v", st)
	}
	f.clientAck(100)
	f.wantStallAt(f.now.Add(p.StallTimeout), 0, LagOutput)
}
