package failover

import (
	"time"

	"github.com/ftbridge/ftbridge/dataplane/pkt"
	"github.com/ftbridge/ftbridge/dataplane/seq"
)

// FromClient processes a segment the client sent on this connection.
func (c *Conn) FromClient(now time.Time, s *Segment, out Output) {
	c.now = now
	if c.state == StateClosed {
		return
	}
	c.lastActive = now
	if s.Flags.Has(pkt.TCPFlagRst) {
		c.clientReset(now, s, out)
		return
	}
	if s.Flags.Has(pkt.TCPFlagSyn) {
		c.clientSyn(s, out)
		return
	}
	if c.state == StateSynRcvd {
		return // nothing but SYNs is valid before the box's SYN-ACK
	}
	if s.HasTS && c.vTS && seq.Value(s.TSVal).GreaterThanEq(seq.Value(c.cTSVal)) {
		c.cTSVal = s.TSVal
	}
	prevAck, prevEdge := c.cAck, c.cEdge
	if s.Flags.Has(pkt.TCPFlagAck) {
		c.clientAck(s)
	}
	n := uint32(len(s.Payload))
	fin := s.Flags.Has(pkt.TCPFlagFin)
	if !c.vSACK && s.Flags.Has(pkt.TCPFlagAck) {
		// A duplicate ACK (RFC 5681): no data, no FIN, the same ACK and
		// window; a window update is not one.
		c.renoRecovery(prevAck, seq.Value(s.Ack), n == 0 && !fin && c.cEdge == prevEdge, out)
	}
	end := seq.Value(s.Seq).Add(n)
	c.logInput(seq.Value(s.Seq), s.Payload)
	c.failOrphanedJoins(now, out)
	if fin {
		if !c.cFin {
			c.cFin, c.cFinSeq = true, end
			c.failJoins(now, ReasonClosing, out)
		}
		end = end.Add(1)
	}
	if end.GreaterThan(c.cNxt) {
		c.BytesIn += uint64(end.Sub(c.cNxt))
		c.cNxt = end
	}
	c.forwardToReplicas(s, out)
	for i := range c.members {
		if c.members[i].state == memberJoining {
			c.replay(now, i, out)
			c.maybeCompleteJoin(now, i, out)
		}
	}
	if (n > 0 || fin) && end.LessThanEq(c.aggAck()) {
		// Every replica has it already: the client retransmits because
		// it missed our ACK (or probes a window/keepalive). Answer it.
		c.sendClientAck(true, out)
	}
	c.release(now, out)
	// The client's ACK decides whether a member behind its peers owes
	// output (trackProgress); a silent member gets no segment of its own
	// to re-judge it by.
	c.trackProgress(now)
	c.checkDone(now)
}

// renoRecovery retransmits output the client lost, from the box's copy, as
// NewReno would (RFC 6582), on connections where the client does not SACK.
// The members cannot be left to do it: one that negotiated SACK with the
// box (the view has none because another member refused it) gets the
// client's duplicate ACKs without SACK blocks, and Linux counts duplicate
// ACKs only on connections without SACK, so every segment lost toward the
// client would wait for that member's retransmission timer, backed off
// to seconds under steady loss. prev is the client's cumulative ACK
// before this segment, a the one it carries; dup says the segment is a
// duplicate ACK if its ACK is prev.
func (c *Conn) renoRecovery(prev, a seq.Value, dup bool, out Output) {
	if c.state != StateEstablished || !c.HandshakeDone() {
		return
	}
	if a.GreaterThan(prev) {
		c.rtoBackoff = 0
		c.armRTO()
	}
	switch {
	case a == prev && dup && c.rel.GreaterThan(a):
		// A duplicate ACK with output outstanding.
		if c.dupAcks < 255 {
			c.dupAcks++
		}
		if c.dupAcks == dupThresh {
			c.recovering, c.recoverAt = true, c.rel
			c.resendHead(out)
		}
	case a.GreaterThan(prev):
		c.dupAcks = 0
		if c.recovering {
			if a.LessThan(c.recoverAt) {
				// A partial ACK: the next hole is lost too.
				c.resendHead(out)
			} else {
				c.recovering = false
			}
		}
	}
}

// dupThresh is the number of duplicate ACKs that starts a retransmission.
const dupThresh = 3

// The box's retransmission timer toward a client without SACK: a resend
// the client lost would otherwise wait for a member's timer, backed off
// by then to seconds. It starts at boxRTO and doubles up to
// boxRTO<<maxRTOBackoff while the client's ACK does not move.
const (
	boxRTO        = 250 * time.Millisecond
	maxRTOBackoff = 3
)

// armRTO starts the box's retransmission timer if output is outstanding
// toward a client without SACK, and stops it if none is.
func (c *Conn) armRTO() {
	switch {
	case c.vSACK || !c.rel.GreaterThan(c.cAck):
		c.rtoAt = time.Time{}
	default:
		c.rtoAt = c.now.Add(boxRTO << c.rtoBackoff)
	}
}

// rtoTick resends the head of the outstanding output when the box's
// retransmission timer expires.
func (c *Conn) rtoTick(now time.Time, out Output) {
	if c.rtoAt.IsZero() || now.Before(c.rtoAt) {
		return
	}
	if c.vSACK || !c.rel.GreaterThan(c.cAck) {
		c.rtoAt = time.Time{}
		return
	}
	c.resendHead(out)
	if c.rtoBackoff < maxRTOBackoff {
		c.rtoBackoff++
	}
	c.rtoAt = now.Add(boxRTO << c.rtoBackoff)
}

// resendHead sends the client one segment from its cumulative ACK again.
func (c *Conn) resendHead(out Output) {
	from := seq.Max(c.cAck, c.out.base)
	to := seq.Min(from.Add(uint32(c.SendMSS())), c.rel)
	if from.LessThan(to) {
		c.Retransmits++
		c.sendData(from, to, out)
	}
}

// clientAck takes in the client's cumulative ACK and window.
func (c *Conn) clientAck(s *Segment) {
	a := seq.Value(s.Ack)
	limit := c.rel
	if c.finSent {
		limit = limit.Add(1)
	}
	if a.GreaterThan(limit) {
		// It acknowledges output the box never sent: not believable.
		a = limit
	}
	if a.LessThan(c.cAck) {
		return // old
	}
	c.cAck = a
	win := uint32(s.Window)
	if c.vWSOK {
		win <<= c.cWS
	}
	c.cEdge = a.Add(win)
	c.trim()
}

// clientSyn handles a retransmitted SYN.
func (c *Conn) clientSyn(s *Segment, out Output) {
	if seq.Value(s.Seq) != c.cISN {
		return // a new connection on a live key is the engine's business
	}
	if c.state == StateSynRcvd {
		c.forwardSyn(out)
		return
	}
	if c.synAcked && c.cNxt == c.cISN.Add(1) {
		// The client lost our SYN-ACK.
		c.sendSynAck(uint16(min(uint32(c.edgeSent.Sub(c.ackSent)), 0xFFFF)), out)
	}
}

// clientReset passes a client RST to every live member and ends the connection.
func (c *Conn) clientReset(now time.Time, s *Segment, out Output) {
	if c.state == StateEstablished || c.state == StateSynRcvd {
		// RFC 5961 3.2: an RST is believed only at exactly the next
		// sequence expected; one elsewhere in the window draws a
		// challenge ACK (a real peer answers it with a correct RST),
		// one outside it is dropped.
		if c.state == StateEstablished {
			sq := seq.Value(s.Seq)
			if sq != c.cNxt && sq != c.aggAck() {
				if sq.InRange(c.aggAck(), c.aggEdge()) {
					c.sendClientAck(true, out)
				}
				return
			}
		}
		for i := range c.members {
			if st := c.members[i].state; st == memberLive || st == memberSynAcked {
				c.resetMember(i, out)
			}
		}
	}
	c.close(now, ReasonClientRST, out)
}

// forwardToReplicas sends the client's segment to every live member with
// ACK, SACK and TSecr translated into that member's space.
func (c *Conn) forwardToReplicas(s *Segment, out Output) {
	var h Header
	for i := range c.members {
		m := &c.members[i]
		if m.state != memberLive {
			continue
		}
		// c.cAck, not s.Ack, when the latter is beyond: an ACK of output
		// the client never got was capped by clientAck and must not reach
		// a replica.
		a := seq.Value(s.Ack)
		if a.GreaterThan(c.cAck) {
			a = c.cAck
		}
		h = Header{
			Seq:     s.Seq,
			Flags:   s.Flags &^ (pkt.TCPFlagEce | pkt.TCPFlagCwr),
			Window:  c.windowForMember(m, a, s.Window),
			WScale:  -1,
			GSOSize: s.GSOSize,
		}
		if s.Flags.Has(pkt.TCPFlagAck) {
			h.Ack = uint32(c.ackForMember(m, a))
		}
		m.zeroWin = h.Window == 0 && s.Window != 0
		if c.vTS && s.HasTS {
			h.HasTS = true
			h.TSVal = s.TSVal
			if s.TSEcr != 0 {
				h.TSEcr = s.TSEcr + m.tsDelta
			}
		}
		if c.vSACK {
			h.NumSACK = translateSACK(&h.SACK, s.SACK[:s.NumSACK], m)
		}
		out.ToReplica(c, i, h, s.Payload)
	}
}

// windowForMember re-expresses the client's window field in the scale the
// member applies to it, for a segment acknowledging view offset ack, and
// closes it so that the member never sends more than the box can hold: a
// member sending past the hold limit would have its output dropped and
// left to its backed-off retransmission timer.
func (c *Conn) windowForMember(m *member, ack seq.Value, w uint16) uint16 {
	bytes := uint32(w)
	if c.vWSOK {
		bytes <<= c.cWS
	}
	return c.scaleForMember(m, c.capWindow(ack, bytes)+c.clampGap(m, ack))
}

// clampGap is how far the ACK a member gets fell short of the view's
// (clamped to what it sent): its window grows by as much, so that every
// member sees the same right edge and a lagging one can catch up instead
// of being held behind its peers (and taken for stalled).
func (c *Conn) clampGap(m *member, ack seq.Value) uint32 {
	want := ack.Add(m.delta)
	got := c.ackForMember(m, ack)
	if want.GreaterThan(got) {
		return want.Sub(got)
	}
	return 0
}

// capWindow limits a window of n bytes from view offset ack so that its
// right edge stays within what the box can hold.
func (c *Conn) capWindow(ack seq.Value, n uint32) uint32 {
	room := c.holdRoom()
	if room < 0 {
		room = 0
	}
	limit := c.out.end().Add(uint32(room))
	if !limit.GreaterThan(ack) {
		return 0
	}
	return min(n, limit.Sub(ack))
}

// scaleForMember expresses a window of n bytes in the member's scale.
func (c *Conn) scaleForMember(m *member, n uint32) uint16 {
	return uint16(min(n>>m.clientWS, 0xFFFF))
}

// ackForMember translates a view-space ACK into member space, clamped to
// what the member has actually sent: Linux drops a segment that
// acknowledges unsent data, payload and all (invariant 3).
func (c *Conn) ackForMember(m *member, a seq.Value) seq.Value {
	t := a.Add(m.delta)
	if t.GreaterThan(m.sndNxt) {
		t = m.sndNxt
	}
	return t
}

// translateSACK writes the client's SACK blocks in member space, keeping
// only what the member has sent.
func translateSACK(dst *[4]pkt.SACKBlock, src []pkt.SACKBlock, m *member) int {
	n := 0
	for _, b := range src {
		l := seq.Value(b.Left).Add(m.delta)
		r := seq.Value(b.Right).Add(m.delta)
		if r.GreaterThan(m.sndNxt) {
			r = m.sndNxt
		}
		if !l.LessThan(r) || n == len(dst) {
			continue
		}
		dst[n] = pkt.SACKBlock{Left: uint32(l), Right: uint32(r)}
		n++
	}
	return n
}

// trim drops held output that the client acknowledged and every live
// member has produced (the rest is still needed for comparison).
func (c *Conn) trim() {
	to := c.cAck
	for i := range c.members {
		m := &c.members[i]
		if m.state == memberLive && m.contig.LessThan(to) {
			to = m.contig
		}
	}
	to = c.joinTrimLimit(to)
	if to.GreaterThan(c.out.end()) {
		to = c.out.end()
	}
	c.hashTrimmed(to)
	before := c.out.len()
	c.out.trim(to)
	c.p.Hold.Used -= int64(before - c.out.len())
}

// ChallengeACK answers a segment that must not be believed (a SYN on a
// synchronized connection, an RST in the window but not at its edge) with
// an ACK of where the connection stands (RFC 5961).
func (c *Conn) ChallengeACK(now time.Time, out Output) {
	c.now = now
	c.sendClientAck(true, out)
}
