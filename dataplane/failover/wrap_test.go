package failover

import (
	"testing"

	"github.com/ftbridge/ftbridge/dataplane/pkt"
)

// The whole life of a connection with every sequence space crossing 2^32
// mid-stream: client ISN, view (primary) ISN, backup ISN, and timestamps.
func TestWraparoundWholeFlow(t *testing.T) {
	cli := defaultCli()
	cli.isn = 0xFFFFFF00
	cli.ts = 0xFFFFFFF0
	a := rc(10, 0xFFFFFF80, 0xFFFFFF00)
	b := rc(11, 0xFFFFFFC0, 0x7FFFFFF0)
	c3 := rc(12, 0xFFFFFFFF, 3)
	f := newFix(t, testParams(), cli, a, b, c3)
	if f.vISN != 0xFFFFFF80 {
		t.Fatalf("view ISN %#x", f.vISN)
	}
	lastTS := f.lastT
	var stream []byte // what the client received in order
	take := func() {
		ss := f.o.takeClient()
		lastTS = tsNondecreasing(t, lastTS, ss)
		for _, s := range dataSegs(ss) {
			off := s.H.Seq - (f.vISN + 1)
			if int(off) > len(stream) {
				t.Fatalf("gap: segment at %d, stream at %d", off, len(stream))
			}
			if int(off)+len(s.P) > len(stream) {
				stream = append(stream[:off], s.P...)
			}
		}
	}
	// Client sends 300 bytes (its space wraps at offset 255).
	for k := 0; k < 3; k++ {
		f.clientData(uint32(len(stream)), pattern(k*100, 100, 0x55))
		for i := 0; i < 3; i++ {
			f.repAck(i, uint32((k+1)*100), 0xFFFF)
		}
		ss := f.o.takeClient()
		if len(ss) != 1 || ss[0].H.Ack != cli.isn+1+uint32((k+1)*100) {
			t.Fatalf("step %d: client ACK %v want %#x", k, ss, cli.isn+1+uint32((k+1)*100))
		}
		lastTS = tsNondecreasing(t, lastTS, ss)
	}
	// Members acknowledge in their own spaces; check the box's ACKs to them.
	for i := 0; i < 3; i++ {
		f.o.takeRep(i)
	}
	// Servers send 300 bytes in 100-byte pieces (view wraps at 127, backup at 63).
	for k := 0; k < 3; k++ {
		for i := 0; i < 3; i++ {
			f.repData(i, uint32(k*100), pattern(k*100, 100, 0))
		}
		take()
		if len(stream) != (k+1)*100 {
			t.Fatalf("step %d: stream len %d", k, len(stream))
		}
		f.clientAck(uint32(k*100 + 50))
		for i, r := range f.reps {
			rs := f.o.takeRep(i)
			if len(rs) != 1 || rs[0].H.Ack != r.isn+1+uint32(k*100+50) {
				t.Errorf("step %d member %d: %v want ack %#x", k, i, rs, r.isn+1+uint32(k*100+50))
			}
		}
	}
	// Failover across the wrapped spaces: a -> b.
	f.c.RemoveReplica(f.now, 10, ReasonReplicaDown, false, f.o)
	ss := f.o.takeClient()
	f.wantOneData(ss, 250, pattern(250, 50, 0))
	f.o.client = append(f.o.client[:0:0], ss...) // keep for take()
	f.o.ci = 0
	take()
	for k := 3; k < 5; k++ {
		f.repData(2, uint32(k*100), pattern(k*100, 100, 0))
		f.repData(1, uint32(k*100), pattern(k*100, 100, 0))
		take()
	}
	if len(stream) != 500 || string(stream) != pattern(0, 500, 0) {
		t.Fatalf("stream len %d, content mismatch %v", len(stream), string(stream) != pattern(0, 500, 0))
	}
	// Close at 500 by agreement.
	f.repFin(1, 500, "")
	f.repFin(2, 500, "")
	fins := withFlag(f.o.takeClient(), pkt.TCPFlagFin)
	if len(fins) != 1 || fins[0].H.Seq != f.vISN+1+500 {
		t.Fatalf("FIN %v want seq %#x", fins, f.vISN+1+500)
	}
	f.clientAck(501)
	f.fromClient(f.cseg(f.cOff, 501, "", pkt.TCPFlagAck|pkt.TCPFlagFin))
	f.repAckAt(1, 501, 301, 0xFFFF)
	f.repAckAt(2, 501, 301, 0xFFFF)
	if f.c.State() != StateTimeWait {
		t.Errorf("state %v want time-wait", f.c.State())
	}
	if f.p.Hold.Used != 0 {
		t.Errorf("hold used %d", f.p.Hold.Used)
	}
}
