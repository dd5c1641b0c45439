package failover

import (
	"testing"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/pkt"
)

func TestHandshakeThreeReplicasNearWrap(t *testing.T) {
	cli := defaultCli()
	cli.isn = 0xFFFFFFFE
	cli.ws = 6
	cli.ecn = true
	cli.ts = 777
	a := repCfg{id: 10, isn: 0xFFFFFFF0, mss: 1460, ws: 7, sack: true, ts: 0x10000000, win: 29200}
	b := repCfg{id: 11, isn: 0x00000100, mss: 1400, ws: 9, sack: true, ts: 0x20, win: 28960}
	c3 := repCfg{id: 12, isn: 0x7FFFFFFF, mss: 1380, ws: 5, sack: true, ts: 0xFFFFFF00, win: 65535}
	f := newConnOnly(t, testParams(), cli, a, b, c3)

	// The SYN reaches every replica unchanged except ECE/CWR.
	for i := 0; i < 3; i++ {
		ss := f.o.takeRep(i)
		if len(ss) != 1 {
			t.Fatalf("member %d: want 1 SYN, got %v", i, ss)
		}
		h := ss[0].H
		if h.Flags != pkt.TCPFlagSyn {
			t.Errorf("member %d: SYN flags %v, want SYN only (ECE/CWR stripped)", i, h.Flags)
		}
		if h.Seq != 0xFFFFFFFE || h.MSS != 1460 || h.WScale != 6 || !h.SACKPermitted || !h.HasTS || h.TSVal != 777 || h.Window != 65535 {
			t.Errorf("member %d: forwarded SYN %+v", i, h)
		}
	}
	f.c.FromReplica(f.now, 0, a.synAck(cli.isn, 777), f.o)
	f.c.FromReplica(f.now, 2, c3.synAck(cli.isn, 777), f.o)
	if got := f.o.takeClient(); len(got) != 0 {
		t.Fatalf("SYN-ACK sent before every replica answered: %v", got)
	}
	if f.c.State() != StateSynRcvd {
		t.Fatalf("state %v", f.c.State())
	}
	f.c.FromReplica(f.now, 1, b.synAck(cli.isn, 777), f.o)
	ss := f.o.takeClient()
	if len(ss) != 1 {
		t.Fatalf("want exactly one SYN-ACK, got %v", ss)
	}
	h := ss[0].H
	if h.Flags != pkt.TCPFlagSyn|pkt.TCPFlagAck {
		t.Errorf("flags %v", h.Flags)
	}
	if h.Seq != 0xFFFFFFF0 || h.Ack != 0xFFFFFFFF {
		t.Errorf("seq/ack %#x/%#x, want 0xfffffff0/0xffffffff", h.Seq, h.Ack)
	}
	if h.MSS != 1380 {
		t.Errorf("MSS %d, want min 1380", h.MSS)
	}
	if h.WScale != 9 {
		t.Errorf("WScale %d, want max 9", h.WScale)
	}
	if !h.SACKPermitted {
		t.Errorf("SACK not permitted although all replicas permit it")
	}
	if !h.HasTS || h.TSVal != 0x10000000 || h.TSEcr != 777 {
		t.Errorf("TS %v %#x/%d, want primary's TSval 0x10000000 and client's 777", h.HasTS, h.TSVal, h.TSEcr)
	}
	if h.Window != 28960 {
		t.Errorf("SYN-ACK window %d, want min 28960", h.Window)
	}
	if f.c.State() != StateEstablished || f.c.Primary() != 0 {
		t.Errorf("state %v primary %d", f.c.State(), f.c.Primary())
	}
	evs := eventsOf(f.o.takeEvents(), EventEstablished)
	if len(evs) != 1 || evs[0].Member != 0 {
		t.Errorf("established events %+v", evs)
	}
	for i := 0; i < 3; i++ {
		if !f.c.MemberLive(i) {
			t.Errorf("member %d not live", i)
		}
	}
}

func TestHandshakeOptionsNotAllOffered(t *testing.T) {
	cli := defaultCli()
	a := rc(10, 0xFFFFFFF0, 100)
	b := rc(11, 0x100, 200)
	b.ws = -1      // no window scale
	b.sack = false // no SACK
	b.mss = 1200
	f := newConnOnly(t, testParams(), cli, a, b)
	f.c.FromReplica(f.now, 0, a.synAck(cli.isn, cli.ts), f.o)
	f.c.FromReplica(f.now, 1, b.synAck(cli.isn, cli.ts), f.o)
	ss := f.o.takeClient()
	if len(ss) != 1 {
		t.Fatalf("want one SYN-ACK, got %v", ss)
	}
	h := ss[0].H
	if h.WScale != -1 {
		t.Errorf("WScale %d, want none (-1) when one replica did not offer it", h.WScale)
	}
	if h.SACKPermitted {
		t.Errorf("SACK permitted although one replica refused it")
	}
	if h.MSS != 1200 {
		t.Errorf("MSS %d want 1200", h.MSS)
	}
	if h.TSVal != 100 || h.TSEcr != cli.ts {
		t.Errorf("TS %d/%d", h.TSVal, h.TSEcr)
	}
}

func TestHandshakeReplicaRSTRemoved(t *testing.T) {
	cli := defaultCli()
	a, b, c3 := rc(10, 0xFFFFFFF0, 1), rc(11, 0x100, 2), rc(12, 0x7FFFFFFF, 3)
	f := newConnOnly(t, testParams(), cli, a, b, c3)
	f.o.drain()
	// b refuses: RST|ACK acknowledging the SYN.
	f.c.FromReplica(f.now, 1, &Segment{Seq: 0, Ack: cli.isn + 1, Flags: pkt.TCPFlagRst | pkt.TCPFlagAck}, f.o)
	evs := f.o.takeEvents()
	if len(evs) != 1 || evs[0].Kind != EventMemberRemoved || evs[0].Member != 1 || evs[0].Reason != ReasonRST {
		t.Fatalf("events %+v", evs)
	}
	f.c.FromReplica(f.now, 0, a.synAck(cli.isn, cli.ts), f.o)
	if len(f.o.takeClient()) != 0 {
		t.Fatalf("SYN-ACK before member 2 answered")
	}
	f.c.FromReplica(f.now, 2, c3.synAck(cli.isn, cli.ts), f.o)
	ss := f.o.takeClient()
	if len(ss) != 1 || ss[0].H.Seq != a.isn {
		t.Fatalf("SYN-ACK %v", ss)
	}
	if f.c.MemberLive(1) || !f.c.MemberLive(0) || !f.c.MemberLive(2) {
		t.Errorf("live: %v %v %v", f.c.MemberLive(0), f.c.MemberLive(1), f.c.MemberLive(2))
	}
	// The refusing primary candidate: the first answering member becomes primary.
	f2 := newConnOnly(t, testParams(), cli, a, b)
	f2.c.FromReplica(f2.now, 0, &Segment{Ack: cli.isn + 1, Flags: pkt.TCPFlagRst | pkt.TCPFlagAck}, f2.o)
	f2.c.FromReplica(f2.now, 1, b.synAck(cli.isn, cli.ts), f2.o)
	ss = f2.o.takeClient()
	if len(ss) != 1 || ss[0].H.Seq != b.isn || f2.c.Primary() != 1 {
		t.Fatalf("SYN-ACK %v primary %d", ss, f2.c.Primary())
	}
}

func TestHandshakeAllRefuse(t *testing.T) {
	cli := defaultCli()
	f := newConnOnly(t, testParams(), cli, rc(10, 1, 1), rc(11, 2, 2))
	f.o.drain()
	for i := 0; i < 2; i++ {
		f.c.FromReplica(f.now, i, &Segment{Ack: cli.isn + 1, Flags: pkt.TCPFlagRst | pkt.TCPFlagAck}, f.o)
	}
	ss := f.o.takeClient()
	if len(ss) != 1 {
		t.Fatalf("want one RST to the client, got %v", ss)
	}
	h := ss[0].H
	if !h.Flags.Has(pkt.TCPFlagRst|pkt.TCPFlagAck) || h.Flags.Has(pkt.TCPFlagSyn) || h.Seq != 0 || h.Ack != cli.isn+1 {
		t.Errorf("client RST %+v", h)
	}
	if f.c.State() != StateClosed || f.c.CloseReason() != ReasonNoReplica {
		t.Errorf("state %v reason %v", f.c.State(), f.c.CloseReason())
	}
}

func TestHandshakeSynAckWaitTimeout(t *testing.T) {
	cli := defaultCli()
	p := testParams()
	a, b, c3 := rc(10, 0xFFFFFFF0, 1), rc(11, 0x100, 2), rc(12, 0x7FFFFFFF, 3)
	f := newConnOnly(t, p, cli, a, b, c3)
	f.o.drain()
	f.adv(10 * time.Millisecond)
	f.c.FromReplica(f.now, 1, b.synAck(cli.isn, cli.ts), f.o)
	f.c.FromReplica(f.now, 2, c3.synAck(cli.isn, cli.ts), f.o)
	want := f.now.Add(p.SynAckWait)
	if d := f.c.NextDeadline(); !d.Equal(want) {
		t.Fatalf("NextDeadline %v want %v", d, want)
	}
	f.now = want.Add(-time.Nanosecond)
	f.tick()
	if len(f.o.takeClient()) != 0 || f.c.State() != StateSynRcvd {
		t.Fatalf("completed before SynAckWait")
	}
	f.now = want
	f.tick()
	ss := f.o.takeClient()
	if len(ss) != 1 || ss[0].H.Seq != b.isn {
		t.Fatalf("SYN-ACK after timeout %v, want seq %#x", ss, b.isn)
	}
	if f.c.Primary() != 1 || f.c.MemberLive(0) || !f.c.MemberLive(1) || !f.c.MemberLive(2) {
		t.Errorf("primary %d live %v %v %v", f.c.Primary(), f.c.MemberLive(0), f.c.MemberLive(1), f.c.MemberLive(2))
	}
	// A SYN-ACK that arrives now from the timed-out member is answered by an RST.
	f.o.drain()
	f.c.FromReplica(f.now, 0, a.synAck(cli.isn, cli.ts), f.o)
	rs := f.o.takeRep(0)
	if len(rs) != 1 || !rs[0].H.Flags.Has(pkt.TCPFlagRst) {
		t.Errorf("late SYN-ACK answered with %v, want RST", rs)
	}
	if len(f.o.takeClient()) != 0 {
		t.Errorf("late SYN-ACK reached the client")
	}
}

// A client RST while some replicas already answered the SYN (the handshake
// still waits for another one) must reach them: their kernels hold an
// embryonic connection the client gave up on.
func TestHandshakeClientRSTResetsSynAckedReplicas(t *testing.T) {
	cli := defaultCli()
	a, b := rc(10, 0xFFFFFFF0, 1), rc(11, 0x100, 2)
	f := newConnOnly(t, testParams(), cli, a, b)
	f.o.drain()
	f.c.FromReplica(f.now, 0, a.synAck(cli.isn, cli.ts), f.o)
	f.c.FromClient(f.now, &Segment{Seq: cli.isn + 1, Flags: pkt.TCPFlagRst}, f.o)
	if f.c.State() != StateClosed || f.c.CloseReason() != ReasonClientRST {
		t.Fatalf("state %v reason %v", f.c.State(), f.c.CloseReason())
	}
	rs := withFlag(f.o.takeRep(0), pkt.TCPFlagRst)
	if len(rs) != 1 || rs[0].H.Seq != cli.isn+1 {
		t.Errorf("member 0 answered the SYN but got %v on client RST, want one RST seq %#x", rs, cli.isn+1)
	}
}

// TestHandshakeResetsStaleIncarnation: a replica still holds an old
// connection on the same four-tuple (the box restarted under it) and
// answers the SYN with a challenge ACK. The box resets the old incarnation
// at the sequence the ACK acknowledges and sends the SYN again; the
// replica's SYN-ACK then makes it a member as usual. The resets are
// bounded, and an ACK that acknowledges the SYN itself is no stale one.
func TestHandshakeResetsStaleIncarnation(t *testing.T) {
	cli := defaultCli()
	f := newConnOnly(t, testParams(), cli, rc(10, 0x1000, 100), rc(11, 0x2000, 200))
	f.o.drain()
	stale := &Segment{Seq: 0x7777, Ack: 0x5555_0001, Flags: pkt.TCPFlagAck, Window: 512}
	f.fromRep(1, stale)
	got := f.o.takeRep(1)
	if len(got) != 2 || got[0].H.Flags != pkt.TCPFlagRst || got[0].H.Seq != stale.Ack ||
		got[1].H.Flags != pkt.TCPFlagSyn || got[1].H.Seq != cli.isn {
		t.Fatalf("after a challenge ACK: want RST at %#x then the SYN again, got %v", stale.Ack, got)
	}
	if len(f.o.takeRep(0)) != 0 {
		t.Fatal("the other replica got something")
	}
	f.fromRep(1, &Segment{Seq: 0x7777, Ack: cli.isn + 1, Flags: pkt.TCPFlagAck, Window: 512})
	if got := f.o.takeRep(1); len(got) != 0 {
		t.Fatalf("an ACK of the SYN itself was answered: %v", got)
	}
	for k := 0; k < 10; k++ {
		f.fromRep(1, stale)
	}
	if n := len(withFlag(f.o.takeRep(1), pkt.TCPFlagRst)); n != maxStaleResets-1 {
		t.Fatalf("%d more resets after 10 challenge ACKs, want %d", n, maxStaleResets-1)
	}
	for i, r := range f.reps {
		f.c.FromReplica(f.now, i, r.synAck(cli.isn, cli.ts), f.o)
	}
	if f.c.State() != StateEstablished || f.c.Members() != 2 {
		t.Fatalf("state %v with %d members after both SYN-ACKs", f.c.State(), f.c.Members())
	}
}
