package failover

import (
	"hash/crc32"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/pkt"
	"github.com/ftbridge/ftbridge/dataplane/seq"
)

// Rejoin: bringing a recovered (or new) replica into a live connection.
//
// The box keeps the client's input since the SYN (the input log) and a
// running hash of the output the client got. To join, the replica is sent
// the client's SYN (same addresses, ports, ISN and options), then the
// logged input in order. Its output replays the connection from the start:
// the part the box no longer holds is hashed and checked against the
// connection's hash at the point the join began, the rest is compared byte
// for byte like any member's. Once it has consumed all input and produced
// everything the client has, it becomes a backup, eligible for failover.
// Client traffic never waits for a joiner: it is not counted for ACK
// gating or release until it is live, and a joiner that would hold back
// too much output is dropped.

// The output hash is a CRC-32 (IEEE): it runs at 2.5 times maphash's
// speed on this machine kind (PCLMULQDQ on x86-64, the CRC32 instructions
// on arm64), and hashing every byte of output is the largest Go cost of a
// download. It guards against a joiner whose replayed output differs from
// what the client got before the join point, not against an adversary: a
// difference passes with probability 2^-32, and the joiner's output after
// the join point is compared byte for byte all the same.

// pendingInputs holds the client data that arrived ahead of a gap in the
// log. It is rare, so a Conn keeps it behind a pointer (8 bytes instead of
// a slice's 24 in every connection).
type pendingInputs struct {
	segs []pendingInput
}

// pendingInput is client data that arrived ahead of a gap in the log.
type pendingInput struct {
	seq  seq.Value
	data []byte
}

// maxPendingInput bounds the out-of-order client segments kept for the log.
const maxPendingInput = 16

// joinState is what a joining member needs beyond a member's fields.
type joinState struct {
	started  time.Time
	deadline time.Time
	synAcked bool
	b0       seq.Value // view offset where the box's held output began at join start
	h0       uint32    // hash of the view bytes before b0
	hash     uint32    // running hash of the joiner's replayed output before b0
	verified bool
	// replay: the next logged client byte to send, and when the joiner
	// last acknowledged progress (for go-back-N retransmission).
	replayNxt seq.Value
	ackAt     time.Time
	// staleResets counts the RSTs sent to an old incarnation of this
	// connection on the joiner (see joinFromReplica).
	staleResets uint8
}

// maxStaleResets bounds the resets of a stale connection per join.
const maxStaleResets = 4

// joinRTO is the replay's retransmission timeout.
const joinRTO = 200 * time.Millisecond

// Rejoinable reports whether a replica could join this connection now.
func (c *Conn) Rejoinable() bool {
	return c.state == StateEstablished && !c.logOff && !c.cFin && !c.finSent && c.primary >= 0
}

// LogOverflowed reports whether the input log gave up (the connection is
// not re-joinable, which breaks nothing else).
func (c *Conn) LogOverflowed() bool { return c.logOff && c.p.LogMax > 0 }

// Redundancy returns the number of live members.
func (c *Conn) Redundancy() int { return c.live() }

// MemberJoining reports whether member m is being brought in.
func (c *Conn) MemberJoining(m int) bool { return c.members[m].state == memberJoining }

// CanJoin reports whether Join(id) would start a join now: the connection
// is re-joinable and replica id is not a member, or a departed one whose
// output never differed. It changes nothing, so a sweep over many
// connections can count candidates before it starts any.
func (c *Conn) CanJoin(id int) bool {
	if !c.Rejoinable() {
		return false
	}
	i := c.MemberIndex(id)
	if i < 0 {
		return len(c.members) < 16
	}
	return c.members[i].state == memberGone && !c.members[i].noJoin
}

// Join starts bringing replica id into the connection. It returns false if
// the connection cannot take it (not re-joinable, already a member).
func (c *Conn) Join(now time.Time, id int, out Output) bool {
	c.now = now
	if !c.CanJoin(id) {
		return false
	}
	i := c.MemberIndex(id)
	if i < 0 {
		c.members = append(c.members, member{id: id})
		i = len(c.members) - 1
	}
	c.members[i] = member{id: id, state: memberJoining}
	m := &c.members[i]
	m.join = &joinState{started: now, deadline: now.Add(c.p.JoinTimeout)}
	h := c.synHeader()
	h.TSVal = c.cTSVal // the client's clock now: the joiner's PAWS starts here
	out.ToReplica(c, i, h, nil)
	out.Event(c, Event{Kind: EventJoinStarted, Member: i, From: -1, Time: now})
	return true
}

// logInput appends the client's in-order bytes to the input log; bytes that
// arrive ahead of a gap wait (bounded) for the gap to fill.
func (c *Conn) logInput(sq seq.Value, data []byte) {
	if c.logOff || len(data) == 0 {
		return
	}
	end := sq.Add(uint32(len(data)))
	if end.LessThanEq(c.in.end()) {
		return
	}
	if sq.GreaterThan(c.in.end()) {
		if c.inPending == nil {
			c.inPending = new(pendingInputs)
		}
		if len(c.inPending.segs) >= maxPendingInput {
			c.dropLog()
			return
		}
		c.inPending.segs = append(c.inPending.segs, pendingInput{sq, append([]byte(nil), data...)})
		return
	}
	if !c.appendLog(data[c.in.end().Sub(sq):]) {
		return
	}
	// Anything that waited for this gap may follow now.
	for progress := true; progress && c.inPending != nil && len(c.inPending.segs) > 0; {
		progress = false
		for k := 0; k < len(c.inPending.segs); k++ {
			p := c.inPending.segs[k]
			pend := p.seq.Add(uint32(len(p.data)))
			if p.seq.GreaterThan(c.in.end()) {
				continue
			}
			c.inPending.segs = append(c.inPending.segs[:k], c.inPending.segs[k+1:]...)
			k--
			if pend.GreaterThan(c.in.end()) {
				if !c.appendLog(p.data[c.in.end().Sub(p.seq):]) {
					return
				}
				progress = true
			}
		}
	}
}

// appendLog adds bytes at the log's end within the budgets.
func (c *Conn) appendLog(b []byte) bool {
	if c.in.len()+len(b) > c.p.LogMax || c.p.Log.Used+int64(len(b)) > c.p.Log.Max {
		c.dropLog()
		return false
	}
	c.in.append(b)
	c.p.Log.Used += int64(len(b))
	return true
}

// dropLog gives the input log up: the connection is no longer
// re-joinable, and joins under way fail.
func (c *Conn) dropLog() {
	// Joins under way lose their input: they fail (the caller's next
	// step, failPendingJoins, reports it; nothing may touch the log or the
	// hash from here on).
	c.joinsOrphaned = true
	c.p.Log.Used -= int64(c.in.len())
	c.in = stream{base: c.in.end()}
	c.inPending = nil
	c.logOff = true
}

// failOrphanedJoins fails the joins whose input log went away.
func (c *Conn) failOrphanedJoins(now time.Time, out Output) {
	if c.joinsOrphaned {
		c.joinsOrphaned = false
		c.failJoins(now, ReasonLogDropped, out)
	}
}

// freeLog returns the log's budget (the connection closes).
func (c *Conn) freeLog() {
	if c.p.Log != nil {
		c.p.Log.Used -= int64(c.in.len())
	}
	c.in = stream{}
	c.inPending = nil
}

// hashTrimmed feeds the output about to be trimmed into the running hash.
func (c *Conn) hashTrimmed(to seq.Value) {
	if !to.GreaterThan(c.outHashEnd) || !c.hashing() {
		return
	}
	c.outHash = crc32.Update(c.outHash, crc32.IEEETable, c.out.slice(c.outHashEnd, to))
	c.outHashEnd = to
}

// hashing reports whether the connection keeps its output hash: while it
// keeps an input log and so can be joined.
func (c *Conn) hashing() bool {
	return !c.logOff && c.synAcked && c.state != StateClosed
}

// joinTrimLimit returns how far held output may be trimmed given the
// members that are joining: not past their join point until verified.
func (c *Conn) joinTrimLimit(to seq.Value) seq.Value {
	for i := range c.members {
		m := &c.members[i]
		if m.state != memberJoining || m.join == nil {
			continue
		}
		keep := m.join.b0
		if m.join.verified && m.contig.GreaterThan(keep) {
			keep = m.contig
		}
		if m.join.synAcked && keep.LessThan(to) {
			to = keep
		}
	}
	return to
}

// joinSynAck handles the joiner's SYN-ACK: fix its deltas against the view,
// complete its handshake and start the replay.
func (c *Conn) joinSynAck(now time.Time, i int, s *Segment, out Output) {
	m := &c.members[i]
	j := m.join
	if !c.hashing() {
		c.failJoin(now, i, ReasonLogDropped, out)
		return
	}
	if seq.Value(s.Ack) != c.cISN.Add(1) {
		return
	}
	if j.synAcked {
		if seq.Value(s.Seq) == m.isn {
			c.ackJoiner(i, out)
		}
		return
	}
	if s.HasTS != c.vTS {
		c.failJoin(now, i, ReasonOptionMismatch, out)
		return
	}
	m.isn = seq.Value(s.Seq)
	m.synTS, m.hasTS, m.synWin = s.TSVal, s.HasTS, s.Window
	m.mss = 536
	if s.HasMSS {
		m.mss = s.MSS
	}
	m.wsOK, m.sackOK = s.HasWScale, s.SACKPermitted
	if s.HasWScale {
		m.ws = min(s.WScale, 14)
	}
	if m.wsOK {
		m.clientWS = c.cWS
	}
	m.delta = uint32(m.isn) - uint32(c.vISN)
	m.tsDelta = s.TSVal - c.tsSent
	m.tsRecent, m.tsEcr = s.TSVal, s.TSEcr
	m.sndNxt = m.isn.Add(1)
	m.contig = c.vISN.Add(1)
	m.ack = c.cISN.Add(1)
	m.edge = m.ack.Add(uint32(s.Window))
	j.synAcked = true
	// The join point: what the box no longer holds is checked by hash.
	c.hashTrimmed(c.out.base)
	j.b0 = c.outHashEnd
	j.h0 = c.outHash
	j.hash = 0
	j.replayNxt = m.ack
	j.ackAt = now
	j.verified = j.b0 == m.contig
	c.ackJoiner(i, out)
	c.replay(now, i, out)
}

// joinFromReplica handles every segment of a joining member.
func (c *Conn) joinFromReplica(now time.Time, i int, s *Segment, out Output) {
	m := &c.members[i]
	j := m.join
	if c.logOff && !s.Flags.Has(pkt.TCPFlagRst) {
		c.failJoin(now, i, ReasonLogDropped, out)
		return
	}
	switch {
	case s.Flags.Has(pkt.TCPFlagRst):
		c.failJoin(now, i, ReasonRST, out)
		return
	case s.Flags.Has(pkt.TCPFlagSyn):
		if s.Flags.Has(pkt.TCPFlagAck) {
			c.joinSynAck(now, i, s, out)
		}
		return
	case !j.synAcked:
		if s.Flags.Has(pkt.TCPFlagAck) && j.staleResets < maxStaleResets {
			// An ACK before the SYN-ACK comes from an old incarnation
			// of this very connection on the joiner: one that lost the
			// box when its link went down, or was stopped, and never
			// learned the connection moved on. Its stack answers the
			// SYN with a challenge ACK (RFC 5961) and the join could
			// never complete. A reset at exactly the sequence it
			// acknowledges is one it accepts; then the SYN again.
			j.staleResets++
			out.ToReplica(c, i, Header{Seq: s.Ack, Flags: pkt.TCPFlagRst, WScale: -1}, nil)
			h := c.synHeader()
			h.TSVal = c.cTSVal
			out.ToReplica(c, i, h, nil)
		}
		return
	}
	if m.hasTS && s.HasTS && seq.Value(s.TSVal).GreaterThanEq(seq.Value(m.tsRecent)) {
		m.tsRecent, m.tsEcr = s.TSVal, s.TSEcr
	}
	if s.Flags.Has(pkt.TCPFlagAck) {
		before := m.ack
		c.replicaAck(now, m, s)
		if m.ack.GreaterThan(before) {
			j.ackAt = now
		}
	}
	if len(s.Payload) > 0 || s.Flags.Has(pkt.TCPFlagFin) {
		if s.Flags.Has(pkt.TCPFlagFin) {
			// The server closed during replay where the connection did
			// not: its output cannot be the same.
			c.failJoin(now, i, ReasonJoinMismatch, out)
			return
		}
		end := seq.Value(s.Seq).Add(uint32(len(s.Payload)))
		if end.GreaterThan(m.sndNxt) && end.Sub(m.sndNxt) < 1<<30 {
			m.sndNxt = end
		}
		if !c.joinData(now, i, s, out) {
			return
		}
		c.ackJoiner(i, out)
	}
	c.replay(now, i, out)
	c.maybeCompleteJoin(now, i, out)
}

// joinData takes in replayed output: hashed before the join point,
// compared after it. It returns false if the join failed.
func (c *Conn) joinData(now time.Time, i int, s *Segment, out Output) bool {
	m := &c.members[i]
	j := m.join
	v := seq.Value(s.Seq - m.delta)
	data := s.Payload
	end := v.Add(uint32(len(data)))
	if v.GreaterThan(m.contig) || end.LessThanEq(m.contig) {
		return true // a gap (re-asked by the ACK that follows) or old
	}
	data = data[m.contig.Sub(v):]
	if !j.verified {
		n := min(len(data), int(j.b0.Sub(m.contig)))
		j.hash = crc32.Update(j.hash, crc32.IEEETable, data[:n])
		m.contig = m.contig.Add(uint32(n))
		data = data[n:]
		if m.contig != j.b0 {
			return true
		}
		if j.hash != j.h0 {
			c.failJoin(now, i, ReasonJoinMismatch, out)
			return false
		}
		j.verified = true
	}
	// After the join point: compare with the held output, keep nothing new.
	if avail := c.out.end(); m.contig.LessThan(avail) && len(data) > 0 {
		n := min(len(data), int(avail.Sub(m.contig)))
		if m.contig.LessThan(c.out.base) {
			return true // cannot happen while the join holds trimming
		}
		if firstDiff(c.out.slice(m.contig, m.contig.Add(uint32(n))), data[:n]) >= 0 {
			c.failJoin(now, i, ReasonJoinMismatch, out)
			return false
		}
		m.contig = m.contig.Add(uint32(n))
	}
	return true
}

// ackJoiner acknowledges the joiner's output that the box has taken in
// (the hash needs every byte: never past contig) and the client has
// acknowledged (invariant 2, as for any backup).
func (c *Conn) ackJoiner(i int, out Output) {
	m := &c.members[i]
	h := c.memberHeader(m, seq.Min(m.contig, c.cAck))
	h.Seq = uint32(m.join.replayNxt)
	out.ToReplica(c, i, h, nil)
}

// replay sends the joiner logged input it has room for.
func (c *Conn) replay(now time.Time, i int, out Output) {
	m := &c.members[i]
	j := m.join
	if j == nil || !j.synAcked {
		return
	}
	if c.logOff || j.replayNxt.LessThan(c.in.base) {
		c.failJoin(now, i, ReasonLogDropped, out)
		return
	}
	if j.replayNxt.LessThan(m.ack) {
		j.replayNxt = m.ack
	}
	if m.ack.LessThan(j.replayNxt) && now.Sub(j.ackAt) >= joinRTO {
		// Nothing acknowledged for a while: go back and resend.
		j.replayNxt = m.ack
		j.ackAt = now
	}
	limit := seq.Min(c.in.end(), m.edge)
	const burst = 256 << 10
	for sent := 0; j.replayNxt.LessThan(limit) && sent < burst; {
		n := min(int(limit.Sub(j.replayNxt)), 64<<10, burst-sent)
		h := c.memberHeader(m, seq.Min(m.contig, c.cAck))
		h.Seq = uint32(j.replayNxt)
		h.Flags |= pkt.TCPFlagPsh
		h.GSOSize = c.vMSS
		out.ToReplica(c, i, h, c.in.slice(j.replayNxt, j.replayNxt.Add(uint32(n))))
		j.replayNxt = j.replayNxt.Add(uint32(n))
		sent += n
	}
}

// maybeCompleteJoin makes the joiner live once it consumed every input
// byte and produced everything the client has.
func (c *Conn) maybeCompleteJoin(now time.Time, i int, out Output) {
	m := &c.members[i]
	j := m.join
	if !j.verified || m.ack != c.in.end() || c.in.end() != c.cNxt || m.contig.LessThan(c.rel) {
		return
	}
	m.state = memberLive
	m.join = nil
	m.outBehind, m.ackBehind, m.winBehind = time.Time{}, time.Time{}, time.Time{}
	out.Event(c, Event{Kind: EventJoinCompleted, Member: i, From: -1, Time: now})
	c.afterChange(now, out)
}

// failJoin drops a joiner.
func (c *Conn) failJoin(now time.Time, i int, reason Reason, out Output) {
	m := &c.members[i]
	if m.state != memberJoining {
		return
	}
	if m.join.synAcked && reason != ReasonRST {
		h := Header{Seq: uint32(m.ack), Flags: pkt.TCPFlagRst, WScale: -1}
		out.ToReplica(c, i, h, nil)
	}
	m.state = memberGone
	m.join = nil
	// A replica whose output cannot match will not match next time either;
	// a slow one may be tried again.
	m.noJoin = reason == ReasonJoinMismatch || reason == ReasonOptionMismatch
	out.Event(c, Event{Kind: EventJoinFailed, Member: i, From: -1, Reason: reason, Time: now})
	c.trim()
}

// failJoins drops every joiner (the connection stopped being re-joinable).
func (c *Conn) failJoins(now time.Time, reason Reason, out Output) {
	for i := range c.members {
		if c.members[i].state == memberJoining {
			c.failJoin(now, i, reason, out)
		}
	}
}

// joinTick runs the joiners' timers; it returns the earliest next deadline.
func (c *Conn) joinTick(now time.Time, out Output) {
	for i := range c.members {
		m := &c.members[i]
		if m.state != memberJoining {
			continue
		}
		if !now.Before(m.join.deadline) {
			c.failJoin(now, i, ReasonJoinTimeout, out)
			continue
		}
		c.replay(now, i, out)
	}
}

// joinDeadline returns the next time a joiner needs the clock.
func (c *Conn) joinDeadline() time.Time {
	var d time.Time
	for i := range c.members {
		m := &c.members[i]
		if m.state != memberJoining {
			continue
		}
		t := m.join.deadline
		if m.join.synAcked && m.ack.LessThan(m.join.replayNxt) {
			t = minTime(t, m.join.ackAt.Add(joinRTO))
		}
		if d.IsZero() || t.Before(d) {
			d = t
		}
	}
	return d
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
