package failover

import (
	"bytes"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/pkt"
	"github.com/ftbridge/ftbridge/dataplane/seq"
)

// FromReplica processes a segment that member i (see MemberIndex) sent on
// this connection.
func (c *Conn) FromReplica(now time.Time, i int, s *Segment, out Output) {
	c.now = now
	if c.state == StateClosed || i < 0 || i >= len(c.members) {
		return
	}
	m := &c.members[i]
	if m.state == memberGone {
		if !s.Flags.Has(pkt.TCPFlagRst) {
			// It still believes in a connection the box gave up on.
			c.resetReplicaAt(i, s, out)
		}
		return
	}
	c.lastActive = now
	if m.state == memberJoining {
		c.joinFromReplica(now, i, s, out)
		return
	}
	if s.Flags.Has(pkt.TCPFlagSyn) {
		if s.Flags.Has(pkt.TCPFlagAck) {
			c.synAckFromReplica(now, i, s, out)
		}
		return
	}
	if s.Flags.Has(pkt.TCPFlagRst) {
		c.replicaReset(now, i, s, out)
		return
	}
	if m.state == memberSynSent && s.Flags.Has(pkt.TCPFlagAck) {
		c.staleAck(i, s, out)
		return
	}
	if m.state != memberLive {
		return
	}
	if m.hasTS && s.HasTS {
		if seq.Value(s.TSVal).GreaterThanEq(seq.Value(m.tsRecent)) {
			m.tsRecent = s.TSVal
		}
		m.tsEcr = s.TSEcr
		if i == c.primary {
			// Forward only, and never so far past what the client last
			// got that it would read as backwards (PAWS compares modulo
			// 2^32): a bogus TSval must not poison the clock.
			ts := s.TSVal - m.tsDelta
			if seq.Value(ts).GreaterThan(seq.Value(c.tsSent)) && ts-c.tsClient < 1<<30 {
				c.tsSent = ts
			}
		}
	}
	dupAck := false
	if s.Flags.Has(pkt.TCPFlagAck) {
		dupAck = c.replicaAck(now, m, s)
	}
	n := uint32(len(s.Payload))
	fin := s.Flags.Has(pkt.TCPFlagFin)
	if n > 0 || fin {
		end := seq.Value(s.Seq).Add(n)
		if fin {
			end = end.Add(1)
		}
		if end.GreaterThan(m.sndNxt) && end.Sub(m.sndNxt) < 1<<30 {
			m.sndNxt = end
		}
		if !c.replicaData(now, i, s, out) {
			// The member left; what it held back may be releasable now.
			c.afterChange(now, out)
			return
		}
	}
	if n == 0 && !fin && seq.Value(s.Seq).Add(1) == m.sndNxt && i == c.primary {
		// A keepalive or zero-window probe (one below snd_una, no data):
		// pass it on so the client's answer reaches every member.
		c.probeClient(out)
	}
	if dupAck && m.ack == c.aggAck() && c.cNxt.GreaterThan(m.ack) {
		// The slowest member misses client data: let the client see the
		// duplicate ACK so it retransmits quickly.
		c.sendClientAck(true, out)
	}
	c.afterChange(now, out)
}

// replicaAck takes in a member's ACK of client data. It reports whether the
// segment is a pure duplicate ACK.
func (c *Conn) replicaAck(now time.Time, m *member, s *Segment) bool {
	a := seq.Value(s.Ack)
	if a.LessThan(m.ack) || a.GreaterThan(c.cNxt) {
		return false // old, or acknowledging what the client never sent
	}
	win := uint32(s.Window)
	if m.wsOK {
		win <<= m.ws
	}
	edge := a.Add(win)
	dup := a == m.ack && edge == m.edge && len(s.Payload) == 0 && !s.Flags.Has(pkt.TCPFlagFin)
	if a.GreaterThan(m.ack) || edge.GreaterThan(m.edge) {
		m.ackBehind = time.Time{}
		m.winBehind = time.Time{}
	}
	m.ack = a
	m.edge = edge
	m.nsack = uint8(copy(m.sack[:], s.SACK[:s.NumSACK]))
	_ = now
	return dup
}

// replicaData takes in a member's output. It returns false if the member
// left the connection because of it.
func (c *Conn) replicaData(now time.Time, i int, s *Segment, out Output) bool {
	m := &c.members[i]
	if !c.acceptOutput(now, i, seq.Value(s.Seq-m.delta), s.Payload, s.Flags.Has(pkt.TCPFlagFin), out) {
		return false
	}
	// Output that arrived ahead of a gap the segment just filled.
	for k := 0; k < len(m.ooo); {
		o := m.ooo[k]
		if o.seq.GreaterThan(m.contig) || m.fin {
			k++
			continue
		}
		m.ooo = append(m.ooo[:k], m.ooo[k+1:]...)
		if !c.acceptOutput(now, i, o.seq, o.data, o.fin, out) {
			return false
		}
		k = 0
	}
	return true
}

// acceptOutput takes in member i's output at view offset v.
func (c *Conn) acceptOutput(now time.Time, i int, v seq.Value, data []byte, fin bool, out Output) bool {
	m := &c.members[i]
	end := v.Add(uint32(len(data)))

	if m.fin {
		// Nothing may follow a FIN but its own retransmission.
		if end.LessThanEq(m.finSeq) {
			c.replicaRetransmit(i, v, end, fin, out)
		}
		return true
	}
	if v.GreaterThan(m.contig) {
		if !v.LessThanEq(c.cAck) {
			// A gap: something it sent was lost before the box. Keep
			// this part (bounded) and say so with SACK, so the member
			// retransmits just the gap at once instead of after its
			// retransmission timer. It is alive and sending: that is
			// progress, not a stall.
			c.keepAhead(m, v, data, fin)
			m.outBehind = time.Time{}
			c.ackReplica(i, out)
			return true
		}
		// The gap is output the client already acknowledged, so the box
		// has acknowledged it to this member too and it will never come
		// again: skip it (its bytes go uncompared).
		m.contig = v
	}
	if end.LessThanEq(m.contig) && !(fin && end == m.contig) {
		c.replicaRetransmit(i, v, end, fin, out)
		return true
	}
	start := m.contig
	data = data[start.Sub(v):]

	// Compare what overlaps the held output: invariant 6.
	if c.out.end().GreaterThan(start) && start.GreaterThanEq(c.out.base) {
		ov := min(int(c.out.end().Sub(start)), len(data))
		held := c.out.slice(start, start.Add(uint32(ov)))
		if k := firstDiff(held, data[:ov]); k >= 0 {
			at := start.Add(uint32(k))
			if i != c.primary {
				if c.p.Tolerant {
					c.taint(now, i, at, start.Add(uint32(ov)), out)
				} else {
					c.diverge(now, i, at, out)
					return false
				}
			} else if at.LessThan(c.rel) {
				// The client already has other bytes at this offset:
				// this member cannot continue the client's stream.
				c.diverge(now, i, at, out)
				return false
			} else {
				// The primary's output is the truth: every backup that
				// produced the other bytes is out for this connection
				// (or, tolerant, no candidate until the client has
				// acknowledged past them).
				for j := range c.members {
					if mj := &c.members[j]; j != i && mj.state == memberLive && mj.contig.GreaterThan(at) {
						if c.p.Tolerant {
							c.taint(now, j, at, mj.contig, out)
						} else {
							c.diverge(now, j, at, out)
						}
					}
				}
				c.out.overwrite(at, data[k:ov])
			}
		}
		start = start.Add(uint32(ov))
		data = data[ov:]
	}
	if len(data) > 0 {
		room := c.holdRoom()
		if room < len(data) && c.joinTrimLimit(c.cAck).LessThan(c.cAck) {
			// A joiner holds output back: it goes, not the client's stream.
			c.failJoins(now, ReasonJoinLagging, out)
			room = c.holdRoom()
		}
		if room < len(data) {
			// Over the hold limit: keep what fits; the member's TCP will
			// send the rest again once the client makes room.
			data = data[:max(room, 0)]
			fin = false
		}
		c.out.append(data)
		c.p.Hold.Used += int64(len(data))
		start = start.Add(uint32(len(data)))
	}
	if start.GreaterThan(m.contig) {
		m.contig = start
		m.outBehind = time.Time{}
	}
	if fin && m.contig == end.Add(0) {
		m.fin = true
		m.finSeq = m.contig
		if c.finDeadline.IsZero() {
			c.finDeadline = now.Add(c.p.FinWait)
		}
		c.ackReplicaIfClientHas(i, out)
	}
	// Output the client already acknowledged (a lagging backup): confirm
	// it so the member's send buffer drains.
	if m.contig.LessThanEq(c.cAck) {
		c.ackReplica(i, out)
	}
	return true
}

// ackReplicaIfClientHas acknowledges a member's FIN when the client has
// already acknowledged the FIN the box sent for it.
func (c *Conn) ackReplicaIfClientHas(i int, out Output) {
	if c.finSent && c.cAck.GreaterThan(c.members[i].finSeq) {
		c.ackReplica(i, out)
	}
}

// replicaRetransmit handles output a member sends again. The primary
// retransmits because the client did not acknowledge it: the box resends
// its copy. A backup retransmits because the box did not acknowledge it:
// acknowledge up to what the client has.
func (c *Conn) replicaRetransmit(i int, v, end seq.Value, fin bool, out Output) {
	if i == c.primary {
		from := seq.Max(v, c.cAck)
		from = seq.Max(from, c.out.base)
		to := seq.Min(end, c.rel)
		switch {
		case from.LessThan(to):
			c.sendData(from, to, out)
		case fin && c.finSent && c.cAck.LessThanEq(c.rel):
			c.sendFin(out)
		case end.LessThanEq(c.cAck):
			c.ackReplica(i, out)
		}
		return
	}
	c.ackReplica(i, out)
}

// replicaReset handles an RST from a member: that member alone is out of
// the connection (a lone RST is a fault, not a close); if it was the last
// one, the client gets the RST.
func (c *Conn) replicaReset(now time.Time, i int, s *Segment, out Output) {
	m := &c.members[i]
	if m.state == memberSynSent {
		// Refused the SYN (no listener there).
		m.state = memberGone
		out.Event(c, Event{Kind: EventMemberRemoved, Member: i, From: -1, Reason: ReasonRST, Time: now})
		if c.state == StateSynRcvd {
			c.maybeCompleteHandshake(now, out)
		}
		return
	}
	if m.state != memberLive {
		return
	}
	// RFC 5961: believe an RST only near the member's send sequence.
	if d := seq.Value(s.Seq).Sub(m.sndNxt); d > 1<<20 && -d > 1<<20 {
		return
	}
	c.dropMember(now, i, ReasonRST, false, out)
	c.afterChange(now, out)
}

// maybeCompleteHandshake finishes the handshake if no member is still
// expected to answer.
func (c *Conn) maybeCompleteHandshake(now time.Time, out Output) {
	for i := range c.members {
		if c.members[i].state == memberSynSent {
			return
		}
	}
	c.completeHandshake(now, out)
}

// diverge takes a member whose output differs out of the connection.
func (c *Conn) diverge(now time.Time, i int, at seq.Value, out Output) {
	c.Diverged = true
	out.Event(c, Event{Kind: EventDiverged, Member: i, From: -1, Reason: ReasonDiverged, Offset: uint32(at), Time: now})
	c.dropMember(now, i, ReasonDiverged, true, out)
}

// RemoveReplica takes replica id out of the connection (the engine saw it
// fail, or an operator disabled it). rst says whether to reset the
// replica's side (pointless when its port is gone).
func (c *Conn) RemoveReplica(now time.Time, id int, reason Reason, rst bool, out Output) {
	c.now = now
	i := c.MemberIndex(id)
	if i < 0 || c.state == StateClosed {
		return
	}
	m := &c.members[i]
	if m.state == memberGone {
		return
	}
	synSent := m.state == memberSynSent || m.state == memberSynAcked
	c.dropMember(now, i, reason, rst, out)
	if c.state == StateSynRcvd && synSent {
		c.maybeCompleteHandshake(now, out)
		return
	}
	c.afterChange(now, out)
}

// Promote makes replica id the primary of this connection if it is a live
// member: a planned switchover, which works exactly like a failover
// without removing the old primary.
func (c *Conn) Promote(now time.Time, id int, out Output) bool {
	c.now = now
	i := c.MemberIndex(id)
	if i < 0 || c.state != StateEstablished || !c.candidate(i) || i == c.primary {
		return false
	}
	c.switchPrimary(now, i, ReasonNone, out)
	c.afterChange(now, out)
	return true
}

// dropMember removes member i; if it was the primary, a backup takes over.
func (c *Conn) dropMember(now time.Time, i int, reason Reason, rst bool, out Output) {
	m := &c.members[i]
	wasLive := m.state == memberLive
	if rst && (m.state == memberLive || m.state == memberSynAcked) {
		c.resetMember(i, out)
	}
	m.state = memberGone
	m.ooo = nil
	if wasLive || reason != ReasonSynTimeout {
		out.Event(c, Event{Kind: EventMemberRemoved, Member: i, From: -1, Reason: reason, Time: now})
	}
	if !wasLive {
		return
	}
	if c.state != StateEstablished {
		// Closing (TIME_WAIT): nothing is owed to the client, but the
		// primary must stay a live member (or none), or status pages
		// would name a replica that is gone.
		if i == c.primary {
			c.primary = -1
			for j := range c.members {
				if c.members[j].state == memberLive {
					c.primary = j
					break
				}
			}
		}
		return
	}
	if i == c.primary {
		next := -1
		for j := range c.members {
			if c.candidate(j) {
				next = j
				break
			}
		}
		if next < 0 {
			c.primary = -1
			c.resetClientNow(out)
			c.close(now, ReasonNoReplica, out)
			return
		}
		c.switchPrimary(now, next, reason, out)
	}
	c.trim()
}

// switchPrimary makes member next the primary and sends the client what it
// is owed at once instead of waiting for a backed-off retransmission timer.
func (c *Conn) switchPrimary(now time.Time, next int, reason Reason, out Output) {
	from := c.primary
	c.primary = next
	c.Failovers++
	out.Event(c, Event{Kind: EventFailover, Member: next, From: from, Reason: reason, Time: now})
	c.failoverFrom, c.failoverMem = c.lastToClient, int32(next)
	if c.failoverFrom.IsZero() {
		c.failoverFrom = now
	}
	m := &c.members[next]
	// Anything the client has not acknowledged may have died with the old
	// primary's last segments: resend the box's copy now.
	if c.cAck.LessThan(c.rel) {
		c.sendData(seq.Max(c.cAck, c.out.base), c.rel, out)
	}
	if c.finSent && c.cAck.LessThanEq(c.rel) {
		c.sendFin(out)
	}
	// If the new primary sent output the box did not keep, prompt a fast
	// retransmission with three duplicate ACKs.
	if m.sndNxt.GreaterThan(m.contig.Add(m.delta)) {
		for k := 0; k < 3; k++ {
			c.ackReplica(next, out)
		}
	} else {
		c.ackReplica(next, out)
	}
}

// firstDiff returns the index of the first byte where a and b differ, or -1.
// The common case, equal, takes the vectorised bytes.Equal.
func firstDiff(a, b []byte) int {
	if bytes.Equal(a, b) {
		return -1
	}
	for k := range a {
		if a[k] != b[k] {
			return k
		}
	}
	return -1
}

// probeClient sends the client a keepalive: one below what it has
// acknowledged, no data, so that it answers with its ACK and window.
func (c *Conn) probeClient(out Output) {
	if c.state != StateEstablished || c.cAck.LessThan(c.rel) {
		return // output in flight will draw an answer anyway
	}
	var h Header
	sq := c.rel
	if c.finSent {
		sq = sq.Add(1)
	}
	c.clientHeader(&h, sq.Add(^uint32(0)))
	c.toClient(&h, nil, out)
}

// holdRoom returns how many more output bytes the connection may hold.
func (c *Conn) holdRoom() int {
	room := c.p.MaxHold - c.out.len()
	if left := c.p.Hold.Max - c.p.Hold.Used; int64(room) > left {
		room = int(max(left, 0))
	}
	return room
}

// taint records, in tolerant mode, that member i's output differed from
// the primary's in [at, end): it stays a member and counts for release,
// but may not take over until the client has acknowledged past end.
func (c *Conn) taint(now time.Time, i int, at, end seq.Value, out Output) {
	m := &c.members[i]
	if !m.tainted || end.GreaterThan(m.taintEnd) {
		m.taintEnd = end
	}
	if !m.tainted {
		out.Event(c, Event{Kind: EventDiverged, Member: i, From: -1, Reason: ReasonTolerated, Offset: uint32(at), Time: now})
	}
	m.tainted = true
}

// candidate reports whether live member i may become primary now.
func (c *Conn) candidate(i int) bool {
	m := &c.members[i]
	if m.state != memberLive {
		return false
	}
	if m.tainted && c.cAck.GreaterThanEq(m.taintEnd) {
		m.tainted = false // everything it differs in is behind the client
	}
	return !m.tainted
}

// oooSeg is member output that arrived ahead of a gap.
type oooSeg struct {
	seq  seq.Value // view space
	data []byte
	fin  bool
}

// maxAhead bounds the out-of-order segments kept per member.
const maxAhead = 64

// keepAhead stores output that arrived ahead of a gap, within bounds.
func (c *Conn) keepAhead(m *member, v seq.Value, data []byte, fin bool) {
	if len(data) == 0 && !fin || len(m.ooo) >= maxAhead {
		return
	}
	held := len(data)
	for _, o := range m.ooo {
		if o.seq == v && len(o.data) >= len(data) {
			return // a duplicate
		}
		held += len(o.data)
	}
	if held > c.p.MaxHold/2 {
		return
	}
	m.ooo = append(m.ooo, oooSeg{v, append([]byte(nil), data...), fin})
}

// aheadSACK writes SACK blocks (member space) for the output kept ahead
// of a gap, merged, at most n of them.
func aheadSACK(m *member, dst []pkt.SACKBlock) int {
	n := 0
	for _, o := range m.ooo {
		l, r := o.seq, o.seq.Add(uint32(len(o.data)))
		merged := false
		for k := 0; k < n; k++ {
			bl, br := seq.Value(dst[k].Left).Add(-m.delta), seq.Value(dst[k].Right).Add(-m.delta)
			if l.LessThanEq(br) && bl.LessThanEq(r) {
				dst[k] = pkt.SACKBlock{Left: uint32(seq.Min(l, bl).Add(m.delta)), Right: uint32(seq.Max(r, br).Add(m.delta))}
				merged = true
				break
			}
		}
		if !merged && n < len(dst) && l.LessThan(r) {
			dst[n] = pkt.SACKBlock{Left: uint32(l.Add(m.delta)), Right: uint32(r.Add(m.delta))}
			n++
		}
	}
	return n
}

// staleAck handles an ACK from member i before its SYN-ACK. The replica
// answered the SYN from an old incarnation of the same four-tuple, one the
// box no longer knows (the box restarted, or the client reused a port
// while the replica still closed the old connection): its stack sends a
// challenge ACK (RFC 5961) instead of a SYN-ACK, and the connection would
// start without that replica. As a client's own stack does in SYN-SENT
// (RFC 793: an unacceptable ACK gets <SEQ=SEG.ACK><CTL=RST>), the box
// resets the old incarnation, then sends the SYN again at once rather than
// on the client's next retransmission. Bounded per member.
func (c *Conn) staleAck(i int, s *Segment, out Output) {
	m := &c.members[i]
	if seq.Value(s.Ack) == c.cISN.Add(1) || m.staleResets >= maxStaleResets {
		return
	}
	m.staleResets++
	out.ToReplica(c, i, Header{Seq: s.Ack, Flags: pkt.TCPFlagRst, WScale: -1}, nil)
	out.ToReplica(c, i, c.synHeader(), nil)
}
