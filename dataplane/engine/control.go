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
	Conns       []ConnStatus    `json:"conns,omitempty"`
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
	err := e.do(ctx, func() { s = e.snapshot(maxConns) })
	return s, err
}

func (e *Engine) snapshot(maxConns int) Snapshot {
	s := Snapshot{Time: e.now, Started: e.started, Connections: len(e.conns)}
	per := make([]int, len(e.replicas))
	prim := make([]int, len(e.replicas))
	for _, ce := range e.conns {
		c := ce.conn
		for m := 0; m < c.Members(); m++ {
			if c.MemberLive(m) {
				per[c.MemberID(m)]++
			}
		}
		if p := c.Primary(); p >= 0 {
			prim[c.MemberID(p)]++
		}
	}
	for i, r := range e.replicas {
		if r.removed {
			continue
		}
		rs := ReplicaStatus{
			Name: r.name, Interface: r.ifname, Up: r.up, Admin: r.admin.String(), Carrier: r.carrier,
			Port: r.port != nil, Preferred: e.primaryReplica() == r, Conns: per[i], Primaries: prim[i],
			ProbeRTT: float64(r.rtt) / float64(time.Millisecond), Since: r.lastChange, Reason: r.reason,
			RxFrames: r.ctr.RxFrames.Load(), TxFrames: r.ctr.TxFrames.Load(),
			RxBytes: r.ctr.RxBytes.Load(), TxBytes: r.ctr.TxBytes.Load(),
			RxKernelDrops: r.ctr.RxKernelDrops.Load(),
		}
		for si, up := range r.svcUp {
			if up {
				rs.Services = append(rs.Services, e.services[si].addr.String())
			}
		}
		s.Replicas = append(s.Replicas, rs)
	}
	if maxConns > 0 {
		for _, ce := range e.conns {
			s.Conns = append(s.Conns, e.connStatus(ce.conn))
		}
		sort.Slice(s.Conns, func(i, j int) bool {
			if s.Conns[i].Client != s.Conns[j].Client {
				return s.Conns[i].Client < s.Conns[j].Client
			}
			return s.Conns[i].Service < s.Conns[j].Service
		})
		if len(s.Conns) > maxConns {
			s.Conns = s.Conns[:maxConns]
		}
	}
	s.ByRedundancy = map[int]int{}
	for _, ce := range e.conns {
		if ce.conn.State() == failover.StateEstablished {
			s.ByRedundancy[ce.conn.Redundancy()]++
		}
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
	s.HeldBytes = e.hold.Used
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
	return n, err
}
