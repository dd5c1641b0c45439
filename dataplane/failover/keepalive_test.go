package failover

import (
	"testing"

	"github.com/ftbridge/ftbridge/dataplane/pkt"
)

// A server's keepalive (or zero-window probe) is one below snd_una with no
// data. The primary's must reach the client, which answers with an ACK that
// is passed to every member; a backup's needs no relay (the client's answer
// to the primary's probe reaches it too).
func TestKeepaliveRelayedToClient(t *testing.T) {
	f := newFix2(t, testParams())
	f.repData(0, 0, "hello")
	f.repData(1, 0, "hello")
	f.clientAck(5)
	f.o.drain()

	// Backup probe: nothing to the client.
	f.fromRep(1, f.rseg(1, 4, f.cOff, "", pkt.TCPFlagAck, 0xFFFF))
	if got := f.o.takeClient(); len(got) != 0 {
		t.Fatalf("backup keepalive relayed to the client: %v", got)
	}
	// Primary probe: one segment, seq one below what the client acknowledged.
	f.fromRep(0, f.rseg(0, 4, f.cOff, "", pkt.TCPFlagAck, 0xFFFF))
	got := f.o.takeClient()
	if len(got) != 1 || len(got[0].P) != 0 || got[0].H.Seq != f.vISN+1+4 {
		t.Fatalf("want one empty keepalive at view offset 4, got %v", got)
	}
	// The client's answer (a pure ACK) goes to both members.
	f.clientAck(5)
	for m := 0; m < 2; m++ {
		if got := f.o.takeRep(m); len(got) != 1 || got[0].H.Ack != f.reps[m].isn+1+5 {
			t.Fatalf("member %d: want the client's ACK of offset 5 translated, got %v", m, got)
		}
	}
}
