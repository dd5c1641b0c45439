package engine

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/failover"
)

// ReplicaStatus is one replica as the dataplane sees it.
type ReplicaStatus struct {
	Name      string    `json:"name"`
	Interface string    `json:"interface"`
	Up        bool      `json:"up"`
	Admin     string    `json:"admin"`
	Carrier   bool      `json:"carrier"`
	Port      bool      `json:"port_present"`
	Preferred bool      `json:"preferred"`
	Services  []string  `json:"services_up"`
	Conns     int       `json:"connections"`
	Primaries int       `json:"primary_of"`
	ProbeRTT  float64   `json:"probe_rtt_ms"`
	Since     time.Time `json:"since"`
	Reason    string    `json:"reason,omitempty"`
	RxFrames  uint64    `json:"rx_frames"`
	TxFrames  uint64    `json:"tx_frames"`
	RxBytes   uint64    `json:"rx_bytes"`
	TxBytes   uint64    `json:"tx_bytes"`
	// RxKernelDrops: frames the kernel dropped on the port because the
	// loop fell behind (socket receive buffer full).
	RxKernelDrops uint64 `json:"rx_kernel_drops"`

	id int // the replica's id, to merge the loops' counts
}

// MemberStatus is one replica's leg of a connection.
type MemberStatus struct {
	Replica string `json:"replica"`
	Live    bool   `json:"live"`
	Primary bool   `json:"primary"`
	Joining bool   `json:"joining,omitempty"`
}

// ConnStatus is one connection.
type ConnStatus struct {
	Client    string         `json:"client"`
	Service   string         `json:"service"`
	State     string         `json:"state"`
	Primary   string         `json:"primary,omitempty"`
	Members   []MemberStatus `json:"members"`
	BytesIn   uint64         `json:"bytes_in"`
	BytesOut  uint64         `json:"bytes_out"`
	Failovers int            `json:"failovers"`
	Diverged  bool           `json:"diverged"`
	Held      int            `json:"held_bytes"`
	// Redundancy is the number of live members; Rejoinable says whether
	// a recovered replica can still be brought in.
	Redundancy int       `json:"redundancy"`
	Rejoinable bool      `json:"rejoinable"`
	Created    time.Time `json:"created"`
	// Detail is the connection's sequence state in words, for looking
	// into a stuck connection (failover.Conn.Detail).
	Detail string `json:"detail,omitempty"`
}

// Snapshot is the dataplane's state at one moment.
type Snapshot struct {
	Time        time.Time       `json:"time"`
	Started     time.Time       `json:"started"`
	Replicas    []ReplicaStatus `json:"replicas"`
	Connections int             `json:"connections"`
	// Loops counts the connections on each dataplane loop (Config.Loops),
	// loop 0 first: how evenly the flow hash spreads them.
	Loops []int        `json:"loops"`
	Conns []ConnStatus `json:"conns,omitempty"`
	// ByRedundancy counts established connections by their number of
	// live replicas.
	ByRedundancy map[int]int       `json:"by_redundancy"`
	Rejoins      RejoinCounts      `json:"rejoins"`
	Drops        map[string]uint64 `json:"drops"`
	Failovers    uint64            `json:"failovers"`
	// LastMemberKept counts connections that kept a replica failed on
	// soft evidence as their last live member; LastResortConns new
	// connections given to such replicas when none was healthy.
	LastMemberKept  uint64 `json:"last_member_kept"`
	LastResortConns uint64 `json:"last_resort_conns"`
	Divergences     uint64 `json:"divergences"`
	HeldBytes       int64  `json:"held_bytes"`
	Uplink          struct {
		RxFrames, TxFrames, RxBytes, TxBytes uint64
	} `json:"uplink"`
}

// Snapshot returns the dataplane's state, with up to maxConns connections
// (sorted by client address) when maxConns > 0.
func (e *Engine) Snapshot(ctx context.Context, maxConns int) (Snapshot, error) {
	var s Snapshot
	var part connsPart
	if err := e.do(ctx, func() {
		s = e.snapshot()
		part = e.connsPart(maxConns)
	}); err != nil {
		return s, err
	}
	parts := []connsPart{part}
	if err := e.forEachFollower(ctx, func(l *Engine) error {
		parts = append(parts, l.connsPart(maxConns))
		return nil
	}); err != nil {
		return s, err
	}
	s.merge(parts, maxConns)
	return s, nil
}

// connsPart is one loop's share of a Snapshot: its connections.
type connsPart struct {
	count        int
	per, prim    []int // live members and primaries by replica id
	conns        []ConnStatus
	byRedundancy map[int]int
	held         int64
}

func (e *Engine) connsPart(maxConns int) connsPart {
	p := connsPart{
		count: len(e.conns), per: make([]int, len(e.replicas)), prim: make([]int, len(e.replicas)),
		byRedundancy: map[int]int{}, held: e.hold.Used,
	}
	for _, ce := range e.conns {
		c := ce.conn
		for m := 0; m < c.Members(); m++ {
			if c.MemberLive(m) {
				p.per[c.MemberID(m)]++
			}
		}
		if pr := c.Primary(); pr >= 0 {
			p.prim[c.MemberID(pr)]++
		}
		if c.State() == failover.StateEstablished {
			p.byRedundancy[c.Redundancy()]++
		}
	}
	if maxConns > 0 {
		for _, ce := range e.conns {
			p.conns = append(p.conns, e.connStatus(ce.conn))
		}
		sortConns(p.conns)
		if len(p.conns) > maxConns {
			p.conns = p.conns[:maxConns]
		}
	}
	return p
}

func sortConns(cs []ConnStatus) {
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].Client != cs[j].Client {
			return cs[i].Client < cs[j].Client
		}
		return cs[i].Service < cs[j].Service
	})
}

// merge adds the loops' connections to s (whose Replicas are in replica id
// order, removed ones left out: ids are matched by name).
func (s *Snapshot) merge(parts []connsPart, maxConns int) {
	s.ByRedundancy = map[int]int{}
	for _, p := range parts {
		s.Connections += p.count
		s.Loops = append(s.Loops, p.count)
		s.HeldBytes += p.held
		for k, v := range p.byRedundancy {
			s.ByRedundancy[k] += v
		}
		for i := range s.Replicas {
			id := s.Replicas[i].id
			if id < len(p.per) {
				s.Replicas[i].Conns += p.per[id]
				s.Replicas[i].Primaries += p.prim[id]
			}
		}
		s.Conns = append(s.Conns, p.conns...)
	}
	if len(parts) > 1 {
		sortConns(s.Conns)
	}
	if len(s.Conns) > maxConns {
		s.Conns = s.Conns[:max(maxConns, 0)]
	}
}

// snapshot returns the state that loop 0 holds for the whole engine: the
// replicas and the counters, without the connections (see connsPart).
func (e *Engine) snapshot() Snapshot {
	s := Snapshot{Time: e.now, Started: e.started}
	for _, r := range e.replicas {
		if r.removed {
			continue
		}
		ctr := r.counters()
		rs := ReplicaStatus{
			id:   r.id,
			Name: r.name, Interface: r.ifname, Up: r.up, Admin: r.admin.String(), Carrier: r.carrier,
			Port: r.port != nil, Preferred: e.primaryReplica() == r,
			ProbeRTT: float64(r.rtt) / float64(time.Millisecond), Since: r.lastChange, Reason: r.reason,
			RxFrames: ctr.RxFrames.Load(), TxFrames: ctr.TxFrames.Load(),
			RxBytes: ctr.RxBytes.Load(), TxBytes: ctr.TxBytes.Load(),
			RxKernelDrops: ctr.RxKernelDrops.Load(),
		}
		for si, up := range r.svcUp {
			if up {
				rs.Services = append(rs.Services, e.services[si].addr.String())
			}
		}
		s.Replicas = append(s.Replicas, rs)
	}
	s.Rejoins = RejoinCounts{
		Started:   e.counters.RejoinsStarted.Load(),
		Completed: e.counters.RejoinsCompleted.Load(),
		Failed:    e.counters.RejoinsFailed.Load(),
	}
	s.Drops = e.counters.DropCounts()
	s.Failovers = e.counters.Failovers.Load()
	s.LastMemberKept = e.counters.LastMemberKept.Load()
	s.LastResortConns = e.counters.LastResortConns.Load()
	s.Divergences = e.counters.Divergences.Load()
	s.Uplink.RxFrames = e.upCtr.RxFrames.Load()
	s.Uplink.TxFrames = e.upCtr.TxFrames.Load()
	s.Uplink.RxBytes = e.upCtr.RxBytes.Load()
	s.Uplink.TxBytes = e.upCtr.TxBytes.Load()
	return s
}

func (e *Engine) connStatus(c *failover.Conn) ConnStatus {
	k := c.Key()
	cs := ConnStatus{
		Client: k.Client.String(), Service: k.Service.String(), State: c.State().String(),
		BytesIn: c.BytesIn, BytesOut: c.BytesOut, Failovers: int(c.Failovers), Diverged: c.Diverged,
		Held: c.HeldBytes(), Created: c.Created(), Redundancy: c.Redundancy(), Rejoinable: c.Rejoinable(),
		Detail: c.Detail(e.now),
	}
	for m := 0; m < c.Members(); m++ {
		ms := MemberStatus{Replica: e.replicas[c.MemberID(m)].name, Live: c.MemberLive(m), Primary: m == c.Primary(),
			Joining: c.MemberJoining(m)}
		if ms.Primary {
			cs.Primary = ms.Replica
		}
		cs.Members = append(cs.Members, ms)
	}
	return cs
}

// SetAdmin changes an operator setting of the named replica. Disabling
// takes it out of every connection at once (a backup takes over where it
// was primary); draining keeps its connections but gives it no new ones.
func (e *Engine) SetAdmin(ctx context.Context, name string, a Admin) error {
	return e.doReplica(ctx, name, func(r *replica) error {
		if r.admin == a {
			return nil
		}
		r.admin = a
		e.rejoinDirty = true
		e.publish(Event{Kind: EventReplicaAdmin, Replica: name, Reason: a.String()})
		if a == AdminDisabled {
			e.failReplicaConns(r, -1, failover.ReasonDisabled, false)
		}
		return nil
	})
}

// Promote makes the named replica the preferred primary: it is tried first
// for new connections, and becomes primary of every live connection it is
// a member of (a planned switchover).
func (e *Engine) Promote(ctx context.Context, name string) error {
	return e.doReplica(ctx, name, func(r *replica) error {
		if !r.serving() {
			return fmt.Errorf("replica %q is not serving", name)
		}
		// Move it to the front of the preference order.
		order := []int{r.id}
		for _, id := range e.order {
			if id != r.id {
				order = append(order, id)
			}
		}
		e.order = order
		e.logOp(shardOp{kind: opPromote, id: r.id})
		for _, ce := range e.conns {
			ce.conn.Promote(e.now, r.id, e)
			e.schedule(ce)
		}
		return nil
	})
}

// doReplica runs f on the loop with the named replica and returns f's
// error, or the loop's if ctx ended first.
func (e *Engine) doReplica(ctx context.Context, name string, f func(r *replica) error) error {
	var err error
	if derr := e.do(ctx, func() {
		r := e.replicaByName(name)
		if r == nil {
			err = fmt.Errorf("no replica %q", name)
			return
		}
		err = f(r)
		e.flushAll()
	}); derr != nil {
		return derr
	}
	return err
}

func (e *Engine) replicaByName(name string) *replica {
	for _, r := range e.replicas {
		if r.name == name {
			return r
		}
	}
	return nil
}

// RejoinCounts count rejoins of recovered replicas into live connections.
type RejoinCounts struct {
	Started   uint64 `json:"started"`
	Completed uint64 `json:"completed"`
	Failed    uint64 `json:"failed"`
}

// SetReady reports the outcome of the named replica's application-state
// hook (Config.ReadyGate): ok lets it serve new connections and join live
// ones; not ok keeps it out until it comes up again.
func (e *Engine) SetReady(ctx context.Context, name string, ok bool) error {
	return e.doReplica(ctx, name, func(r *replica) error {
		r.ready = ok
		e.rejoinDirty = true
		reason := "state hook passed"
		if !ok {
			reason = "state hook failed"
		}
		e.publish(Event{Kind: EventReplicaReady, Replica: name, Reason: reason})
		if ok {
			e.maybeRejoin(r, -1, false)
		}
		return nil
	})
}

// Rejoin brings the named replica into every live connection it could
// serve and is not serving (services whose policy is auto or manual). It
// returns the number of rejoins started.
func (e *Engine) Rejoin(ctx context.Context, name string) (int, error) {
	var n int
	err := e.doReplica(ctx, name, func(r *replica) error {
		n = e.maybeRejoin(r, -1, true)
		return nil
	})
	if err != nil {
		return n, err
	}
	err = e.forEachFollower(ctx, func(l *Engine) error {
		if r := l.replicaByName(name); r != nil {
			n += l.maybeRejoin(r, -1, true)
			l.flushAll()
		}
		return nil
	})
	return n, err
}
