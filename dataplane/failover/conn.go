package failover

import (
	"net/netip"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/pkt"
	"github.com/ftbridge/ftbridge/dataplane/seq"
)

// State is a connection's place in its life.
type State uint8

// Connection states.
const (
	// StateSynRcvd: the client's SYN went to the replicas; waiting for their SYN-ACKs.
	StateSynRcvd State = iota
	// StateEstablished: the client has (or is getting) the box's SYN-ACK; data flows.
	StateEstablished
	// StateTimeWait: both directions closed; the entry lingers for stray retransmissions.
	StateTimeWait
	// StateClosed: the entry is dead and should be removed from the table.
	StateClosed
)

var stateNames = [...]string{"syn-rcvd", "established", "time-wait", "closed"}

// String returns the state's name.
func (s State) String() string { return stateNames[s] }

type memberState uint8

const (
	memberSynSent  memberState = iota // SYN forwarded, no SYN-ACK yet
	memberSynAcked                    // SYN-ACK seen, handshake not finished
	memberLive                        // part of the connection
	memberGone                        // removed; anything it sends is answered with RST
	memberJoining                     // being brought into a live connection (rejoin.go)
)

// member is one replica's leg of a connection. The fields are ordered so
// that the struct has no padding (208 bytes), pointers first (the garbage
// collector scans no further): a connection keeps one per replica, so its
// size is most of the box's memory per connection.
type member struct {
	id int

	// Gray-failure bookkeeping: when it fell behind its peers without
	// moving since (zero = not behind).
	outBehind, ackBehind, winBehind time.Time

	// Output that arrived ahead of a gap (lost before the box), kept so
	// that only the gap needs retransmitting (bounded by maxAhead
	// segments and MaxHold/2 bytes).
	ooo []oooSeg

	join *joinState // non-nil while joining

	state memberState

	// From its SYN-ACK.
	ws       uint8 // its own window shift (valid if wsOK)
	wsOK     bool
	sackOK   bool
	isn      seq.Value
	synTS    uint32
	synWin   uint16
	mss      uint16
	hasTS    bool
	clientWS uint8 // the shift it applies to the client's window field

	fin bool
	// tainted: see taintEnd.
	tainted bool

	delta   uint32 // replica seq = view seq + delta
	tsDelta uint32 // replica TSval = view TSval + tsDelta

	sndNxt seq.Value // replica space: end of everything it has sent (SYN, data, FIN)
	contig seq.Value // view space: the box has all its output before this

	ack   seq.Value // client space: its cumulative ACK of client data
	edge  seq.Value // client space: ack + its receive window
	sack  [4]pkt.SACKBlock
	nsack uint8

	// zeroWin: the last window it was shown was closed by the hold limit.
	zeroWin bool
	noJoin  bool // a join failed for good (its output differs)
	// staleResets counts the resets sent to an old incarnation of this
	// connection on the replica during the handshake (staleAck).
	staleResets uint8

	tsRecent uint32 // its latest TSval (its clock)
	tsEcr    uint32 // its latest TSecr (the client's clock)

	finSeq seq.Value // view space: sequence number of its FIN

	// taintEnd (tolerant mode): the member's output differed from the
	// primary's before this view offset; it may not take over until the
	// client has acknowledged past it.
	taintEnd seq.Value
}

// Conn is one client connection and its legs to the replicas.
//
// Its size is the box's memory per connection: fields are grouped by
// alignment so that it packs without padding.
type Conn struct {
	key connKey
	p   *Params

	created, lastActive time.Time

	members []member
	primary int // member index, -1 when none

	// Output toward the client (view space).
	out stream

	// rtoAt is when the box resends the head on its own (zero: no
	// timer); rtoBackoff doubles the timer while the client is silent.
	rtoAt time.Time

	// lastToClient is when the box last sent the client anything;
	// failoverFrom, while non-zero, is lastToClient as it was when a
	// failover began (the stall is measured from there).
	lastToClient time.Time
	now          time.Time // the time of the call being processed
	failoverFrom time.Time

	synDeadline time.Time
	finDeadline time.Time
	twDeadline  time.Time

	// Input log (client space) for rejoins (the output's running hash,
	// outHash, is further down, beside outHashEnd).
	in        stream
	inPending *pendingInputs

	// Stats for the management plane.
	BytesIn, BytesOut uint64
	// Retransmits counts segments the box resent to the client on its
	// own (loss recovery for a client without SACK).
	Retransmits uint64

	// Client side (client space).
	cISN    seq.Value
	cNxt    seq.Value
	cTSVal  uint32
	cFinSeq seq.Value
	cMSS    uint16
	cSynWin uint16
	cWS     uint8
	cWSOK   bool
	cSACKOK bool
	cTS     bool
	cFin    bool

	// The view (what the client was shown in the SYN-ACK).
	vWS      uint8
	vWSOK    bool
	vSACK    bool
	vTS      bool
	vMSS     uint16
	vISN     seq.Value
	tsSent   uint32 // the view clock: TSval for the next segment to the client
	tsClient uint32 // the TSval the client last got

	rel      seq.Value // everything before rel has been sent to the client
	cAck     seq.Value // the client's cumulative ACK
	cEdge    seq.Value // the client's right window edge
	ackSent  seq.Value // client space: last ACK sent to the client
	edgeSent seq.Value // client space: last right edge sent to the client

	outHashEnd seq.Value // the hash covers view bytes before this
	// outHash is a running CRC-32 of the output trimmed from out, so a
	// joining replica's replayed output can be checked against what the
	// client got (see hashTrimmed).
	outHash uint32

	failoverMem int32 // the member a failover under way moved to
	// Failovers counts the primary's changes (management plane stats).
	Failovers int32

	// The box's own loss recovery toward a client without SACK
	// (renoRecovery): duplicate ACKs counted, and the release point when
	// recovery began.
	recoverAt  seq.Value
	dupAcks    uint8
	recovering bool
	rtoBackoff uint8

	ClientMAC pkt.MAC
	state     State
	finSent   bool
	synAcked  bool // the box's SYN-ACK went out
	logOff    bool // the log overflowed or was never kept: no rejoin
	// joinsOrphaned: the log was dropped while joins were under way.
	joinsOrphaned bool
	Diverged      bool
	closeReason   Reason
}

// NewConn creates a connection for a client SYN and forwards the SYN to the
// replicas ids (in preference order: the first healthy one becomes primary).
// The returned Conn is in StateSynRcvd.
func NewConn(now time.Time, key Key, clientMAC pkt.MAC, syn *Segment, ids []int, p *Params, out Output) *Conn {
	c := &Conn{
		key:        packKey(key),
		ClientMAC:  clientMAC,
		p:          p,
		state:      StateSynRcvd,
		created:    now,
		lastActive: now,
		primary:    -1,
		cISN:       seq.Value(syn.Seq),
		cNxt:       seq.Value(syn.Seq).Add(1),
		cMSS:       536,
		cSACKOK:    syn.SACKPermitted,
		cTS:        syn.HasTS,
		cTSVal:     syn.TSVal,
		cSynWin:    syn.Window,
		members:    make([]member, len(ids)),
		now:        now,
	}
	if syn.HasMSS {
		c.cMSS = syn.MSS
	}
	if syn.HasWScale {
		c.cWSOK, c.cWS = true, min(syn.WScale, 14)
	}
	for i, id := range ids {
		c.members[i] = member{id: id, state: memberSynSent}
	}
	c.in.reset(c.cNxt)
	c.logOff = p.LogMax <= 0 || p.Log == nil
	c.forwardSyn(out)
	return c
}

// Key returns the connection's key.
func (c *Conn) Key() Key { return c.key.unpack() }

// connKey is a Key in 12 bytes when both addresses are IPv4 (a Key is 64:
// an netip.Addr has room for IPv6 and a zone); any other key is kept
// whole behind wide.
type connKey struct {
	cli, svc     [4]byte
	cport, sport uint16
	wide         *Key
}

func packKey(k Key) connKey {
	if !k.Client.Addr().Is4() || !k.Service.Addr().Is4() {
		// A copy made here only: &k would move every caller's k to
		// the heap, an allocation per connection.
		w := new(Key)
		*w = k
		return connKey{wide: w}
	}
	return connKey{cli: k.Client.Addr().As4(), svc: k.Service.Addr().As4(), cport: k.Client.Port(), sport: k.Service.Port()}
}

func (k *connKey) unpack() Key {
	if k.wide != nil {
		return *k.wide
	}
	return Key{
		Client:  netip.AddrPortFrom(netip.AddrFrom4(k.cli), k.cport),
		Service: netip.AddrPortFrom(netip.AddrFrom4(k.svc), k.sport),
	}
}

// State returns the connection's state.
func (c *Conn) State() State { return c.state }

// Members returns the number of members (live or not).
func (c *Conn) Members() int { return len(c.members) }

// MemberID returns the replica id of member m.
func (c *Conn) MemberID(m int) int { return c.members[m].id }

// MemberLive reports whether member m still serves the connection.
func (c *Conn) MemberLive(m int) bool { return c.members[m].state == memberLive }

// MemberIndex returns the member index of replica id, or -1.
func (c *Conn) MemberIndex(id int) int {
	for i := range c.members {
		if c.members[i].id == id {
			return i
		}
	}
	return -1
}

// Primary returns the primary's member index, or -1 before the handshake
// completes or after the last member left.
func (c *Conn) Primary() int { return c.primary }

// Created returns when the client's SYN arrived.
func (c *Conn) Created() time.Time { return c.created }

// LastActive returns when the connection last saw a segment.
func (c *Conn) LastActive() time.Time { return c.lastActive }

// CloseReason says why a closed connection closed.
func (c *Conn) CloseReason() Reason { return c.closeReason }

// HeldBytes returns how much output the box holds for the connection.
func (c *Conn) HeldBytes() int { return c.out.len() }

// forwardSyn sends the client's SYN to every member still waiting for it.
// ECN negotiation (ECE|CWR) is stripped: the box does not relay CE marks
// consistently across replicas, so ECN is off for replicated connections.
// TCP Fast Open is stripped too (the options are not forwarded and SYN
// data is not sent): the client falls back to a normal handshake.
func (c *Conn) forwardSyn(out Output) {
	h := c.synHeader()
	for i := range c.members {
		if c.members[i].state == memberSynSent {
			out.ToReplica(c, i, h, nil)
		}
	}
}

// synHeader rebuilds the client's SYN as the replicas are shown it.
func (c *Conn) synHeader() Header {
	h := Header{
		Seq:           uint32(c.cISN),
		Flags:         pkt.TCPFlagSyn,
		Window:        c.cSynWin,
		MSS:           c.cMSS,
		WScale:        -1,
		HasTS:         c.cTS,
		TSVal:         c.cTSVal,
		SACKPermitted: c.cSACKOK,
	}
	if c.cWSOK {
		h.WScale = int8(c.cWS)
	}
	return h
}

// synAckFromReplica records member i's SYN-ACK.
func (c *Conn) synAckFromReplica(now time.Time, i int, s *Segment, out Output) {
	m := &c.members[i]
	if seq.Value(s.Ack) != c.cISN.Add(1) {
		return // not an answer to this SYN
	}
	switch m.state {
	case memberSynSent:
	case memberLive, memberSynAcked:
		// A retransmitted SYN-ACK: our ACK was lost. Acknowledge it again
		// if the handshake is done, else wait for completion.
		if m.state == memberLive && seq.Value(s.Seq) == m.isn {
			// Acknowledge its SYN at least, even before the client
			// acknowledged anything.
			h := c.memberHeader(m, seq.Max(c.cAck, c.vISN.Add(1)))
			out.ToReplica(c, i, h, nil)
		}
		return
	default:
		return
	}
	m.isn = seq.Value(s.Seq)
	m.synTS = s.TSVal
	m.hasTS = s.HasTS
	m.synWin = s.Window
	m.mss = 536
	if s.HasMSS {
		m.mss = s.MSS
	}
	m.wsOK = s.HasWScale
	if s.HasWScale {
		m.ws = min(s.WScale, 14)
	}
	m.sackOK = s.SACKPermitted
	m.tsRecent = s.TSVal
	m.tsEcr = s.TSEcr
	m.state = memberSynAcked

	if c.state == StateEstablished {
		c.lateJoin(now, i, out)
		return
	}
	if c.synDeadline.IsZero() {
		c.synDeadline = now.Add(c.p.SynAckWait)
	}
	for j := range c.members {
		if c.members[j].state == memberSynSent {
			return
		}
	}
	c.completeHandshake(now, out)
}

// completeHandshake fixes the view from the members that answered and sends
// the client its one SYN-ACK.
func (c *Conn) completeHandshake(now time.Time, out Output) {
	p := -1
	for i := range c.members {
		m := &c.members[i]
		switch m.state {
		case memberSynAcked:
			if p < 0 {
				p = i
			}
		case memberSynSent:
			c.dropMember(now, i, ReasonSynTimeout, true, out)
		}
	}
	if p < 0 {
		// Every replica refused: refuse the client as a lone host would.
		c.resetClient(uint32(0), uint32(c.cISN.Add(1)), true, out)
		c.close(now, ReasonNoReplica, out)
		return
	}
	pm := &c.members[p]
	c.primary = p
	c.vISN = pm.isn
	c.vTS = c.cTS && pm.hasTS
	c.vMSS = pm.mss
	c.vWSOK = c.cWSOK
	c.vSACK = c.cSACKOK
	for i := range c.members {
		m := &c.members[i]
		if m.state != memberSynAcked {
			continue
		}
		if m.hasTS != pm.hasTS {
			// Timestamps on some legs and not others cannot be shown to
			// the client as one peer; keep the primary's choice.
			c.dropMember(now, i, ReasonOptionMismatch, true, out)
			continue
		}
		c.vMSS = min(c.vMSS, m.mss)
		c.vWSOK = c.vWSOK && m.wsOK
		c.vSACK = c.vSACK && m.sackOK
		if m.wsOK {
			c.vWS = max(c.vWS, m.ws)
		}
	}
	if !c.vWSOK {
		c.vWS = 0
	}
	var synWin uint16 = 0xFFFF
	for i := range c.members {
		m := &c.members[i]
		if m.state != memberSynAcked {
			continue
		}
		c.initMember(now, m)
		synWin = min(synWin, m.synWin)
	}
	c.rel = c.vISN.Add(1)
	c.out.reset(c.rel)
	// The output hash starts here.
	c.outHashEnd = c.rel
	c.cAck = c.vISN
	c.cEdge = c.rel.Add(uint32(c.cSynWin))
	c.tsSent = pm.synTS
	c.tsClient = pm.synTS
	c.ackSent = c.cISN.Add(1)
	c.edgeSent = c.ackSent.Add(uint32(synWin))
	c.state = StateEstablished
	c.synAcked = true
	c.sendSynAck(synWin, out)
	out.Event(c, Event{Kind: EventEstablished, Member: p, From: -1, Time: now})
}

// initMember makes a member that answered the SYN live, relative to the view.
func (c *Conn) initMember(now time.Time, m *member) {
	m.delta = uint32(m.isn) - uint32(c.vISN)
	m.tsDelta = m.synTS - c.members[c.primary].synTS
	if m.wsOK {
		m.clientWS = c.cWS
	}
	m.sndNxt = m.isn.Add(1)
	m.contig = c.vISN.Add(1)
	m.ack = c.cISN.Add(1)
	m.edge = m.ack.Add(uint32(m.synWin)) // SYN-ACK windows are never scaled
	m.state = memberLive
}

// lateJoin handles a SYN-ACK that arrives after the client got its SYN-ACK.
// The replica can join only if nothing has flowed yet in either direction;
// otherwise it missed input that cannot be replayed and is reset.
func (c *Conn) lateJoin(now time.Time, i int, out Output) {
	m := &c.members[i]
	pm := &c.members[c.primary]
	if c.cNxt != c.cISN.Add(1) || c.out.end() != c.vISN.Add(1) || m.hasTS != pm.hasTS ||
		(c.vWSOK && !m.wsOK) || (c.vSACK && !m.sackOK) || m.mss < c.vMSS || (m.wsOK && m.ws > c.vWS) {
		c.dropMember(now, i, ReasonLate, true, out)
		return
	}
	c.initMember(now, m)
	c.ackReplica(i, out)
}

// sendSynAck sends the client the SYN-ACK that stands for all replicas.
func (c *Conn) sendSynAck(win uint16, out Output) {
	h := Header{
		Seq:           uint32(c.vISN),
		Ack:           uint32(c.cISN.Add(1)),
		Flags:         pkt.TCPFlagSyn | pkt.TCPFlagAck,
		Window:        win,
		MSS:           c.vMSS,
		WScale:        -1,
		SACKPermitted: c.vSACK,
		HasTS:         c.vTS,
		TSVal:         c.tsSent,
		TSEcr:         c.cTSVal,
	}
	if c.vWSOK {
		h.WScale = int8(c.vWS)
	}
	c.toClient(&h, nil, out)
}

// live counts the live members.
func (c *Conn) live() int {
	n := 0
	for i := range c.members {
		if c.members[i].state == memberLive {
			n++
		}
	}
	return n
}

// SendMSS returns the largest payload of one segment toward the client.
func (c *Conn) SendMSS() int {
	mss := int(c.cMSS)
	if c.vTS {
		mss -= 12 // the timestamp option, padded, counts against the MSS
	}
	return max(mss, 64)
}

// ClientISN returns the client's initial sequence number.
func (c *Conn) ClientISN() uint32 { return uint32(c.cISN) }

// Abandon ends the connection at once (a new connection reuses its key):
// the live members are reset so their servers let go of it too.
func (c *Conn) Abandon(now time.Time, out Output) {
	c.now = now
	for i := range c.members {
		if s := c.members[i].state; s == memberLive || s == memberSynAcked {
			c.resetMember(i, out)
		}
	}
	c.close(now, ReasonClosed, out)
}

// HandshakeDone reports whether the client acknowledged the box's SYN-ACK.
func (c *Conn) HandshakeDone() bool {
	return c.state == StateEstablished && c.cAck.GreaterThan(c.vISN)
}
