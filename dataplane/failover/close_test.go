package failover

import (
	"testing"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/pkt"
)

// repFin: member i sends FIN at view offset off (with data before it if any).
func (f *fix) repFin(i int, off uint32, data string) {
	f.fromRep(i, f.rseg(i, off, f.cOff, data, pkt.TCPFlagAck|pkt.TCPFlagFin, 0xFFFF))
}

func TestLoneFINFromPrimaryIsFailover(t *testing.T) {
	f := newFix2(t, testParams())
	f.repData(0, 0, pattern(0, 100, 0))
	f.repData(1, 0, pattern(0, 100, 0))
	f.clientAck(100)
	f.repData(1, 100, pattern(100, 50, 0)) // backup produced more
	f.o.drain()
	f.repFin(0, 100, "") // primary closes at 100: it crashed
	evs := f.o.takeEvents()
	if rm := eventsOf(evs, EventMemberRemoved); len(rm) != 1 || rm[0].Member != 0 || rm[0].Reason != ReasonLoneFIN {
		t.Errorf("removed events %+v", evs)
	}
	if fo := eventsOf(evs, EventFailover); len(fo) != 1 || fo[0].Member != 1 || fo[0].From != 0 {
		t.Errorf("failover events %+v", evs)
	}
	ss := f.o.takeClient()
	if fin := withFlag(ss, pkt.TCPFlagFin); len(fin) != 0 {
		t.Errorf("lone FIN reached the client: %v", fin)
	}
	f.wantOneData(ss, 100, pattern(100, 50, 0))
	if rs := withFlag(f.o.takeRep(0), pkt.TCPFlagRst); len(rs) != 1 {
		t.Errorf("lone closer not reset: %v", rs)
	}
}

func TestLoneFINFromBackupDropsBackup(t *testing.T) {
	f := newFix2(t, testParams())
	f.repData(0, 0, pattern(0, 100, 0))
	f.repFin(1, 0, pattern(0, 60, 0)) // backup closes at 60 while the primary is at 100
	evs := f.o.takeEvents()
	if rm := eventsOf(evs, EventMemberRemoved); len(rm) != 1 || rm[0].Member != 1 || rm[0].Reason != ReasonLoneFIN {
		t.Errorf("events %+v", evs)
	}
	if len(eventsOf(evs, EventFailover)) != 0 {
		t.Errorf("unexpected failover")
	}
	ss := f.o.takeClient()
	if len(withFlag(ss, pkt.TCPFlagFin)) != 0 {
		t.Errorf("FIN to the client")
	}
	f.wantOneData(ss, 0, pattern(0, 100, 0))
}

func TestAgreedFINAndFullClose(t *testing.T) {
	p := testParams()
	f := newFix2(t, p)
	f.repData(0, 0, pattern(0, 100, 0))
	f.repFin(0, 100, "")
	f.repFin(1, 0, pattern(0, 100, 0)) // data and FIN in one segment
	ss := f.o.takeClient()
	f.wantOneData(ss, 0, pattern(0, 100, 0))
	fins := withFlag(ss, pkt.TCPFlagFin)
	if len(fins) != 1 || fins[0].H.Seq != f.vISN+1+100 || len(fins[0].P) != 0 {
		t.Fatalf("want exactly one FIN at +100, got %v", ss)
	}
	// The FIN again from the backup: no second FIN.
	f.repFin(1, 100, "")
	if fins := withFlag(f.o.takeClient(), pkt.TCPFlagFin); len(fins) != 0 {
		t.Errorf("second FIN to the client: %v", fins)
	}
	f.o.drain()
	// The client acknowledges data and FIN: each member gets an ACK of its FIN.
	f.clientAck(101)
	for i, r := range f.reps {
		rs := f.o.takeRep(i)
		if len(rs) != 1 || rs[0].H.Ack != r.isn+1+101 {
			t.Errorf("member %d: %v, want ACK %#x", i, rs, r.isn+1+101)
		}
	}
	if f.c.State() != StateEstablished {
		t.Fatalf("state %v before the client closed", f.c.State())
	}
	// The client closes; the replicas acknowledge its FIN.
	f.fromClient(f.cseg(f.cOff, 101, "", pkt.TCPFlagAck|pkt.TCPFlagFin))
	for i := 0; i < 2; i++ {
		rs := f.o.takeRep(i)
		if len(rs) != 1 || !rs[0].H.Flags.Has(pkt.TCPFlagFin) || rs[0].H.Seq != f.cli.isn+1 {
			t.Errorf("member %d: client FIN forwarded as %v", i, rs)
		}
	}
	f.repAckAt(0, 101, 1, 0xFFFF)
	if f.c.State() != StateEstablished {
		t.Errorf("TIME_WAIT before every member acknowledged the client's FIN")
	}
	f.repAckAt(1, 101, 1, 0xFFFF)
	ss = f.o.takeClient()
	if len(ss) != 1 || ss[0].H.Ack != f.cli.isn+2 || ss[0].H.Seq != f.vISN+1+101 {
		t.Errorf("client's FIN acknowledged with %v, want ack %#x seq %#x", ss, f.cli.isn+2, f.vISN+1+101)
	}
	if f.c.State() != StateTimeWait {
		t.Fatalf("state %v want time-wait", f.c.State())
	}
	if f.p.Hold.Used != 0 || f.c.HeldBytes() != 0 {
		t.Errorf("held %d used %d in time-wait", f.c.HeldBytes(), f.p.Hold.Used)
	}
	want := f.now.Add(p.TimeWait)
	if d := f.c.NextDeadline(); !d.Equal(want) {
		t.Errorf("deadline %v want %v", d, want)
	}
	f.now = want.Add(-time.Millisecond)
	f.tick()
	if f.c.State() != StateTimeWait {
		t.Errorf("closed early")
	}
	f.now = want
	f.tick()
	if f.c.State() != StateClosed || f.c.CloseReason() != ReasonClosed {
		t.Errorf("state %v reason %v", f.c.State(), f.c.CloseReason())
	}
}

func TestLoneFINFinWaitExpires(t *testing.T) {
	p := testParams()
	f := newFix2(t, p)
	f.repData(0, 0, pattern(0, 100, 0))
	f.repData(1, 0, pattern(0, 100, 0))
	f.clientAck(100)
	f.repFin(0, 100, "")
	f.o.drain()
	want := f.now.Add(p.FinWait)
	if d := f.c.NextDeadline(); !d.Equal(want) {
		t.Errorf("deadline %v want %v", d, want)
	}
	f.now = want.Add(-time.Millisecond)
	f.tick()
	if len(f.o.takeEvents()) != 0 || !f.c.MemberLive(0) {
		t.Fatalf("dropped before FinWait")
	}
	f.now = want
	f.tick()
	evs := f.o.takeEvents()
	if rm := eventsOf(evs, EventMemberRemoved); len(rm) != 1 || rm[0].Member != 0 || rm[0].Reason != ReasonLoneFIN {
		t.Errorf("events %+v", evs)
	}
	if fo := eventsOf(evs, EventFailover); len(fo) != 1 || fo[0].Member != 1 {
		t.Errorf("events %+v", evs)
	}
	if len(withFlag(f.o.takeClient(), pkt.TCPFlagFin)) != 0 {
		t.Errorf("FIN to the client")
	}
	f.repData(1, 100, "more")
	f.wantOneData(f.o.takeClient(), 100, "more")
}

func TestPrimaryRSTIsFailover(t *testing.T) {
	f := newFix2(t, testParams())
	f.repData(0, 0, pattern(0, 100, 0))
	f.repData(1, 0, pattern(0, 100, 0))
	f.o.drain()
	r := f.rseg(0, 100, 0, "", pkt.TCPFlagRst|pkt.TCPFlagAck, 0)
	f.fromRep(0, r)
	evs := f.o.takeEvents()
	if rm := eventsOf(evs, EventMemberRemoved); len(rm) != 1 || rm[0].Reason != ReasonRST || rm[0].Member != 0 {
		t.Errorf("events %+v", evs)
	}
	if fo := eventsOf(evs, EventFailover); len(fo) != 1 || fo[0].Member != 1 || fo[0].Reason != ReasonRST {
		t.Errorf("events %+v", evs)
	}
	ss := f.o.takeClient()
	if rst := withFlag(ss, pkt.TCPFlagRst); len(rst) != 0 {
		t.Errorf("RST reached the client: %v", rst)
	}
	f.wantOneData(ss, 0, pattern(0, 100, 0)) // unacknowledged output resent
	if f.c.State() != StateEstablished {
		t.Errorf("state %v", f.c.State())
	}
	// An RST far from its send sequence is not believed.
	f2 := newFix2(t, testParams())
	f2.fromRep(0, f2.rseg(0, 1<<24, 0, "", pkt.TCPFlagRst, 0))
	if !f2.c.MemberLive(0) || f2.c.Primary() != 0 {
		t.Errorf("out-of-window RST believed")
	}
}

func TestClientRSTResetsEveryMember(t *testing.T) {
	f := newFix3(t, testParams())
	f.repData(0, 0, "xyz")
	f.clientData(0, pattern(0, 10, 3))
	f.repAck(0, 10, 0xFFFF)
	f.repAck(1, 5, 0xFFFF)
	// member 2 acknowledged nothing
	f.o.drain()
	f.fromClient(&Segment{Seq: f.cli.isn + 1 + 10, Flags: pkt.TCPFlagRst})
	for i, want := range []uint32{10, 5, 0} {
		rs := f.o.takeRep(i)
		if len(rs) != 1 || rs[0].H.Flags != pkt.TCPFlagRst || rs[0].H.Seq != f.cli.isn+1+want {
			t.Errorf("member %d: %v, want RST seq %#x", i, rs, f.cli.isn+1+want)
		}
	}
	if f.c.State() != StateClosed || f.c.CloseReason() != ReasonClientRST {
		t.Errorf("state %v reason %v", f.c.State(), f.c.CloseReason())
	}
	if f.p.Hold.Used != 0 {
		t.Errorf("hold used %d", f.p.Hold.Used)
	}
	if len(f.o.takeClient()) != 0 {
		t.Errorf("something sent to the client after its RST")
	}
}

func TestHalfCloseClientFirst(t *testing.T) {
	f := newFix2(t, testParams())
	f.fromClient(f.cseg(0, 0, "bye", pkt.TCPFlagAck|pkt.TCPFlagFin))
	for i := 0; i < 2; i++ {
		rs := f.o.takeRep(i)
		if len(rs) != 1 || !rs[0].H.Flags.Has(pkt.TCPFlagFin) || string(rs[0].P) != "bye" {
			t.Errorf("member %d: %v", i, rs)
		}
	}
	f.repAckAt(0, 0, 4, 0xFFFF)
	f.repAckAt(1, 0, 4, 0xFFFF)
	ss := f.o.takeClient()
	if len(ss) != 1 || ss[0].H.Ack != f.cli.isn+1+4 {
		t.Errorf("client FIN acknowledged with %v, want ack %#x", ss, f.cli.isn+5)
	}
	// The server keeps sending after the client's half close.
	for k := uint32(0); k < 3; k++ {
		f.fromRep(0, f.rseg(0, k*100, 4, pattern(int(k*100), 100, 0), pkt.TCPFlagAck, 0xFFFF))
		f.fromRep(1, f.rseg(1, k*100, 4, pattern(int(k*100), 100, 0), pkt.TCPFlagAck, 0xFFFF))
		d := f.wantOneData(f.o.takeClient(), k*100, pattern(int(k*100), 100, 0))
		if d.H.Ack != f.cli.isn+5 {
			t.Errorf("ack %#x", d.H.Ack)
		}
	}
	f.fromRep(0, f.rseg(0, 300, 4, "", pkt.TCPFlagAck|pkt.TCPFlagFin, 0xFFFF))
	f.fromRep(1, f.rseg(1, 300, 4, "", pkt.TCPFlagAck|pkt.TCPFlagFin, 0xFFFF))
	if fins := withFlag(f.o.takeClient(), pkt.TCPFlagFin); len(fins) != 1 || fins[0].H.Seq != f.vISN+1+300 {
		t.Fatalf("FIN %v", fins)
	}
	f.fromClient(f.cseg(4, 301, "", pkt.TCPFlagAck))
	if f.c.State() != StateTimeWait {
		t.Errorf("state %v want time-wait", f.c.State())
	}
}

// The primary stops (a gray failure) just before the client's last
// request: the backup answers and closes, the primary says nothing. The
// closer is right and the silent one is behind: FinWait must not drop the
// closer; the stall rule fails the primary, and the close goes on with the
// backup alone.
func TestLoneFINBehindLaggardKeepsCloser(t *testing.T) {
	p := testParams()
	f := newFix2(t, p)
	f.repData(0, 0, "hi\n")
	f.repData(1, 0, "hi\n")
	f.clientAck(3)
	f.clientData(3, "QUIT\n")
	f.repAck(0, 5, 0xFFFF)
	f.repData(1, 3, "BYE\n")
	f.repFin(1, 7, "")
	f.o.drain()
	start := f.now
	f.now = start.Add(p.FinWait)
	f.tick()
	evs := f.o.takeEvents()
	if rm := eventsOf(evs, EventMemberRemoved); len(rm) != 0 {
		t.Fatalf("a closer ahead of a silent peer was dropped: %+v", rm)
	}
	if !f.c.MemberLive(1) {
		t.Fatal("closer not live")
	}
	st := eventsOf(evs, EventStalled)
	for d := f.c.NextDeadline(); len(st) == 0 && !d.IsZero() && d.Before(start.Add(4*p.StallTimeout)); d = f.c.NextDeadline() {
		f.now = d
		f.tick()
		evs := f.o.takeEvents()
		if rm := eventsOf(evs, EventMemberRemoved); len(rm) != 0 {
			t.Fatalf("a closer ahead of a silent peer was dropped: %+v", rm)
		}
		st = eventsOf(evs, EventStalled)
	}
	if len(st) != 1 || st[0].Member != 0 {
		t.Fatalf("stalled events %+v, want the silent primary", st)
	}
	// The engine fails the stalled replica; the backup's close goes on.
	f.c.RemoveReplica(f.now, f.c.MemberID(0), ReasonStalled, true, f.o)
	cl := f.o.takeClient()
	if len(withFlag(cl, pkt.TCPFlagFin)) != 1 {
		t.Fatalf("want the backup's BYE and FIN released, got %v", cl)
	}
}
