package failover

import (
	"time"

	"github.com/ftbridge/ftbridge/dataplane/pkt"
	"github.com/ftbridge/ftbridge/dataplane/seq"
)

// afterChange runs the connection-wide rules after any member changed:
// output release, FIN agreement, ACK/window gating, progress tracking.
func (c *Conn) afterChange(now time.Time, out Output) {
	if c.state != StateEstablished {
		return
	}
	c.checkFins(now, out)
	if c.state != StateEstablished {
		return
	}
	c.release(now, out)
	c.trim()
	c.reopenWindows(out)
	c.trackProgress(now)
	c.checkDone(now)
}

// reopenWindows tells members that were shown a window closed by the hold
// limit that there is room again, without waiting for their probes.
func (c *Conn) reopenWindows(out Output) {
	for i := range c.members {
		m := &c.members[i]
		if m.state == memberLive && m.zeroWin && c.capWindow(c.cAck, 1) > 0 {
			c.ackReplica(i, out)
		}
	}
}

// releaseTarget returns how far output may be released under the policy.
func (c *Conn) releaseTarget() seq.Value {
	if c.primary < 0 {
		return c.rel
	}
	t := c.members[c.primary].contig
	if !c.p.Immediate {
		for i := range c.members {
			m := &c.members[i]
			if m.state == memberLive && m.contig.LessThan(t) {
				t = m.contig
			}
		}
	}
	if t.GreaterThan(c.cEdge) {
		// Never past the client's receive window.
		t = seq.Max(c.cEdge, c.rel)
	}
	return t
}

// release sends the client newly releasable output, the FIN once the
// members agree on it, and otherwise any ACK or window progress.
func (c *Conn) release(now time.Time, out Output) {
	if c.state != StateEstablished {
		return
	}
	t := c.releaseTarget()
	if t.GreaterThan(c.rel) && t.LessThanEq(c.out.end()) {
		from := c.rel
		c.rel = t
		c.BytesOut += uint64(t.Sub(from))
		c.sendData(from, t, out)
		if c.rtoAt.IsZero() && !c.vSACK {
			c.armRTO()
		}
	}
	if !c.finSent && c.finAgreed() && c.rel == c.members[c.primary].finSeq {
		c.finSent = true
		c.sendFin(out)
		return
	}
	c.sendClientAck(false, out)
}

// finAgreed reports whether every live member has closed at the same offset.
func (c *Conn) finAgreed() bool {
	if c.primary < 0 || !c.members[c.primary].fin {
		return false
	}
	f := c.members[c.primary].finSeq
	for i := range c.members {
		m := &c.members[i]
		if m.state == memberLive && (!m.fin || m.finSeq != f) {
			return false
		}
	}
	return true
}

// checkFins applies invariant 5: a member that closes where another member
// has produced more output is a crashed member, not a close.
func (c *Conn) checkFins(now time.Time, out Output) {
	maxContig := c.maxContig()
	for i := range c.members {
		m := &c.members[i]
		if m.state == memberLive && m.fin && maxContig.GreaterThan(m.finSeq) {
			c.dropMember(now, i, ReasonLoneFIN, true, out)
			if c.state != StateEstablished {
				return
			}
		}
	}
	if c.finAgreed() {
		c.finDeadline = time.Time{}
	}
}

// maxContig returns the furthest output any live member has produced.
func (c *Conn) maxContig() seq.Value {
	t := c.rel
	for i := range c.members {
		m := &c.members[i]
		if m.state == memberLive && m.contig.GreaterThan(t) {
			t = m.contig
		}
	}
	return t
}

// aggAck returns the lowest ACK of the live members (invariant 1).
func (c *Conn) aggAck() seq.Value {
	a, ok := seq.Value(0), false
	for i := range c.members {
		m := &c.members[i]
		if m.state == memberLive && (!ok || m.ack.LessThan(a)) {
			a, ok = m.ack, true
		}
	}
	if !ok {
		return c.ackSent
	}
	return a
}

// aggEdge returns the lowest right window edge of the live members.
func (c *Conn) aggEdge() seq.Value {
	e, ok := seq.Value(0), false
	for i := range c.members {
		m := &c.members[i]
		if m.state == memberLive && (!ok || m.edge.LessThan(e)) {
			e, ok = m.edge, true
		}
	}
	if !ok {
		return c.edgeSent
	}
	return e
}

// clientAckWindow returns the ACK and window field the client should see
// now, and the right edge that window stands for.
func (c *Conn) clientAckWindow() (a seq.Value, win uint32, edge seq.Value) {
	a = c.aggAck()
	e := c.aggEdge()
	if a.LessThan(c.ackSent) {
		a = c.ackSent // never move the client's view of our ACK backwards
	}
	if e.GreaterThan(a) {
		win = e.Sub(a)
	}
	if c.vWSOK {
		win >>= c.vWS
	}
	win = min(win, 0xFFFF)
	if c.vWSOK {
		return a, win, a.Add(win << c.vWS)
	}
	return a, win, a.Add(win)
}

// clientHeader fills the fields every segment toward the client shares.
func (c *Conn) clientHeader(h *Header, sq seq.Value) {
	a, win, edge := c.clientAckWindow()
	*h = Header{
		Seq:    uint32(sq),
		Ack:    uint32(a),
		Flags:  pkt.TCPFlagAck,
		Window: uint16(win),
		WScale: -1,
	}
	c.ackSent = a
	c.edgeSent = edge
	if c.vTS {
		h.HasTS = true
		h.TSVal = c.tsSent
		c.tsClient = c.tsSent
		h.TSEcr = c.tsEcrForClient()
	}
	if c.vSACK {
		h.NumSACK = c.sackForClient(&h.SACK, a)
	}
}

// tsEcrForClient echoes the client's clock as the slowest member last did.
func (c *Conn) tsEcrForClient() uint32 {
	a := c.aggAck()
	for i := range c.members {
		m := &c.members[i]
		if m.state == memberLive && m.ack == a {
			return m.tsEcr
		}
	}
	return c.cTSVal
}

// sackForClient reports what every live member holds above the cumulative
// ACK: the intersection of their SACK information, so the client never
// skips retransmitting a byte that some member misses.
func (c *Conn) sackForClient(dst *[4]pkt.SACKBlock, ack seq.Value) int {
	maxBlocks := 4
	if c.vTS {
		maxBlocks = 3 // 40 option bytes: 10 for TS, 2+8n for SACK
	}
	// Start from the blocks of the member that holds the cumulative ACK.
	var base *member
	for i := range c.members {
		m := &c.members[i]
		if m.state == memberLive && m.ack == ack {
			base = m
			break
		}
	}
	if base == nil {
		return 0
	}
	n := 0
	for k := 0; k < int(base.nsack) && n < maxBlocks; k++ {
		l, r := seq.Value(base.sack[k].Left), seq.Value(base.sack[k].Right)
		if !l.GreaterThan(ack) || !l.LessThan(r) {
			continue
		}
		for i := range c.members {
			m := &c.members[i]
			if m == base || m.state != memberLive || !l.LessThan(r) {
				continue
			}
			l, r = coverIntersect(m, l, r)
		}
		if l.LessThan(r) {
			dst[n] = pkt.SACKBlock{Left: uint32(l), Right: uint32(r)}
			n++
		}
	}
	return n
}

// coverIntersect narrows [l, r) to the longest prefix member m holds
// (cumulatively or by SACK) starting at l, or to an empty range.
func coverIntersect(m *member, l, r seq.Value) (seq.Value, seq.Value) {
	if r.LessThanEq(m.ack) {
		return l, r
	}
	if l.LessThan(m.ack) {
		return l, m.ack
	}
	for k := 0; k < int(m.nsack); k++ {
		bl, br := seq.Value(m.sack[k].Left), seq.Value(m.sack[k].Right)
		if bl.LessThanEq(l) && l.LessThan(br) {
			return l, seq.Min(r, br)
		}
	}
	return l, l
}

// sendData sends held output [from, to) to the client.
func (c *Conn) sendData(from, to seq.Value, out Output) {
	if !from.LessThan(to) || from.LessThan(c.out.base) || to.GreaterThan(c.out.end()) {
		return
	}
	var h Header
	c.clientHeader(&h, from)
	h.Flags |= pkt.TCPFlagPsh
	h.GSOSize = uint16(c.SendMSS())
	c.toClient(&h, c.out.slice(from, to), out)
}

// sendFin sends the client the FIN the members agreed on.
func (c *Conn) sendFin(out Output) {
	var h Header
	c.clientHeader(&h, c.rel)
	h.Flags |= pkt.TCPFlagFin
	c.toClient(&h, nil, out)
}

// sendClientAck sends a pure ACK if the ACK or the window moved, or always
// when force is set (answering a retransmission, relaying a duplicate ACK).
// An unchanged pure ACK is never sent unforced: the client would count it
// as a duplicate and retransmit for nothing.
func (c *Conn) sendClientAck(force bool, out Output) {
	if !c.synAcked || c.state != StateEstablished && c.state != StateTimeWait {
		return
	}
	if a, _, edge := c.clientAckWindow(); !force && a == c.ackSent && !edge.GreaterThan(c.edgeSent) {
		return
	}
	var h Header
	sq := c.rel
	if c.finSent {
		sq = sq.Add(1)
	}
	c.clientHeader(&h, sq)
	c.toClient(&h, nil, out)
}

// ackReplica sends member i an ACK for everything the client has
// acknowledged (clamped to what the member sent), with the client's window.
func (c *Conn) ackReplica(i int, out Output) {
	m := &c.members[i]
	if m.state != memberLive || !c.HandshakeDone() {
		// Before the client's handshake ACK the member is in SYN_RECV:
		// an ACK of its ISN (all the client has acknowledged) is not
		// acceptable there and draws an RST, and acknowledging its SYN
		// on the client's behalf would turn a SYN flood into
		// established connections on the servers. The client's ACK
		// completes its handshake when it comes.
		return
	}
	a := c.cAck
	if c.finSent && c.cAck.GreaterThan(c.rel) && !(m.fin && m.finSeq == c.rel) {
		a = c.rel // the client acknowledged a FIN this member did not send
	}
	h := c.memberHeader(m, a)
	out.ToReplica(c, i, h, nil)
}

// memberHeader builds a box-made ACK toward member m acknowledging view
// offset a (translated and clamped), at the sequence the member expects,
// with the client's window and clock.
func (c *Conn) memberHeader(m *member, a seq.Value) Header {
	h := Header{
		Seq:    uint32(m.ack),
		Ack:    uint32(c.ackForMember(m, a)),
		Flags:  pkt.TCPFlagAck,
		WScale: -1,
	}
	if m.sackOK && c.cSACKOK {
		// Tell it what the box holds beyond the ACK, so a gap is
		// retransmitted alone.
		maxBlocks := 4
		if m.hasTS {
			maxBlocks = 3
		}
		l := a.Add(m.delta)
		r := m.contig.Add(m.delta)
		if m.contig.GreaterThan(a) && l.LessThan(r) && r.LessThanEq(m.sndNxt) {
			h.SACK[0] = pkt.SACKBlock{Left: uint32(l), Right: uint32(r)}
			h.NumSACK = 1
		}
		h.NumSACK += aheadSACK(m, h.SACK[h.NumSACK:maxBlocks])
	}
	win := uint32(0)
	if c.cEdge.GreaterThan(a) {
		win = c.cEdge.Sub(a)
	}
	h.Window = c.scaleForMember(m, c.capWindow(a, win)+c.clampGap(m, a))
	m.zeroWin = h.Window == 0 && c.capWindow(a, win) < win
	if m.hasTS {
		h.HasTS = true
		h.TSVal = c.cTSVal
		h.TSEcr = m.tsRecent
	}
	return h
}

// resetMember resets member i's side of the connection at exactly the
// sequence it expects (an in-window RST draws a challenge ACK, RFC 5961).
func (c *Conn) resetMember(i int, out Output) {
	m := &c.members[i]
	h := Header{Seq: uint32(m.ack), Flags: pkt.TCPFlagRst, WScale: -1}
	if m.state == memberSynAcked {
		h.Seq = uint32(c.cISN.Add(1))
	}
	out.ToReplica(c, i, h, nil)
}

// resetReplicaAt answers a segment of a removed member with an RST.
func (c *Conn) resetReplicaAt(i int, s *Segment, out Output) {
	h := Header{Seq: s.Ack, Flags: pkt.TCPFlagRst, WScale: -1}
	if !s.Flags.Has(pkt.TCPFlagAck) {
		h.Seq = 0
		h.Ack = s.Seq + uint32(len(s.Payload))
		h.Flags |= pkt.TCPFlagAck
	}
	out.ToReplica(c, i, h, nil)
}

// resetClient sends the client an RST.
func (c *Conn) resetClient(sq, ack uint32, withAck bool, out Output) {
	h := Header{Seq: sq, Ack: ack, Flags: pkt.TCPFlagRst, WScale: -1}
	if withAck {
		h.Flags |= pkt.TCPFlagAck
	}
	c.toClient(&h, nil, out)
}

// resetClientNow resets the client's connection: no replica can go on.
func (c *Conn) resetClientNow(out Output) {
	sq := c.rel
	if c.finSent {
		sq = sq.Add(1)
	}
	c.resetClient(uint32(sq), 0, false, out)
}

// close ends the connection.
func (c *Conn) close(now time.Time, reason Reason, out Output) {
	if c.state == StateClosed {
		return
	}
	c.state = StateClosed
	c.closeReason = reason
	c.p.Hold.Used -= int64(c.out.len())
	c.out = stream{}
	c.freeLog()
	out.Event(c, Event{Kind: EventClosed, Member: -1, From: -1, Reason: reason, Time: now})
}

// checkDone moves a connection whose both directions are closed and
// acknowledged to TIME_WAIT.
func (c *Conn) checkDone(now time.Time) {
	if c.state != StateEstablished || !c.finSent || !c.cFin {
		return
	}
	if c.cAck.GreaterThan(c.rel) && c.aggAck().GreaterThan(c.cFinSeq) {
		c.state = StateTimeWait
		c.twDeadline = now.Add(c.p.TimeWait)
		c.p.Hold.Used -= int64(c.out.len())
		c.out.trim(c.out.end())
		c.out.release()
	}
}

// toClient sends a segment to the client, and closes a failover's stall
// measurement with the first segment after it.
func (c *Conn) toClient(h *Header, payload []byte, out Output) {
	out.ToClient(c, *h, payload)
	now := c.now
	if !c.failoverFrom.IsZero() {
		out.Event(c, Event{Kind: EventFailoverDone, Member: int(c.failoverMem), From: -1, Stall: now.Sub(c.failoverFrom), Time: now})
		c.failoverFrom = time.Time{}
	}
	c.lastToClient = now
}
