package engine

import (
	"sync"
	"sync/atomic"
	"time"
)

// EventKind names what an Event reports.
type EventKind string

// Event kinds.
const (
	EventReplicaUp    EventKind = "replica-up"
	EventReplicaDown  EventKind = "replica-down"
	EventReplicaAdmin EventKind = "replica-admin"
	EventPortGone     EventKind = "port-gone"
	EventPortBack     EventKind = "port-back"
	EventFailover     EventKind = "failover"
	// EventFailoverDone: the client got its first segment after a
	// failover; StallMS is the gap since the last one before it.
	EventFailoverDone  EventKind = "failover-done"
	EventMemberRemoved EventKind = "member-removed"
	EventDiverged      EventKind = "diverged"
	EventStalled       EventKind = "stalled"
	// EventLastMemberKept: a replica failed on soft evidence (probe
	// silence, a stall) stays in the connections it alone still serves.
	EventLastMemberKept EventKind = "last-member-kept"
	EventReplicaICMP    EventKind = "replica-icmp"
	// EventReplicaNeedsReady: the replica came up and waits for SetReady
	// (the management plane runs the application-state hook).
	EventReplicaNeedsReady EventKind = "replica-needs-ready"
	EventReplicaReady      EventKind = "replica-ready"
	EventRejoinStarted     EventKind = "rejoin-started"
	EventRejoinCompleted   EventKind = "rejoin-completed"
	EventRejoinFailed      EventKind = "rejoin-failed"
	EventConnRefused       EventKind = "conn-refused"
	EventConnEstablished   EventKind = "conn-established"
	EventConnClosed        EventKind = "conn-closed"
	EventStarted           EventKind = "started"
	EventStopped           EventKind = "stopped"
)

// Event is one thing the dataplane reports to the management plane.
type Event struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Kind    EventKind `json:"kind"`
	Replica string    `json:"replica,omitempty"`
	// From is the previous primary of a failover.
	From   string `json:"from,omitempty"`
	Conn   string `json:"conn,omitempty"`
	Port   string `json:"port,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Offset is the view sequence number where a divergence began.
	Offset uint32 `json:"offset,omitempty"`
	// StallMS is a failover's client-facing stall (EventFailoverDone).
	StallMS float64 `json:"stall_ms,omitempty"`
	// Detail is free text.
	Detail string `json:"detail,omitempty"`
}

// eventHub fans events out to subscribers without ever blocking the loop:
// a subscriber that does not keep up loses events (counted), never the
// dataplane's time.
type eventHub struct {
	mu      sync.Mutex
	subs    map[chan Event]struct{}
	seq     uint64
	dropped atomic.Uint64
}

func (h *eventHub) publish(ev Event) {
	h.mu.Lock()
	h.seq++
	ev.Seq = h.seq
	for ch := range h.subs {
		select {
		case ch <- ev:
		default:
			h.dropped.Add(1)
		}
	}
	h.mu.Unlock()
}

// Subscribe returns a channel that receives events from now on, buffered to
// n, and a function that ends the subscription and closes the channel.
func (e *Engine) Subscribe(n int) (<-chan Event, func()) {
	ch := make(chan Event, max(n, 1))
	h := e.events
	h.mu.Lock()
	if h.subs == nil {
		h.subs = make(map[chan Event]struct{})
	}
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		if _, ok := h.subs[ch]; ok {
			delete(h.subs, ch)
			close(ch) // ends the subscriber's range loop
		}
		h.mu.Unlock()
	}
}
