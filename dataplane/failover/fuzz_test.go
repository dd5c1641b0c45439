package failover

import (
	"fmt"
	"testing"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/pkt"
)

// byteSrc hands out fuzz bytes; zeros once exhausted.
type byteSrc struct {
	b []byte
	i int
}

func (s *byteSrc) more() bool { return s.i < len(s.b) }

func (s *byteSrc) u8() byte {
	if s.i >= len(s.b) {
		return 0
	}
	s.i++
	return s.b[s.i-1]
}

func (s *byteSrc) u16() uint16 { return uint16(s.u8())<<8 | uint16(s.u8()) }
func (s *byteSrc) u32() uint32 { return uint32(s.u16())<<16 | uint32(s.u16()) }

// fuzzConn is the fuzzer's model of what it can check from outside.
type fuzzConn struct {
	*fix
	matched bool
	prod    [3]uint32 // view offset each replica has produced up to (model)
	maxAck  [3]int32  // highest ACK (relative to client ISN+1) each member ever sent
	recv    uint32    // highest view offset end the client has been sent
	tsHave  bool
	tsLast  uint32
	seen    map[uint32]byte // matched policy: byte the client got at each view offset
	errs    []string
}

func (z *fuzzConn) errf(format string, args ...any) {
	if len(z.errs) < 10 {
		z.errs = append(z.errs, fmt.Sprintf(format, args...))
	}
}

// onClient checks every segment to the client as it is sent.
func (z *fuzzConn) onClient(h *Header, p []byte) {
	c := z.c
	if h.HasTS {
		if z.tsHave && int32(h.TSVal-z.tsLast) < 0 {
			z.errf("TSval to client went backwards: %d after %d", h.TSVal, z.tsLast)
		}
		z.tsHave, z.tsLast = true, h.TSVal
		z.lastT = h.TSVal
	}
	if c == nil || h.Flags.Has(pkt.TCPFlagRst) || !h.Flags.Has(pkt.TCPFlagAck) {
		return
	}
	rel := int32(h.Ack - (z.cli.isn + 1))
	for m := 0; m < c.Members(); m++ {
		if c.MemberLive(m) && rel > z.maxAck[m] {
			z.errf("client ACK %+d beyond member %d's highest ACK %+d (invariant 1)", rel, m, z.maxAck[m])
		}
	}
	if len(p) > 0 {
		off := h.Seq - (z.vISN + 1)
		if off < 1<<20 {
			if end := off + uint32(len(p)); end > z.recv {
				z.recv = end
			}
			if z.matched {
				for k, b := range p {
					o := off + uint32(k)
					if old, ok := z.seen[o]; ok && old != b {
						z.errf("client got byte %#x at view offset %d where it had %#x", b, o, old)
						break
					}
					z.seen[o] = b
				}
			}
		}
	}
}

func (z *fuzzConn) checkAfterStep(step int) {
	used := z.p.Hold.Used
	if used < 0 {
		z.errf("step %d: HoldBudget.Used %d < 0", step, used)
	}
	if int64(z.c.HeldBytes()) != used {
		z.errf("step %d: HoldBudget.Used %d != HeldBytes %d", step, used, z.c.HeldBytes())
	}
	if z.c.State() != StateClosed && z.c.Primary() >= 0 && !z.c.MemberLive(z.c.Primary()) {
		z.errf("step %d: primary %d not live", step, z.c.Primary())
	}
}

func (z *fuzzConn) fromRep(i int, s *Segment) {
	if s.Flags.Has(pkt.TCPFlagAck) {
		if rel := int32(s.Ack - (z.cli.isn + 1)); rel > z.maxAck[i] {
			z.maxAck[i] = rel
		}
	}
	z.c.FromReplica(z.now, i, s, z.o)
}

func runFuzzConn(t testing.TB, data []byte) {
	src := &byteSrc{b: data}
	cfg := src.u8()
	p := testParams()
	p.Immediate = cfg&1 != 0
	p.MaxHold = 64 << (cfg >> 1 & 7)
	p.Hold = &HoldBudget{Max: 1 << 20}
	cli := defaultCli()
	cli.isn = 0xFFFFFF00
	cli.ts = 0xFFFFFFF0
	z := &fuzzConn{matched: !p.Immediate, seen: map[uint32]byte{}}
	f := newFix(t, p, cli, rc(10, 0xFFFFFFF0, 1_000_000), rc(11, 0x00000100, 77), rc(12, 0x7FFFFFFF, 0xFFFFFF00))
	z.fix = f
	z.tsHave, z.tsLast = true, f.lastT
	f.o.onClient = z.onClient

	for step := 0; src.more() && f.c.State() != StateClosed && step < 400; step++ {
		op := src.u8() % 10
		switch op {
		case 0, 1: // client segment (data or pure ACK)
			n := 0
			if op == 0 {
				n = int(src.u8() % 48)
			}
			sq := f.cOff
			if r := src.u8(); r%4 == 0 {
				sq -= uint32(r % 32) // a retransmission (or overlap)
			}
			ack := z.recv
			if r := src.u8(); r%3 != 0 && ack > 0 {
				ack -= uint32(r) % (ack + 1)
			}
			fl := pkt.TCPFlagAck | pkt.TCPFlagPsh
			x := src.u8()
			if x%29 == 0 {
				fl |= pkt.TCPFlagFin
			}
			if x%7 == 0 {
				fl |= pkt.TCPFlagEce | pkt.TCPFlagCwr
			}
			s := f.cseg(sq, ack, pattern(int(sq), n, 0x5A), fl)
			s.Window = src.u16()
			if x%5 == 0 && z.recv > 0 {
				l := uint32(src.u8()) % z.recv
				s.SACK[0] = pkt.SACKBlock{Left: f.vISN + 1 + l, Right: f.vISN + 1 + l + uint32(src.u8()%64) + 1}
				s.NumSACK = 1
			}
			f.fromClient(s)
		case 2, 3, 4: // replica output
			i := int(op - 2)
			off := z.prod[i]
			r := src.u8()
			switch {
			case r%8 == 0:
				off -= min(off, uint32(src.u8())) // retransmission
			case r%31 == 1:
				off += uint32(src.u8() % 16) // a gap (lost segment)
			}
			n := int(src.u8() % 64)
			payload := []byte(pattern(int(off), n, 0))
			if r%37 == 2 && n > 0 {
				payload[int(src.u8())%n] ^= 0xFF // divergence
			}
			ack := f.cOff
			if a := src.u8(); a%2 == 0 && ack > 0 {
				ack -= uint32(a) % (ack + 1)
			}
			fl := pkt.TCPFlagAck
			if r%23 == 3 {
				fl |= pkt.TCPFlagFin
			}
			if r%61 == 4 {
				fl = pkt.TCPFlagRst | pkt.TCPFlagAck
			}
			f.rTS[i] += uint32(src.u8() % 8)
			s := f.rseg(i, off, ack, string(payload), fl, src.u16())
			if e := off + uint32(n); e > z.prod[i] && off <= z.prod[i] && fl&pkt.TCPFlagRst == 0 {
				z.prod[i] = e
			}
			z.fromRep(i, s)
		case 5: // replica pure ACK / window update
			i := int(src.u8() % 3)
			ack := f.cOff + 1
			if a := src.u8(); ack > 0 {
				ack -= uint32(a) % (ack + 1)
			}
			z.fromRep(i, f.rseg(i, z.prod[i], ack, "", pkt.TCPFlagAck, src.u16()))
		case 6: // time passes
			d := time.Duration(src.u8()) * 5 * time.Millisecond
			if nd := f.c.NextDeadline(); d == 0 && !nd.IsZero() && nd.After(f.now) {
				f.now = nd
			} else {
				f.adv(d)
			}
			f.tick()
		case 7: // the engine removes a replica
			i := int(src.u8() % 3)
			f.c.RemoveReplica(f.now, f.reps[i].id, ReasonReplicaDown, src.u8()&1 != 0, f.o)
		case 8: // a wild replica segment
			i := int(src.u8() % 3)
			s := &Segment{Seq: src.u32(), Ack: src.u32(), Flags: pkt.TCPFlags(src.u8()), Window: src.u16(),
				HasTS: true, TSVal: src.u32(), TSEcr: src.u32(), Payload: []byte(pattern(0, int(src.u8()%80), 0x33))}
			if s.Flags.Has(pkt.TCPFlagSyn) && src.u8()%2 == 0 {
				s.Seq, s.Ack = f.reps[i].isn, f.cli.isn+1
			}
			s.NumSACK = int(src.u8() % 5)
			for k := 0; k < s.NumSACK; k++ {
				s.SACK[k] = pkt.SACKBlock{Left: src.u32(), Right: src.u32()}
			}
			z.fromRep(i, s)
		case 9: // a wild client segment (sequence kept near the stream)
			s := &Segment{Seq: f.cli.isn + 1 + f.cOff + uint32(int32(int16(src.u16()))), Ack: src.u32(),
				Flags: pkt.TCPFlags(src.u8()), Window: src.u16(), HasTS: true, TSVal: src.u32(), TSEcr: src.u32(),
				Payload: []byte(pattern(0, int(src.u8()%80), 0x44))}
			if s.Flags.Has(pkt.TCPFlagSyn) && src.u8()%2 == 0 {
				s.Seq = f.cli.isn
			}
			s.NumSACK = int(src.u8() % 5)
			for k := 0; k < s.NumSACK; k++ {
				s.SACK[k] = pkt.SACKBlock{Left: src.u32(), Right: src.u32()}
			}
			f.c.FromClient(f.now, s, f.o)
		}
		z.checkAfterStep(step)
		if testing.Verbose() {
			t.Logf("step %d op %d: client %d segs, held %d, state %v", step, op, len(f.o.client), f.c.HeldBytes(), f.c.State())
		}
		if len(z.errs) > 0 {
			t.Fatalf("after step %d (op %d): %v", step, op, z.errs)
		}
	}
	// Closing the connection returns every held byte to the budget.
	f.c.FromClient(f.now, &Segment{Seq: f.cli.isn + 1 + f.cOff, Flags: pkt.TCPFlagRst}, f.o)
	if f.c.State() == StateClosed && p.Hold.Used != 0 {
		t.Fatalf("HoldBudget.Used %d after close", p.Hold.Used)
	}
	if len(z.errs) > 0 {
		t.Fatalf("%v", z.errs)
	}
}

// seedEnc builds fuzz inputs op by op, mirroring runFuzzConn's decoding.
type seedEnc []byte

// client: data (n > 0) or pure ACK; ackBack bytes less than everything received; fin.
func (e seedEnc) client(n byte, ackBack byte, fin bool) seedEnc {
	op, x := byte(1), byte(1)
	if n > 0 {
		op = 0
	}
	if fin {
		x = 58
	}
	a := byte(0)
	if ackBack > 0 {
		a = ackBack
		if a%3 == 0 {
			a++ // keep r%3 != 0 so the ACK backs off
		}
	}
	e = append(e, op)
	if op == 0 {
		e = append(e, n)
	}
	return append(e, 1, a, x, 0xFF, 0xFF)
}

// rep: replica i sends n bytes at its model offset; kind: 5 plain, 3 FIN, 4 RST, 2 diverge.
func (e seedEnc) rep(i, n, kind byte) seedEnc {
	e = append(e, 2+i, kind, n)
	if kind == 2 && n > 0 {
		e = append(e, n/2)
	}
	return append(e, 1, 1, 0xFF, 0xFF)
}

func (e seedEnc) ack(i byte) seedEnc         { return append(e, 5, i, 0, 0xFF, 0xFF) }
func (e seedEnc) tick(d byte) seedEnc        { return append(e, 6, d) }
func (e seedEnc) remove(i, rst byte) seedEnc { return append(e, 7, i, rst) }

func FuzzConn(f *testing.F) {
	// Matched, plain exchange: client data, replicas answer and ack, client acks.
	f.Add([]byte(seedEnc{0}.client(20, 0, false).ack(0).ack(1).ack(2).
		rep(0, 30, 5).rep(1, 30, 5).rep(2, 30, 5).client(0, 0, false).
		rep(1, 40, 5).rep(0, 40, 5).rep(2, 20, 5).client(0, 10, false).rep(2, 20, 5)))
	// Immediate policy, a failover in the middle, ticks.
	f.Add([]byte(seedEnc{1}.rep(0, 40, 5).rep(1, 20, 5).client(10, 0, false).remove(0, 0).
		rep(1, 40, 5).tick(60).rep(2, 60, 5).ack(1).ack(2).remove(1, 1).tick(0).client(0, 0, false)))
	// Lone FIN from the primary, divergence, small MaxHold.
	f.Add([]byte(seedEnc{0}.rep(0, 60, 5).rep(1, 60, 5).rep(2, 63, 5).rep(0, 0, 3).
		rep(1, 10, 2).client(0, 0, false).tick(0).tick(0)))
	// Stall and hold overflow: one backup silent while the primary talks.
	f.Add([]byte(seedEnc{4}.client(30, 0, false).ack(0).ack(1).rep(0, 63, 5).rep(1, 63, 5).
		rep(0, 63, 5).rep(0, 63, 5).tick(70).tick(0).tick(0).rep(2, 63, 5)))
	// Client FIN, replica FINs, time wait.
	f.Add([]byte(seedEnc{2}.client(10, 0, true).ack(0).ack(1).ack(2).
		rep(0, 10, 5).rep(1, 10, 5).rep(2, 10, 5).rep(0, 0, 3).rep(1, 0, 3).rep(2, 0, 3).
		client(0, 0, false).tick(0).tick(0)))
	// RST from the primary, then wild segments.
	wild := seedEnc{3}.rep(0, 10, 5).rep(1, 10, 5).rep(0, 0, 4)
	wild = append(wild, 8, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0x12, 0, 10, 1, 2, 3, 4, 5, 6, 7, 8, 20, 1, 0, 3, 1, 2, 3, 4, 5, 6, 7, 8)
	wild = append(wild, 9, 0, 5, 0x11, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 20, 0)
	f.Add([]byte(wild))
	f.Fuzz(func(t *testing.T, data []byte) {
		runFuzzConn(t, data)
	})
}
