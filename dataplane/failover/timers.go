package failover

import (
	"time"

	"github.com/ftbridge/ftbridge/dataplane/seq"
)

// trackProgress applies the gray-failure rule: a live member that falls
// behind its peers (in output, in acknowledging client data, or with its
// window shut while theirs is open) and does not move for StallTimeout is
// stalled. A member that moves resets its clock, so a slow but working
// replica is never taken for a dead one.
func (c *Conn) trackProgress(now time.Time) {
	if c.live() < 2 {
		for i := range c.members {
			m := &c.members[i]
			m.outBehind, m.ackBehind, m.winBehind = time.Time{}, time.Time{}, time.Time{}
		}
		return
	}
	maxOut, maxAck, maxEdge := c.maxContig(), c.aggAck(), c.aggEdge()
	for i := range c.members {
		m := &c.members[i]
		if m.state != memberLive {
			continue
		}
		if m.ack.GreaterThan(maxAck) {
			maxAck = m.ack
		}
		if m.edge.GreaterThan(maxEdge) {
			maxEdge = m.edge
		}
	}
	for i := range c.members {
		m := &c.members[i]
		if m.state != memberLive {
			continue
		}
		// Output lag counts only while the client has everything the
		// member sent: then the member owes output. While the client
		// still misses some of it (loss on the client's side, waiting
		// for the client's recovery), the member is held by its ACK
		// clock like every peer, and a peer ahead of it merely had more
		// in flight: a healthy replica under client-side loss would
		// otherwise be taken for stalled.
		m.outBehind = behind(m.outBehind, m.contig.LessThan(maxOut) && !m.contig.GreaterThan(c.cAck), now)
		m.ackBehind = behind(m.ackBehind, m.ack.LessThan(maxAck), now)
		// A shut window counts only when the member has taken in all the
		// client sent (a stopped reader); one shut while it waits for a
		// lost segment (its out-of-order queue filled a smaller buffer)
		// is loss recovery, not a stall.
		m.winBehind = behind(m.winBehind, m.edge == m.ack && maxEdge.GreaterThan(m.edge) && m.ack == c.cNxt, now)
	}
}

// behind keeps the time a member fell behind, or clears it.
func behind(since time.Time, isBehind bool, now time.Time) time.Time {
	if !isBehind {
		return time.Time{}
	}
	if since.IsZero() {
		return now
	}
	return since
}

// stalledSince returns when member m's oldest unresolved lag began (zero if
// none) and which lag that is.
func (m *member) stalledSince(p *Params) (time.Time, Lag) {
	out := m.outBehind
	if !out.IsZero() && len(m.ooo) > 0 {
		// It is waiting for a retransmission of output lost before the
		// box (its kernel's timer may back off): allow it twice more.
		out = out.Add(2 * p.StallTimeout)
	}
	t, lag := time.Time{}, LagNone
	for k, s := range [...]time.Time{out, m.ackBehind, m.winBehind} {
		if !s.IsZero() && (t.IsZero() || s.Before(t)) {
			t, lag = s, Lag(k+1)
		}
	}
	return t, lag
}

// NextDeadline returns when Tick must run next (zero: no timer pending).
func (c *Conn) NextDeadline() time.Time {
	var d time.Time
	take := func(t time.Time) {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	switch c.state {
	case StateSynRcvd:
		take(c.synDeadline)
		take(c.lastActive.Add(c.p.Embryonic))
	case StateEstablished:
		if !c.HandshakeDone() {
			// Half-open: a SYN flood's entries must not outlive the
			// handshake bound just because the box answered them.
			take(c.created.Add(c.p.Embryonic))
		}
		take(c.finDeadline)
		take(c.rtoAt)
		take(c.joinDeadline())
		if c.out.len() == 0 && cap(c.out.buf) > quietRelease {
			take(c.lastActive.Add(quietAfter))
		}
		for i := range c.members {
			if m := &c.members[i]; m.state == memberLive {
				if s, _ := m.stalledSince(c.p); !s.IsZero() {
					take(s.Add(c.p.StallTimeout))
				}
			}
		}
		take(c.lastActive.Add(c.p.Idle))
	case StateTimeWait:
		take(c.twDeadline)
	}
	return d
}

// Tick runs the connection's timers. The engine calls it at NextDeadline
// (calling it early is harmless).
func (c *Conn) Tick(now time.Time, out Output) {
	c.now = now
	switch c.state {
	case StateSynRcvd:
		if !c.synDeadline.IsZero() && !now.Before(c.synDeadline) {
			c.completeHandshake(now, out)
		} else if !now.Before(c.lastActive.Add(c.p.Embryonic)) {
			for i := range c.members {
				if c.members[i].state == memberSynAcked {
					c.resetMember(i, out)
				}
			}
			c.close(now, ReasonEmbryonic, out)
		}
	case StateEstablished:
		if !c.HandshakeDone() && !now.Before(c.created.Add(c.p.Embryonic)) {
			for i := range c.members {
				if c.members[i].state == memberLive {
					c.resetMember(i, out)
				}
			}
			c.close(now, ReasonEmbryonic, out)
			return
		}
		if !now.Before(c.lastActive.Add(c.p.Idle)) {
			for i := range c.members {
				if c.members[i].state == memberLive {
					c.resetMember(i, out)
				}
			}
			c.close(now, ReasonIdle, out)
			return
		}
		if c.out.len() == 0 && !now.Before(c.lastActive.Add(quietAfter)) {
			// A quiet connection gives its output array back.
			c.out.release()
		}
		c.rtoTick(now, out)
		c.joinTick(now, out)
		if !c.finDeadline.IsZero() && !now.Before(c.finDeadline) {
			c.finDeadline = time.Time{}
			if c.finBlockedByLaggard() {
				// A member that has not closed has not even produced
				// the output before the closers' FIN: it is the one
				// behind, and the stall rule judges it. Look again
				// later; blaming the closers now would keep the
				// laggard and drop the members that are right.
				c.finDeadline = now.Add(c.p.FinWait)
			} else if !c.finAgreed() {
				// Some members closed, the others did not follow in
				// time: the lone closers are the faulty ones.
				for i := range c.members {
					if m := &c.members[i]; m.state == memberLive && m.fin && c.live() > 1 {
						if c.anyLiveWithoutFin() {
							c.dropMember(now, i, ReasonLoneFIN, true, out)
						}
					}
				}
			}
		}
		for i := range c.members {
			m := &c.members[i]
			if m.state != memberLive {
				continue
			}
			if s, lag := m.stalledSince(c.p); !s.IsZero() && !now.Before(s.Add(c.p.StallTimeout)) {
				m.outBehind, m.ackBehind, m.winBehind = time.Time{}, time.Time{}, time.Time{}
				if c.live() < 2 {
					// Its peers left in this same tick (a lone
					// closer, say): behind whom? The last member is
					// never failed for lagging.
					continue
				}
				// Report once; the engine fails the replica everywhere
				// (RemoveReplica), which also covers this connection.
				out.Event(c, Event{Kind: EventStalled, Member: i, From: -1, Reason: ReasonStalled, Lag: lag, Time: now})
			}
		}
		c.afterChange(now, out)
	case StateTimeWait:
		if !now.Before(c.twDeadline) {
			c.close(now, ReasonClosed, out)
		}
	}
}

// finBlockedByLaggard reports whether some live member that has not closed
// is still short of output before the earliest FIN a live member sent.
func (c *Conn) finBlockedByLaggard() bool {
	first, any := seq.Value(0), false
	for i := range c.members {
		if m := &c.members[i]; m.state == memberLive && m.fin && (!any || m.finSeq.LessThan(first)) {
			first, any = m.finSeq, true
		}
	}
	if !any {
		return false
	}
	for i := range c.members {
		if m := &c.members[i]; m.state == memberLive && !m.fin && m.contig.LessThan(first) {
			return true
		}
	}
	return false
}

// anyLiveWithoutFin reports whether some live member has not closed.
func (c *Conn) anyLiveWithoutFin() bool {
	for i := range c.members {
		if m := &c.members[i]; m.state == memberLive && !m.fin {
			return true
		}
	}
	return false
}

// A connection quiet for quietAfter with nothing held returns an output
// array bigger than quietRelease to the heap.
const (
	quietAfter   = 2 * time.Second
	quietRelease = 64 << 10
)
