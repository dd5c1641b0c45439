package failover

import (
	"testing"

	"github.com/ftbridge/ftbridge/dataplane/pkt"
)

// A replica that refuses SACK makes the view SACK-less, while the other
// negotiated SACK with its kernel: that one never fast-retransmits on the
// client's plain duplicate ACKs. The box resends the lost head itself on
// the third duplicate ACK, and the next hole at once on a partial ACK.
func TestRenoRecoveryWithoutClientSACK(t *testing.T) {
	p := testParams()
	f := newSACKlessFix(t, p)
	if f.c.vSACK {
		t.Fatal("view has SACK although a member refused it")
	}
	mss := f.c.SendMSS()
	data := pattern(0, 6*mss, 1)
	f.repData(0, 0, data)
	f.repData(1, 0, data)
	if n := len(dataSegs(f.o.takeClient())); n == 0 {
		t.Fatal("nothing released")
	}
	// Segment 1 is lost; the client acknowledges segment 0 and then
	// sends a duplicate ACK for each later segment it got.
	f.clientAck(uint32(mss))
	f.o.drain()
	f.clientAck(uint32(mss))
	f.clientAck(uint32(mss))
	if d := dataSegs(f.o.takeClient()); len(d) != 0 {
		t.Fatalf("resent before the third duplicate ACK: %v", d)
	}
	f.clientAck(uint32(mss))
	f.wantOneData(f.o.takeClient(), uint32(mss), data[mss:2*mss])
	// More duplicates during recovery do not resend again.
	f.clientAck(uint32(mss))
	if d := dataSegs(f.o.takeClient()); len(d) != 0 {
		t.Fatalf("resent on a fourth duplicate ACK: %v", d)
	}
	// A partial ACK (segment 3 was lost too): resend it at once.
	f.clientAck(uint32(3 * mss))
	f.wantOneData(f.o.takeClient(), uint32(3*mss), data[3*mss:4*mss])
	// A full ACK ends recovery; no further resends.
	f.clientAck(uint32(6 * mss))
	if d := dataSegs(f.o.takeClient()); len(d) != 0 {
		t.Fatalf("resent after recovery: %v", d)
	}
	if f.c.Retransmits != 2 {
		t.Errorf("Retransmits = %d, want 2", f.c.Retransmits)
	}
}

// With SACK in the view the members recover from the translated SACK
// blocks themselves; the box does not resend on duplicate ACKs.
func TestNoRenoRecoveryWithClientSACK(t *testing.T) {
	p := testParams()
	f := newFix2(t, p)
	if !f.c.vSACK {
		t.Fatal("view without SACK")
	}
	mss := f.c.SendMSS()
	data := pattern(0, 4*mss, 1)
	f.repData(0, 0, data)
	f.repData(1, 0, data)
	f.clientAck(uint32(mss))
	f.o.drain()
	for k := 0; k < 4; k++ {
		f.clientAck(uint32(mss))
	}
	if d := dataSegs(f.o.takeClient()); len(d) != 0 {
		t.Fatalf("the box resent although the client SACKs: %v", d)
	}
}

// A resend the client loses does not wait for a member's backed-off timer:
// the box resends the head itself after boxRTO, doubling while the client
// stays silent, and stops once the client has everything.
func TestBoxRTOWithoutClientSACK(t *testing.T) {
	p := testParams()
	f := newSACKlessFix(t, p)
	mss := f.c.SendMSS()
	data := pattern(0, 3*mss, 2)
	f.repData(0, 0, data)
	f.repData(1, 0, data)
	f.o.drain()
	start := f.now
	if d := f.c.NextDeadline(); !d.Equal(start.Add(boxRTO)) {
		t.Fatalf("deadline %v, want the box's RTO at %v", d, start.Add(boxRTO))
	}
	f.now = start.Add(boxRTO)
	f.tick()
	f.wantOneData(f.o.takeClient(), 0, data[:mss])
	f.now = f.now.Add(boxRTO) // the timer doubled: not yet
	f.tick()
	if d := dataSegs(f.o.takeClient()); len(d) != 0 {
		t.Fatalf("resent before the backed-off timer: %v", d)
	}
	f.now = start.Add(3 * boxRTO)
	f.tick()
	f.wantOneData(f.o.takeClient(), 0, data[:mss])
	// The client acknowledges part: the timer restarts from boxRTO.
	f.clientAck(uint32(mss))
	if d := f.c.NextDeadline(); !d.Equal(f.now.Add(boxRTO)) {
		t.Errorf("deadline after an ACK %v, want %v", d, f.now.Add(boxRTO))
	}
	f.clientAck(uint32(3 * mss))
	f.o.drain()
	f.now = f.now.Add(10 * boxRTO)
	f.tick()
	if d := dataSegs(f.o.takeClient()); len(d) != 0 {
		t.Fatalf("resent with nothing outstanding: %v", d)
	}
}

// Window updates are not duplicate ACKs (RFC 5681): three of them with
// output outstanding make no resend.
func TestRenoIgnoresWindowUpdates(t *testing.T) {
	p := testParams()
	f := newSACKlessFix(t, p)
	mss := f.c.SendMSS()
	data := pattern(0, 4*mss, 3)
	f.repData(0, 0, data)
	f.repData(1, 0, data)
	f.clientAck(uint32(mss))
	f.o.drain()
	for k := 0; k < 4; k++ {
		s := f.cseg(f.cOff, uint32(mss), "", pkt.TCPFlagAck)
		s.Window = uint16(1000 + 100*k)
		f.fromClient(s)
	}
	if d := dataSegs(f.o.takeClient()); len(d) != 0 {
		t.Fatalf("window updates taken for duplicate ACKs: %v", d)
	}
}

// newSACKlessFix builds a connection through two members of which the
// second refuses SACK, so the view has none while the first negotiated it.
func newSACKlessFix(t *testing.T, p *Params) *fix {
	a, b := rc(1, 100000, 700), rc(2, 900000, 800)
	b.sack = false
	return newFix(t, p, defaultCli(), a, b)
}
