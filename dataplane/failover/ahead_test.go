package failover

import (
	"testing"
	"time"
)

// Output lost between a replica and the box: what follows is kept and
// SACKed, so the replica retransmits only the gap; once the gap arrives the
// kept part is used without the replica sending it again.
func TestOutputAheadOfGapKeptAndSACKed(t *testing.T) {
	p := testParams()
	f := newFix2(t, p)
	f.repData(1, 0, "0123456789")
	// The primary's first five bytes are lost before the box.
	f.repData(0, 5, "56789")
	if d := dataSegs(f.o.takeClient()); len(d) != 0 {
		t.Fatalf("released across a gap: %v", d)
	}
	acks := f.o.takeRep(0)
	if len(acks) == 0 {
		t.Fatal("no ACK asking for the gap")
	}
	a := acks[len(acks)-1]
	r := f.reps[0]
	if a.H.Ack != r.isn+1 || a.H.NumSACK != 1 || a.H.SACK[0].Left != r.isn+1+5 || a.H.SACK[0].Right != r.isn+1+10 {
		t.Fatalf("want ACK of offset 0 with SACK [5,10), got %v", a)
	}
	// Alive and sending: not a stall, however long the gap takes.
	f.adv(p.StallTimeout + 100*time.Millisecond)
	f.tick()
	if ev := eventsOf(f.o.takeEvents(), EventStalled); len(ev) != 0 {
		t.Fatalf("a member that keeps sending was taken for stalled: %v", ev)
	}
	// The retransmitted gap completes the stream from the kept part.
	f.repData(0, 0, "01234")
	f.wantOneData(f.o.takeClient(), 0, "0123456789")
	if len(f.c.members[0].ooo) != 0 {
		t.Fatalf("kept output not consumed: %v", f.c.members[0].ooo)
	}
}
