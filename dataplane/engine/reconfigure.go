package engine

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/failover"
	"github.com/ftbridge/ftbridge/dataplane/pkt"
)

// ErrRestartNeeded is returned by Reconfigure for a change it cannot apply
// to a running engine (today: another uplink). The caller restarts the
// engine with the new configuration instead.
var ErrRestartNeeded = errors.New("engine: this change needs a dataplane restart")

// Reconfigure applies a new configuration to the running engine without
// touching the connections the change does not concern:
//
//   - health, timers and limits take effect at once (connections keep
//     running; new timers apply from their next event);
//   - a service's release, rejoin and replication policies apply to its
//     live connections too;
//   - a new service starts taking connections; a removed service takes no
//     new ones, and its live connections run on until they close;
//   - a new replica (a name not seen before, or a known name on another
//     interface) is opened and probed like any recovered one; a removed
//     replica leaves its connections as if it had failed (a backup takes
//     over where it was primary);
//   - the probe source, the service MAC and the ready gate change in place.
//
// Another uplink returns ErrRestartNeeded and changes nothing.
func (e *Engine) Reconfigure(ctx context.Context, cfg Config) error {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.Loops != e.loops {
		return ErrRestartNeeded
	}
	var err error
	var ctrs []*PortCounters
	if derr := e.do(ctx, func() {
		err = e.reconfigure(cfg)
		for _, r := range e.replicas {
			ctrs = append(ctrs, r.counters())
		}
	}); derr != nil {
		return derr
	}
	if err != nil {
		return err
	}
	// The other loops make the same changes to their own sockets and
	// connections; the replicas' state follows from loop 0 at its next
	// turn.
	if err := e.forEachFollower(ctx, func(l *Engine) error { return l.reconfigureFollower(cfg, ctrs) }); err != nil {
		return err
	}
	if len(e.followers) == 0 {
		return nil
	}
	// What loop 0 posted while a follower had not yet added a replica
	// was lost on it: post everything again.
	return e.do(ctx, e.resync)
}

// reconfigureFollower is a follower's part of Reconfigure: ctrs are loop
// 0's replica counters, by id.
func (e *Engine) reconfigureFollower(cfg Config, ctrs []*PortCounters) error {
	if err := e.reconfigure(cfg); err != nil {
		return err
	}
	for i, r := range e.replicas {
		if i < len(ctrs) && r.shared != ctrs[i] {
			r.shared = ctrs[i]
			if r.port != nil {
				r.port.ctr = ctrs[i]
			}
		}
	}
	return nil
}

func (e *Engine) reconfigure(cfg Config) error {
	if cfg.Uplink != e.cfg.Uplink {
		return ErrRestartNeeded
	}
	old := e.cfg
	e.cfg = cfg
	e.rejoinDirty = true // services, replicas or policies may have changed
	if e.probeSrc != cfg.ProbeSource {
		e.probeSrc = cfg.ProbeSource
		if e.loops > 1 {
			// The filters send the probes' answers to loop 0 by address.
			e.refilter()
		}
	}
	e.setBudgets(cfg)
	if mac := pkt.MAC(cfg.VIPMAC); mac.IsZero() {
		e.vipMAC = e.uplink.mac
	} else {
		e.vipMAC = mac
	}

	// Services: update in place by address and port, add new ones, retire
	// the ones that went (their connections keep their entry).
	e.vips = make(map[netip.Addr]bool)
	seen := make(map[netip.AddrPort]bool)
	for _, s := range cfg.Services {
		e.vips[s.Address] = true
		for _, p := range s.Ports {
			ap := netip.AddrPortFrom(s.Address, p)
			seen[ap] = true
			if i, ok := e.svcIndex[ap]; ok {
				sv := &e.services[i]
				e.setParams(sv.params, cfg, s)
				sv.rejoin, sv.retired = s.Rejoin, false
				continue
			}
			if len(e.services) >= maxServices {
				// Retired services keep their index while their
				// connections live; so many changes need a restart.
				return ErrRestartNeeded
			}
			params := &failover.Params{}
			e.setParams(params, cfg, s)
			e.svcIndex[ap] = len(e.services)
			e.services = append(e.services, service{addr: ap, params: params, rejoin: s.Rejoin})
			for _, r := range e.replicas {
				r.addService()
			}
		}
	}
	for i := range e.services {
		if !seen[e.services[i].addr] {
			// Its live connections still need the address answered.
			e.services[i].retired = true
			e.vips[e.services[i].addr.Addr()] = true
		}
	}

	// Replicas: match by name and interface.
	keep := make(map[int]bool)
	var order []int
	for _, rc := range cfg.Replicas {
		r := e.replicaNamed(rc.Name, rc.Interface)
		if r == nil {
			r = newReplica(len(e.replicas), rc, len(e.services))
			r.ready = !cfg.ReadyGate
			// (A follower's counters point to loop 0's once
			// reconfigureFollower has run.)
			if e.openReplicaPort(r) {
				r.carrier = true
			}
			e.replicas = append(e.replicas, r)
			if e.leader == nil {
				e.publish(Event{Kind: EventReplicaAdmin, Replica: r.name, Reason: "added"})
			}
		}
		keep[r.id] = true
		order = append(order, r.id)
	}
	for _, r := range e.replicas {
		if keep[r.id] || r.removed {
			continue
		}
		r.removed = true
		r.admin = AdminDisabled
		e.failReplicaConns(r, -1, failover.ReasonDisabled, false)
		if r.port != nil {
			r.port.p.Close()
			r.port = nil
		}
		r.up = false
		if e.leader == nil {
			e.publish(Event{Kind: EventReplicaAdmin, Replica: r.name, Reason: "removed"})
		}
	}
	// Keep the operator's promotion if the promoted replica stays.
	if len(e.order) > 0 && keep[e.order[0]] && e.order[0] != order[0] && old.Replicas[0].Name == cfg.Replicas[0].Name {
		order = append([]int{e.order[0]}, without(order, e.order[0])...)
	}
	e.order = order
	if old.ReadyGate != cfg.ReadyGate && !cfg.ReadyGate {
		for _, r := range e.replicas {
			r.ready = true
		}
	}
	if e.leader == nil {
		e.gratuitousARP()
		e.nextProbe = time.Time{}
	}
	return nil
}

// setParams fills a service's connection parameters from the configuration.
func (e *Engine) setParams(p *failover.Params, cfg Config, s ServiceConfig) {
	*p = failover.Params{
		Immediate:    s.Release == ReleaseImmediate,
		SynAckWait:   cfg.Timers.SynAckWait,
		FinWait:      cfg.Timers.FinWait,
		TimeWait:     cfg.Timers.TimeWait,
		Idle:         cfg.Timers.Idle,
		StallTimeout: cfg.Health.StallTimeout,
		Embryonic:    5 * time.Second,
		MaxHold:      cfg.Limits.MaxHoldBytes,
		Hold:         &e.hold,
		LogMax:       logMax(cfg.Limits.MaxLogBytes, s.Rejoin),
		Log:          &e.logBudget,
		JoinTimeout:  cfg.Timers.JoinTimeout,
		Tolerant:     s.Replication == ReplicationTolerant,
	}
}

// replicaNamed finds a replica that is not removed by name and interface.
func (e *Engine) replicaNamed(name, ifname string) *replica {
	for _, r := range e.replicas {
		if !r.removed && r.name == name && r.ifname == ifname {
			return r
		}
	}
	return nil
}

func without(ids []int, id int) []int {
	out := ids[:0:0]
	for _, x := range ids {
		if x != id {
			out = append(out, x)
		}
	}
	return out
}

// refilter gives every socket of the loop the filter for the current probe
// source. A socket that refuses keeps its old one: a probe answer may then
// reach another loop, which ignores it, and the replica is judged on its
// traffic and ARP.
func (e *Engine) refilter() {
	prog := shardFilter(e.shard, e.loops, e.probeSrc)
	e.uplink.p.SetFilter(prog)
	for _, r := range e.replicas {
		if r.port != nil {
			r.port.p.SetFilter(prog)
		}
	}
}
