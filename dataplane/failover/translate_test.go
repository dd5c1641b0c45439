package failover

import (
	"testing"

	"github.com/ftbridge/ftbridge/dataplane/pkt"
)

func TestTranslateAckSACKTSecr(t *testing.T) {
	p := testParams()
	p.Immediate = true
	f := newFix3(t, p)
	f.repData(0, 0, pattern(0, 100, 0))
	f.repData(1, 0, pattern(0, 100, 0))
	f.repData(2, 0, pattern(0, 40, 0))
	f.o.drain()

	s := f.cseg(0, 20, "", pkt.TCPFlagAck)
	s.SACK[0] = pkt.SACKBlock{Left: f.vISN + 1 + 35, Right: f.vISN + 1 + 60}
	s.SACK[1] = pkt.SACKBlock{Left: f.vISN + 1 + 70, Right: f.vISN + 1 + 90}
	s.NumSACK = 2
	s.TSEcr = 1_000_050
	f.fromClient(s)
	for i, r := range f.reps {
		ss := f.o.takeRep(i)
		if len(ss) != 1 {
			t.Fatalf("member %d: want 1 forwarded segment, got %v", i, ss)
		}
		h := ss[0].H
		d := r.isn - f.vISN
		if h.Seq != s.Seq {
			t.Errorf("member %d: seq %#x want %#x (client space is common)", i, h.Seq, s.Seq)
		}
		if want := f.vISN + 1 + 20 + d; h.Ack != want {
			t.Errorf("member %d: ack %#x want %#x", i, h.Ack, want)
		}
		if want := uint32(1_000_050) + (r.ts - 1_000_000); !h.HasTS || h.TSEcr != want || h.TSVal != s.TSVal {
			t.Errorf("member %d: TS %d/%#x want %d/%#x", i, h.TSVal, h.TSEcr, s.TSVal, want)
		}
		switch i {
		case 0, 1:
			if h.NumSACK != 2 ||
				h.SACK[0] != (pkt.SACKBlock{Left: r.isn + 1 + 35, Right: r.isn + 1 + 60}) ||
				h.SACK[1] != (pkt.SACKBlock{Left: r.isn + 1 + 70, Right: r.isn + 1 + 90}) {
				t.Errorf("member %d: SACK %d %v", i, h.NumSACK, h.SACK)
			}
		case 2:
			// It has sent only 40 bytes: the first block is cut at 40, the second dropped.
			if h.NumSACK != 1 || h.SACK[0] != (pkt.SACKBlock{Left: r.isn + 1 + 35, Right: r.isn + 1 + 40}) {
				t.Errorf("member 2: SACK %d %v, want [+35,+40)", h.NumSACK, h.SACK)
			}
		}
	}

	// An ACK beyond what member 2 has sent is clamped to its send sequence (invariant 3).
	f.clientAck(60)
	for i, r := range f.reps {
		ss := f.o.takeRep(i)
		if len(ss) != 1 {
			t.Fatalf("member %d: %v", i, ss)
		}
		want := r.isn + 1 + 60
		if i == 2 {
			want = r.isn + 1 + 40
		}
		if ss[0].H.Ack != want {
			t.Errorf("member %d: ack %#x want %#x", i, ss[0].H.Ack, want)
		}
	}
}

func TestTranslateClientWindowNoViewScale(t *testing.T) {
	cli := defaultCli()
	cli.ws = 6
	b := rc(11, 0x100, 77)
	b.ws = -1
	f := newFix(t, testParams(), cli, rc(10, 0xFFFFFFF0, 1_000_000), b)
	s := f.cseg(0, 0, "x", pkt.TCPFlagAck)
	s.Window = 1000 // unscaled: the box's SYN-ACK carried no window scale
	f.fromClient(s)
	if ss := f.o.takeRep(0); len(ss) != 1 || ss[0].H.Window != 1000>>6 {
		t.Errorf("member 0 (applies client shift 6): window %v want %d", ss, 1000>>6)
	}
	if ss := f.o.takeRep(1); len(ss) != 1 || ss[0].H.Window != 1000 {
		t.Errorf("member 1 (no scaling): window %v want 1000", ss)
	}

	// With the view scaled, the client's field passes unchanged to members
	// that use the same shift.
	cli.ws = 6
	f2 := newFix(t, testParams(), cli, rc(10, 0xFFFFFFF0, 1), rc(11, 0x100, 2))
	s = f2.cseg(0, 0, "x", pkt.TCPFlagAck)
	s.Window = 100
	f2.fromClient(s)
	for i := 0; i < 2; i++ {
		if ss := f2.o.takeRep(i); len(ss) != 1 || ss[0].H.Window != 100 {
			t.Errorf("member %d: %v want window 100", i, ss)
		}
	}
}

// The client's window, when the view has no window scale, is the smallest
// of the replicas' windows, each taken with its own scale.
func TestClientWindowFromScaledReplicaNoViewScale(t *testing.T) {
	b := rc(11, 0x100, 77)
	b.ws = -1
	f := newFix(t, testParams(), defaultCli(), rc(10, 0xFFFFFFF0, 1_000_000), b)
	f.clientData(0, pattern(0, 10, 1))
	f.repAck(0, 10, 100) // 100<<7 = 12800 bytes
	f.repAck(1, 10, 20000)
	acks := f.o.takeClient()
	if len(acks) == 0 {
		t.Fatalf("no ACK to the client")
	}
	h := acks[len(acks)-1].H
	if h.Ack != f.cli.isn+1+10 || h.Window != 12800 {
		t.Errorf("client ACK %v, want ack %#x window 12800", acks, f.cli.isn+1+10)
	}
}
