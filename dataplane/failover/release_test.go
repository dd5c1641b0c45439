package failover

import (
	"testing"

	"github.com/ftbridge/ftbridge/dataplane/pkt"
)

func TestMatchedReleaseWaitsForBackup(t *testing.T) {
	f := newFix2(t, testParams())
	f.repData(0, 0, "hello world")
	if d := dataSegs(f.o.takeClient()); len(d) != 0 {
		t.Fatalf("primary output released before the backup produced it: %v", d)
	}
	if f.c.HeldBytes() != 11 {
		t.Errorf("held %d want 11", f.c.HeldBytes())
	}
	f.repData(1, 0, "hello")
	s := f.wantOneData(f.o.takeClient(), 0, "hello")
	if s.H.Ack != f.cli.isn+1 || !s.H.HasTS || s.H.TSVal != f.rTS[0] {
		t.Errorf("released segment %v: want ack %#x TSval %d (primary's)", s, f.cli.isn+1, f.rTS[0])
	}
	f.repData(1, 5, " world")
	f.wantOneData(f.o.takeClient(), 5, " world")
	if f.c.HeldBytes() != 11 {
		t.Errorf("held %d want 11 (client has not acknowledged)", f.c.HeldBytes())
	}
	f.clientAck(11)
	if f.c.HeldBytes() != 0 || f.p.Hold.Used != 0 {
		t.Errorf("held %d used %d after the client's ACK", f.c.HeldBytes(), f.p.Hold.Used)
	}
}

func TestMatchedReleaseBackupFirst(t *testing.T) {
	f := newFix3(t, testParams())
	f.repData(2, 0, "abcdef") // the third, ISN 0x7FFFFFFF
	f.repData(1, 0, "abcdef") // ISN 0x100
	if d := dataSegs(f.o.takeClient()); len(d) != 0 {
		t.Fatalf("released without the primary: %v", d)
	}
	f.repData(0, 0, "abcdef")
	f.wantOneData(f.o.takeClient(), 0, "abcdef")
}

func TestImmediateRelease(t *testing.T) {
	p := testParams()
	p.Immediate = true
	f := newFix2(t, p)
	f.repData(0, 0, "hello world")
	f.wantOneData(f.o.takeClient(), 0, "hello world")
	f.repData(1, 0, "hello world")
	if d := dataSegs(f.o.takeClient()); len(d) != 0 {
		t.Errorf("backup output sent to the client: %v", d)
	}
	if len(eventsOf(f.o.takeEvents(), EventDiverged)) != 0 {
		t.Errorf("identical output flagged as diverged")
	}
}

// Invariant 1: the client's ACK is the lowest ACK of the live members and
// its window edge the lowest edge; no unforced duplicate pure ACK.
func TestAckGating(t *testing.T) {
	f := newFix2(t, testParams())
	f.clientData(0, pattern(0, 100, 9))
	if ss := f.o.takeClient(); len(ss) != 0 {
		t.Fatalf("client got %v before any replica acknowledged", ss)
	}
	f.repAck(0, 100, 0xFFFF)
	if ss := f.o.takeClient(); len(ss) != 0 {
		t.Fatalf("client got %v with only the primary's ACK (backup still at 0)", ss)
	}
	f.repAck(1, 60, 10) // edge 60 + 10<<7
	ss := f.o.takeClient()
	if len(ss) != 1 {
		t.Fatalf("want one ACK, got %v", ss)
	}
	h := ss[0].H
	if h.Ack != f.cli.isn+1+60 || h.Window != 10 || len(ss[0].P) != 0 {
		t.Errorf("client ACK %v, want ack +60 window 10", ss[0])
	}
	f.repAck(1, 100, 10)
	ss = f.o.takeClient()
	if len(ss) != 1 || ss[0].H.Ack != f.cli.isn+1+100 || ss[0].H.Window != 10 {
		t.Fatalf("client ACK %v, want ack +100 window 10", ss)
	}
	// The same ACK and window again from either member: no duplicate.
	f.repAck(0, 100, 0xFFFF)
	f.repAck(1, 100, 10)
	if ss := f.o.takeClient(); len(ss) != 0 {
		t.Errorf("unforced duplicate ACK(s) to the client: %v", ss)
	}
	// The backup opens its window: right edge moves to the primary's or the
	// backup's, whichever is lower.
	f.repAck(1, 100, 40)
	ss = f.o.takeClient()
	if len(ss) != 1 || ss[0].H.Ack != f.cli.isn+1+100 || ss[0].H.Window != 40 {
		t.Errorf("window update %v, want window 40", ss)
	}
	// The primary shrinks below it: no ACK needed (edge does not advance).
	f.repAck(0, 100, 20)
	if ss := f.o.takeClient(); len(ss) != 0 {
		t.Errorf("unexpected %v", ss)
	}
	// Next data carries the lower edge.
	f.fromRep(0, f.rseg(0, 0, 100, "z", pkt.TCPFlagAck, 20))
	f.fromRep(1, f.rseg(1, 0, 100, "z", pkt.TCPFlagAck, 40))
	d := f.wantOneData(f.o.takeClient(), 0, "z")
	if d.H.Ack != f.cli.isn+1+100 || d.H.Window != 20 {
		t.Errorf("data header %v, want ack +100 window 20", d)
	}
}

// The window toward the client: right edge (ack + win<<vWS) never beyond
// the lowest member edge, with rounding down when shifts differ.
func TestAckGatingWindowRounding(t *testing.T) {
	a := rc(10, 0xFFFFFFF0, 1)
	a.ws = 2
	b := rc(11, 0x100, 2)
	b.ws = 9
	f := newFix(t, testParams(), defaultCli(), a, b) // view ws = 9
	f.clientData(0, "abc")
	f.repAck(0, 3, 1000) // 4000 bytes
	f.repAck(1, 3, 100)  // 51200 bytes
	ss := f.o.takeClient()
	if len(ss) != 1 {
		t.Fatalf("%v", ss)
	}
	edge := uint32(ss[0].H.Window) << 9
	if ss[0].H.Ack != f.cli.isn+4 || edge > 4000 || ss[0].H.Window != 4000>>9 {
		t.Errorf("ACK %v: edge %d, want window %d (<= 4000 bytes)", ss[0], edge, 4000>>9)
	}
}

func TestRetransmissions(t *testing.T) {
	f := newFix2(t, testParams())
	f.repData(0, 0, pattern(0, 50, 0))
	f.repData(1, 0, pattern(0, 50, 0))
	f.wantOneData(f.o.takeClient(), 0, pattern(0, 50, 0))
	f.clientAck(20)
	f.o.drain()
	// The primary retransmits [0,50): the box resends what the client lacks.
	f.repData(0, 0, pattern(0, 50, 0))
	f.wantOneData(f.o.takeClient(), 20, pattern(20, 30, 0))
	// A backup retransmission is answered to the backup, not the client.
	f.repData(1, 0, pattern(0, 50, 0))
	if d := dataSegs(f.o.takeClient()); len(d) != 0 {
		t.Errorf("backup retransmission reached the client: %v", d)
	}
	if a := f.o.takeRep(1); len(a) != 1 || a[0].H.Ack != f.reps[1].isn+1+20 {
		t.Errorf("backup got %v, want ACK of +20 in its space", a)
	}

	// The client retransmits data every member has acknowledged: the box answers.
	f.clientData(50, "0123456789")
	f.repAck(0, 10, 0xFFFF)
	f.repAck(1, 10, 0xFFFF)
	f.o.drain()
	f.fromClient(f.cseg(0, 50, "0123456789", pkt.TCPFlagAck|pkt.TCPFlagPsh))
	ss := f.o.takeClient()
	if len(ss) != 1 || len(ss[0].P) != 0 || ss[0].H.Ack != f.cli.isn+1+10 || ss[0].H.Seq != f.vISN+1+50 {
		t.Errorf("client retransmission answered with %v, want one pure ACK ack=+10 seq=+50", ss)
	}
	// ... and it is passed on to the replicas too (harmless duplicate).
	for i := 0; i < 2; i++ {
		if rs := f.o.takeRep(i); len(rs) != 1 {
			t.Errorf("member %d: %v", i, rs)
		}
	}
}
