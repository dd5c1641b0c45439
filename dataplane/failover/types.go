package failover

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/pkt"
)

// Key identifies a connection: client address and port, service address and port.
type Key struct {
	Client  netip.AddrPort
	Service netip.AddrPort
}

// String formats the key as client->service.
func (k Key) String() string { return k.Client.String() + "->" + k.Service.String() }

// Segment is a parsed TCP segment as it arrived, in its sender's own
// sequence space. Payload aliases the receive buffer and is only valid for
// the duration of the call it is passed to.
type Segment struct {
	Seq, Ack uint32
	Flags    pkt.TCPFlags
	Window   uint16

	HasTS        bool
	TSVal, TSEcr uint32
	SACK         [4]pkt.SACKBlock
	NumSACK      int

	// Options that matter on SYN and SYN-ACK only.
	MSS           uint16
	HasMSS        bool
	WScale        uint8
	HasWScale     bool
	SACKPermitted bool

	// GSOSize is the segment size of a GSO super-frame, 0 for a plain frame.
	GSOSize uint16
	Payload []byte
}

// Header describes a segment the connection wants sent. The engine adds the
// addresses, ports, MACs and checksums; a payload larger than GSOSize is sent
// as a GSO super-frame or split by the engine.
type Header struct {
	Seq, Ack uint32
	Flags    pkt.TCPFlags
	Window   uint16

	HasTS        bool
	TSVal, TSEcr uint32
	SACK         [4]pkt.SACKBlock
	NumSACK      int

	// MSS, WScale (>= 0) and SACKPermitted are emitted on SYN segments only.
	MSS           uint16
	WScale        int8
	SACKPermitted bool

	// GSOSize is the largest payload per wire segment.
	GSOSize uint16
}

// Output receives what a connection wants done. Headers go by value (a
// pointer through an interface would escape to the heap on every
// segment); implementations must not retain payload after returning.
type Output interface {
	// ToClient sends a segment to the client.
	ToClient(c *Conn, h Header, payload []byte)
	// ToReplica sends a segment to member m of c (Conn.MemberID(m) names the replica).
	ToReplica(c *Conn, m int, h Header, payload []byte)
	// Event reports something the management plane should hear about.
	Event(c *Conn, ev Event)
}

// EventKind says what an Event is about.
type EventKind uint8

// Event kinds.
const (
	// EventEstablished: the handshake completed; Member is the primary.
	EventEstablished EventKind = iota + 1
	// EventMemberRemoved: a replica left the connection; Reason says why.
	EventMemberRemoved
	// EventFailover: the primary changed from From to Member.
	EventFailover
	// EventDiverged: a member's output differed from the primary's at Offset.
	EventDiverged
	// EventStalled: a member made no progress while its peers did; the
	// engine should fail that replica everywhere.
	EventStalled
	// EventClosed: the connection is gone (Reason says how).
	EventClosed
	// EventJoinStarted: Member is being brought into the live connection.
	EventJoinStarted
	// EventJoinCompleted: Member caught up and is a backup again.
	EventJoinCompleted
	// EventJoinFailed: Member could not join (Reason says why).
	EventJoinFailed
	// EventFailoverDone: the first segment after a failover reached the
	// client; Stall is the gap since the last one before it.
	EventFailoverDone
)

var eventNames = [...]string{"", "established", "member-removed", "failover", "diverged", "stalled", "closed",
	"join-started", "join-completed", "join-failed", "failover-done"}

// String returns the kind's name.
func (k EventKind) String() string {
	if int(k) < len(eventNames) {
		return eventNames[k]
	}
	return fmt.Sprintf("event(%d)", k)
}

// Reason says why a member left or a connection closed.
type Reason uint8

// Reasons.
const (
	ReasonNone           Reason = iota
	ReasonRST                   // the replica reset the connection alone
	ReasonLoneFIN               // the replica closed at an offset the others did not
	ReasonDiverged              // its output differed from the primary's
	ReasonStalled               // no progress while its peers progressed
	ReasonReplicaDown           // the engine failed the replica (probe, carrier, port gone)
	ReasonSynTimeout            // no SYN-ACK within the wait
	ReasonOptionMismatch        // its SYN-ACK options cannot be reconciled with the primary's
	ReasonLate                  // it answered the SYN after the connection moved on
	ReasonDisabled              // an operator took the replica out
	ReasonHoldOverflow          // it lagged so far that its output could not be held
	ReasonClientRST             // the client reset the connection
	ReasonNoReplica             // no replica left to serve the connection
	ReasonClosed                // both sides closed and TIME_WAIT ended
	ReasonIdle                  // idle timeout
	ReasonEmbryonic             // the handshake never completed
	ReasonJoinTimeout           // a rejoin did not catch up in time
	ReasonJoinMismatch          // the replayed output differs from what the client got
	ReasonJoinLagging           // the joiner held back so much output that it had to go
	ReasonClosing               // the connection began closing during a rejoin
	ReasonTolerated             // output differed before the client's ACK (tolerant mode)
	ReasonLogDropped            // the input log a join needed was given up
)

var reasonNames = [...]string{"", "rst", "lone-fin", "diverged", "stalled", "replica-down", "syn-timeout",
	"option-mismatch", "late", "disabled", "hold-overflow", "client-rst", "no-replica", "closed", "idle", "embryonic",
	"join-timeout", "join-mismatch", "join-lagging", "closing", "tolerated", "log-dropped"}

// String returns the reason's name.
func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", r)
}

// Event is one thing that happened to a connection.
type Event struct {
	Kind   EventKind
	Member int // member index (Conn.MemberID maps it to the replica), -1 if none
	From   int // EventFailover: the previous primary's member index
	Reason Reason
	Offset uint32 // EventDiverged: view sequence number of the first differing byte
	// Stall (EventFailoverDone) is the time between the last segment the
	// client got before the failover and the first one after it.
	Stall time.Duration
	// Lag (EventStalled) says how the member fell behind its peers.
	Lag  Lag
	Time time.Time
}

// Lag says how a stalled member fell behind its peers.
type Lag uint8

// Lags.
const (
	LagNone   Lag = iota
	LagOutput     // it produced less output than its peers
	LagAck        // it acknowledged less of the client's data than its peers
	LagWindow     // its receive window stayed shut while its peers' were open
)

var lagNames = [...]string{"", "output", "ack", "window"}

// String returns the lag's name.
func (l Lag) String() string {
	if int(l) < len(lagNames) {
		return lagNames[l]
	}
	return fmt.Sprintf("lag(%d)", l)
}

// Params are the knobs a connection runs with; one Params is shared by many
// connections and must not change while they use it.
type Params struct {
	// Immediate selects the immediate release policy; false is matched.
	Immediate    bool
	SynAckWait   time.Duration
	FinWait      time.Duration
	TimeWait     time.Duration
	Idle         time.Duration
	StallTimeout time.Duration
	// Embryonic bounds how long a connection may stay in the handshake.
	Embryonic time.Duration
	MaxHold   int
	// Hold accounts the output held by all connections sharing these Params.
	Hold *HoldBudget

	// LogMax bounds each connection's input log (the client's bytes since
	// the SYN, kept so that a recovered replica can be replayed into the
	// connection); 0 keeps no log and makes connections not re-joinable.
	LogMax int
	// Log accounts the input logs of all connections.
	Log *HoldBudget
	// JoinTimeout bounds a rejoin from SYN to caught up.
	JoinTimeout time.Duration
	// Tolerant selects semi-active-tolerant replication: a backup whose
	// output differs only before the client's acknowledged point stays a
	// failover candidate. False is strict active replication.
	Tolerant bool
}

// HoldBudget is the total held-output budget shared by connections. The
// dataplane runs connections on one goroutine, so it needs no lock.
type HoldBudget struct {
	Used, Max int64
}

// DefaultParams returns Params with the dataplane's defaults.
func DefaultParams() *Params {
	return &Params{
		SynAckWait:   200 * time.Millisecond,
		FinWait:      300 * time.Millisecond,
		TimeWait:     30 * time.Second,
		Idle:         2 * time.Hour,
		StallTimeout: 300 * time.Millisecond,
		Embryonic:    5 * time.Second,
		MaxHold:      4 << 20,
		Hold:         &HoldBudget{Max: 512 << 20},
		LogMax:       1 << 20,
		Log:          &HoldBudget{Max: 256 << 20},
		JoinTimeout:  10 * time.Second,
	}
}
