package engine

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/failover"
	"github.com/ftbridge/ftbridge/dataplane/link"
	"github.com/ftbridge/ftbridge/dataplane/pkt"
)

// replica is one replica port and what the box knows of its health.
type replica struct {
	id     int
	name   string
	ifname string
	port   *port
	ctr    PortCounters
	// shared: loop 0's counters of this replica, which every loop counts
	// into (nil on loop 0; see counters).
	shared *PortCounters
	// portGen counts the times loop 0 closed or reopened the port (the
	// other loops follow it); probedAt is when the last probes left.
	portGen  uint32
	probedAt time.Time
	// wantPort (loops other than 0): loop 0 has the port open, so this
	// loop should too.
	wantPort bool
	peer     pkt.MAC // the replica's MAC, learned from its frames
	carrier  bool
	admin    Admin

	// up is the replica-wide verdict (carrier, ARP, no stall).
	up         bool
	okStreak   int
	failStreak int
	arpSeen    bool      // an ARP reply arrived in the current probe round
	heard      bool      // any frame from the replica arrived in the current round
	heardAt    time.Time // when the last one did
	holdUntil  time.Time
	holdFactor int
	lastChange time.Time
	reason     string
	// downSoft: the replica is down on soft evidence only (probe
	// silence, not a lost carrier or a vanished port); svcRefused[s]:
	// its listener on service s answered a probe with an RST. Such a
	// replica is a last resort for new connections (lastResort).
	downSoft   bool
	svcRefused []bool
	// ready: the application-state hook passed since it last came up
	// (always true without Config.ReadyGate).
	ready bool
	// removed by Reconfigure: its id stays taken, it serves nothing.
	removed bool

	// Per service port: the TCP probe's verdict.
	svcUp     []bool
	svcOK     []int
	svcFail   []int
	svcSeen   []bool
	probePort []uint16                 // source port of the current probe per service
	prevPorts [][probeMemory]sentProbe // the probes before it: a slow answer still counts
	srtt      time.Duration            // smoothed probe round trip
	svcLast   []time.Time
	lastARP   time.Time
	rtt       time.Duration
}

func newReplica(id int, rc ReplicaConfig, nsvc int) *replica {
	return &replica{
		id: id, name: rc.Name, ifname: rc.Interface,
		svcUp: make([]bool, nsvc), svcOK: make([]int, nsvc), svcFail: make([]int, nsvc),
		svcSeen: make([]bool, nsvc), probePort: make([]uint16, nsvc), svcRefused: make([]bool, nsvc),
		prevPorts: make([][probeMemory]sentProbe, nsvc), svcLast: make([]time.Time, nsvc),
		reason: "starting",
	}
}

// counters returns the port counters every loop counts this replica's
// traffic into.
func (r *replica) counters() *PortCounters {
	if r.shared != nil {
		return r.shared
	}
	return &r.ctr
}

// addService grows the per-service state for a service added live.
func (r *replica) addService() {
	r.svcUp = append(r.svcUp, false)
	r.svcOK = append(r.svcOK, 0)
	r.svcFail = append(r.svcFail, 0)
	r.svcSeen = append(r.svcSeen, false)
	r.svcRefused = append(r.svcRefused, false)
	r.probePort = append(r.probePort, 0)
	r.prevPorts = append(r.prevPorts, [probeMemory]sentProbe{})
	r.svcLast = append(r.svcLast, time.Time{})
}

// eligible reports whether the replica may take a new connection on service svc.
func (r *replica) eligible(svc int, now time.Time) bool {
	return !r.removed && r.up && r.ready && r.admin == AdminEnabled && r.port != nil && r.svcUp[svc] && !now.Before(r.holdUntil)
}

// lastResort reports whether the replica may take a new connection on
// service svc when no replica is eligible: it is down on probe silence
// alone (its carrier is up, its port there, its listener never refused a
// probe), and it is not held out after a stall. When every replica falls
// silent at once the likelier cause is on the box's side (a starved
// machine, a congested segment): refusing the client fails it for
// certain, offering the connection may well work.
func (r *replica) lastResort(svc int, now time.Time) bool {
	return !r.removed && (r.up || r.downSoft) && r.carrier && r.ready && r.admin == AdminEnabled &&
		r.port != nil && (r.svcUp[svc] || !r.svcRefused[svc]) && !now.Before(r.holdUntil)
}

// serving reports whether the replica may keep serving connections.
func (r *replica) serving() bool {
	return r.up && r.admin != AdminDisabled && r.port != nil
}

// runProbes starts a probe round on every replica port when one is due,
// judging the previous round first.
func (e *Engine) runProbes() {
	if e.now.Before(e.nextProbe) {
		return
	}
	// If the box itself did not run for a while (a starved machine), the
	// replicas' silence says nothing about them.
	late := !e.nextProbe.IsZero() && e.now.Sub(e.nextProbe) > e.cfg.Health.Interval
	e.nextProbe = e.now.Add(e.cfg.Health.Interval)
	if late {
		e.overloaded()
		for _, r := range e.replicas {
			if r.port != nil {
				r.port.backlogged = true
			}
		}
	}
	for _, r := range e.replicas {
		if r.removed {
			continue
		}
		e.judgeRound(r)
		e.sendProbes(r)
	}
}

// judgeRound turns the previous round's answers into state changes.
func (e *Engine) judgeRound(r *replica) {
	h := e.cfg.Health
	// Frames the kernel dropped on the port (its receive buffer was full)
	// may have been the answers: the round proves nothing.
	e.kernelDrops(r.port)
	e.followersHeard(r)
	// Frames from the replica prove its host alive as well as an ARP
	// reply does: a replica busy with a burst of connections answers those
	// while a probe answer may be late or lost in the crowd, and must not
	// be failed for it.
	good := (r.arpSeen || r.heard) && r.carrier && r.port != nil
	if r.heardAt.After(r.lastARP) {
		// When it was heard, not now: the replica-wide silence must
		// start where the service probes' does, or a blackout fails a
		// service a round before its replica.
		r.lastARP = r.heardAt
	}
	r.arpSeen, r.heard = false, false
	// A loop that fell behind may not have read the answers yet: such a
	// round proves nothing either way.
	backlogged := r.carrier && r.port != nil && r.port.backlogged
	unknown := !good && (backlogged || e.excused(r, r.lastARP))
	if r.port != nil {
		r.port.backlogged = false
	}
	// Failure is a matter of time without an answer, not of rounds
	// missed: a replica whose round trip exceeds the probe interval
	// answers every probe, one round late.
	silent := e.now.Sub(r.lastARP) > r.silentLimit(h)
	switch {
	case good:
		r.okStreak++
		r.failStreak = 0
	case !unknown && (silent || !r.carrier || r.port == nil):
		r.failStreak++
		r.okStreak = 0
	}
	switch {
	case r.up && r.failStreak >= h.FailAfter:
		why := "no ARP reply"
		if !r.carrier || r.port == nil {
			why = "link down"
		}
		e.setDown(r, why, failover.ReasonReplicaDown, why == "no ARP reply")
	case !r.up && r.okStreak >= h.RiseAfter && !e.now.Before(r.holdUntil):
		r.up = true
		e.rejoinDirty = true
		r.lastChange = e.now
		r.reason = ""
		e.publish(Event{Kind: EventReplicaUp, Replica: r.name})
		e.needReady(r)
		e.maybeRejoin(r, -1, false)
	}
	for s := range e.services {
		if r.svcSeen[s] {
			r.svcOK[s]++
			r.svcFail[s] = 0
		} else if r.probePort[s] != 0 && !backlogged && !e.excused(r, r.svcLast[s]) && e.now.Sub(r.svcLast[s]) > r.silentLimit(h) {
			// (The replica-wide verdict may be good, from its other
			// traffic, while the probe answers still wait in a backlog:
			// the service's own silence is judged on its own.)
			r.svcFail[s]++
			r.svcOK[s] = 0
		}
		r.svcSeen[s] = false
		switch {
		case r.svcUp[s] && r.svcFail[s] >= h.FailAfter:
			e.setServiceDown(r, s, "TCP probe unanswered", false)
		case !r.svcUp[s] && r.svcOK[s] >= h.RiseAfter:
			r.svcUp[s] = true
			r.svcRefused[s] = false
			e.rejoinDirty = true
			e.publish(Event{Kind: EventReplicaUp, Replica: r.name, Port: e.services[s].addr.String()})
			// A server that came back has lost its state: the hooks
			// must bring it in line before it serves again.
			e.needReady(r)
			e.maybeRejoin(r, s, false)
		}
	}
}

// setDown fails a replica for every connection at once.
// soft says the evidence is indirect (probe silence, a stall): the
// replica may still be serving, so connections whose last live member it
// is keep it (failReplicaConns).
func (e *Engine) setDown(r *replica, why string, reason failover.Reason, soft bool) {
	r.downSoft = soft
	if r.up {
		r.up = false
		r.lastChange = e.now
		r.reason = why
		e.publish(Event{Kind: EventReplicaDown, Replica: r.name, Reason: why})
	}
	r.okStreak = 0
	e.failReplicaConns(r, -1, reason, soft)
}

// setServiceDown fails a replica for one service port (its server there
// is gone while the host lives).
func (e *Engine) setServiceDown(r *replica, svc int, why string, refused bool) {
	r.svcRefused[svc] = refused
	if r.svcUp[svc] {
		r.svcUp[svc] = false
		e.publish(Event{Kind: EventReplicaDown, Replica: r.name, Port: e.services[svc].addr.String(), Reason: why})
	}
	r.svcOK[svc] = 0
	e.failReplicaConns(r, svc, failover.ReasonReplicaDown, true)
}

// failReplicaConns takes replica r out of its connections (of service svc,
// or all when svc < 0). On soft evidence (soft: probe silence or a stall,
// not a lost carrier, a vanished port or the replica's own reset) a
// connection whose last live member r is keeps it: removing it would reset
// the client for certain, keeping it loses nothing if r is really gone
// and saves the connection if r was only slow or briefly unreachable.
// New connections avoid r all the same.
func (e *Engine) failReplicaConns(r *replica, svc int, reason failover.Reason, soft bool) {
	e.logOp(shardOp{kind: opFail, id: r.id, svc: svc, reason: reason, soft: soft})
	rst := r.port != nil && r.carrier
	kept := 0
	for _, ce := range e.conns {
		if svc >= 0 && ce.svc != svc {
			continue
		}
		if soft && ce.conn.Redundancy() == 1 {
			if i := ce.conn.MemberIndex(r.id); i >= 0 && ce.conn.MemberLive(i) {
				kept++
				continue
			}
		}
		ce.conn.RemoveReplica(e.now, r.id, reason, rst, e)
		e.schedule(ce)
	}
	if kept > 0 {
		e.counters.LastMemberKept.Add(uint64(kept))
		e.publish(Event{Kind: EventLastMemberKept, Replica: r.name, Reason: reason.String(),
			Detail: fmt.Sprintf("%d connections keep it as their last live member", kept)})
	}
}

// runPendingFailures fails the replicas that connections found stalled.
func (e *Engine) runPendingFailures() {
	if e.leader != nil {
		// Loop 0 decides for the whole box.
		for _, pf := range e.pendingFail {
			e.reportStall(pf)
		}
		clear(e.pendingFail)
		e.pendingFail = e.pendingFail[:0]
		return
	}
	e.takeStalls()
	for len(e.pendingFail) > 0 {
		pf := e.pendingFail[0]
		e.pendingFail = e.pendingFail[1:]
		if pf.id >= len(e.replicas) {
			continue
		}
		r := e.replicas[pf.id]
		if pf.reason == failover.ReasonStalled && !r.up {
			// Already failed: a stall that more connections (or other
			// loops) reported for the same episode. Counting it again
			// would double the hold-down once per connection.
			continue
		}
		if pf.reason == failover.ReasonStalled && e.now.Sub(e.lastOverload()) < e.cfg.Health.StallTimeout {
			// The box itself fell behind (a flood, a starved machine)
			// within the stall window: the replica's silence may be
			// ours. Judge again when the box keeps up.
			continue
		}
		if pf.reason == failover.ReasonStalled {
			// A stalled replica's kernel still answers probes: hold it
			// out for a while, longer each time it repeats.
			if !r.holdUntil.IsZero() && e.now.Sub(r.holdUntil) > 16*e.cfg.Health.HoldDown {
				// Long enough without a stall: start over from one hold_down.
				r.holdFactor = 0
			}
			r.holdFactor = min(max(r.holdFactor*2, 1), 64)
			r.holdUntil = e.now.Add(time.Duration(r.holdFactor) * e.cfg.Health.HoldDown)
		}
		e.setDown(r, pf.detail, pf.reason, true)
	}
}

// sendProbes sends an ARP request for the service address and a TCP SYN to
// every service port, with the box's probe address as source.
func (e *Engine) sendProbes(r *replica) {
	if r.port == nil {
		return
	}
	vip := e.services[0].addr.Addr()
	buf := e.txBuf(r.port, smallTxBufSize)
	n := r.port.hdrRoom()
	pkt.EncodeEthernet(buf[n:], pkt.BroadcastMAC, r.port.mac, pkt.EtherTypeARP)
	pkt.EncodeARP(buf[n+pkt.EthernetLen:], pkt.ARPRequest, r.port.mac, e.probeSrc, pkt.MAC{}, vip)
	e.queue(r.port, buf[:n+pkt.EthernetLen+pkt.ARPLen])
	e.counters.ProbesSent.Add(1)
	r.probedAt = e.now
	if r.peer.IsZero() {
		return // the SYN needs the replica's MAC
	}
	for s := range e.services {
		// A fresh source port per round: answers to old rounds are
		// recognised by port and do not count twice.
		copy(r.prevPorts[s][1:], r.prevPorts[s][:probeMemory-1])
		r.probePort[s] = 33000 + uint16((int(e.counters.ProbesSent.Add(1))*7+s)%28000)
		r.prevPorts[s][0] = sentProbe{r.probePort[s], e.now}
		svc := e.services[s].addr
		h := failover.Header{Seq: uint32(e.now.UnixNano()), Flags: pkt.TCPFlagSyn, Window: 1024, MSS: 536, WScale: -1}
		e.sendTCP(r.port, r.peer, r.port.mac, netip.AddrPortFrom(e.probeSrc, r.probePort[s]), svc, &h, nil)
	}
	// Out now, not after the rest of the loop's turn (a rejoin sweep, a
	// replica failing out of many connections): a probe's silence is timed
	// from e.now.
	e.flush(r.port)
}

// probeReply handles a frame from a replica addressed to the probe source.
func (e *Engine) probeReply(r *replica, f *pkt.Frame) {
	t := f.TCP
	for s := range e.services {
		sent, ok := r.probeSentAt(s, t.DstPort())
		if !ok || t.SrcPort() != e.services[s].addr.Port() {
			continue
		}
		fl := t.Flags()
		switch {
		case fl.Has(pkt.TCPFlagRst):
			// No listener: the server process is gone. No need to wait
			// for more rounds.
			r.svcFail[s] = e.cfg.Health.FailAfter
			e.setServiceDown(r, s, "TCP probe refused (RST)", true)
		case fl.Has(pkt.TCPFlagSyn | pkt.TCPFlagAck):
			r.svcSeen[s] = true
			r.svcLast[s] = e.now
			r.rtt = e.now.Sub(sent)
			if r.srtt == 0 {
				r.srtt = r.rtt
			} else {
				r.srtt += (r.rtt - r.srtt) / 8
			}
			h := failover.Header{Seq: t.Ack(), Flags: pkt.TCPFlagRst, WScale: -1}
			e.sendTCP(r.port, r.peer, r.port.mac, netip.AddrPortFrom(e.probeSrc, t.DstPort()), e.services[s].addr, &h, nil)
		}
		return
	}
}

// portError handles a read or write error on a port.
func (e *Engine) portError(p *port, err error) {
	if e.leader != nil && p != e.uplink {
		// Loop 0 judges the port (it sees the same errors and the
		// interface's events) and tells the others; this loop only stops
		// reading a socket that failed for another reason than a down
		// link (which recovers by itself).
		if !errors.Is(err, link.ErrLinkDown) {
			for _, r := range e.replicas {
				if r.port == p {
					r.port.p.Close()
					r.port = nil
				}
			}
		}
		return
	}
	if p == e.uplink {
		if !errors.Is(err, link.ErrLinkDown) {
			e.drop(DropPortDown)
		}
		return
	}
	for _, r := range e.replicas {
		if r.port == p {
			e.portGone(r, err)
		}
	}
}

// portGone closes a replica's port after its interface vanished (a deleted
// namespace takes its veth along): a port failure, not a reason to exit.
func (e *Engine) portGone(r *replica, err error) {
	if errors.Is(err, link.ErrLinkDown) {
		r.carrier = false
		e.setDown(r, "link down", failover.ReasonReplicaDown, false)
		return
	}
	if r.port != nil {
		r.port.p.Close()
		r.port = nil
		r.portGen++
	}
	r.carrier = false
	e.publish(Event{Kind: EventPortGone, Replica: r.name, Port: r.ifname, Reason: fmt.Sprint(err)})
	e.setDown(r, "port gone", failover.ReasonReplicaDown, false)
}

// handleLinkEvents follows carrier and interface changes (netlink), the
// fastest failure signal there is.
func (e *Engine) handleLinkEvents() {
	evs, err := e.watcher.Read()
	if errors.Is(err, link.ErrEventsLost) {
		evs, _ = e.watcher.Dump()
	}
	for _, ev := range evs {
		for _, r := range e.replicas {
			if ev.Name != r.ifname || r.removed {
				continue
			}
			switch {
			case ev.Deleted:
				e.portGone(r, link.ErrPortGone)
			case r.port != nil && r.port.p.Index() != ev.Index:
				// Same name, new interface: reopen.
				r.port.p.Close()
				r.port = nil
				r.portGen++
				fallthrough
			case r.port == nil:
				if e.openReplicaPort(r) {
					r.portGen++
					r.peer = pkt.MAC{}
					r.carrier = ev.Up
					e.publish(Event{Kind: EventPortBack, Replica: r.name, Port: r.ifname})
				}
			default:
				if r.carrier && !ev.Up {
					r.carrier = false
					e.setDown(r, "carrier lost", failover.ReasonReplicaDown, false)
				}
				r.carrier = ev.Up
			}
		}
	}
}

// maxJoining bounds the rejoins under way per replica: bringing a replica
// into thousands of connections at once would be a SYN flood against it.
// The periodic sweep (rejoinSweep) starts the rest as these complete.
const maxJoining = 64

// rejoinSweepEvery is how often the sweep looks for connections that a
// healthy replica could still join.
const rejoinSweepEvery = 500 * time.Millisecond

// rejoinSweep starts pending automatic rejoins, a bounded number at a time.
// It walks the connection table, which at 100k connections takes tens of
// milliseconds of the loop, so it runs only while something may be left to
// join (rejoinDirty): a member left a connection, a join ended, a replica
// came back, a connection was set up without every replica.
func (e *Engine) rejoinSweep() {
	if !e.rejoinDirty || e.now.Before(e.nextSweep) {
		return
	}
	e.nextSweep = e.now.Add(rejoinSweepEvery)
	complete := true
	for _, r := range e.replicas {
		if _, all := e.rejoinScan(r, -1, false); !all {
			complete = false
		}
	}
	if complete {
		// Every candidate was tried: nothing changes until an event
		// marks the table dirty again.
		e.rejoinDirty = false
	}
}

// maybeRejoin brings replica r into the live connections of service svc
// (all services when svc < 0) that it is not serving, where the service's
// policy allows: automatically for RejoinAuto, or on an operator's request
// (manual) for RejoinAuto and RejoinManual. It returns how many joins began.
func (e *Engine) maybeRejoin(r *replica, svc int, manual bool) int {
	if !manual {
		e.logOp(shardOp{kind: opRejoin, id: r.id, svc: svc})
	}
	n, all := e.rejoinScan(r, svc, manual)
	if !all {
		e.rejoinDirty = true // the budget cut it short: the sweep goes on
	}
	return n
}

// rejoinScan does maybeRejoin's work in one pass over the table: it counts
// the joins under way and collects up to maxJoining candidates, then starts
// as many as the budget allows. all reports whether every candidate was
// started (the budget did not cut the scan short).
func (e *Engine) rejoinScan(r *replica, svc int, manual bool) (n int, all bool) {
	ok := e.rejoinSvc[:0]
	anyOK := false
	for s := range e.services {
		allow := (svc < 0 || s == svc) && r.eligible(s, e.now)
		switch e.services[s].rejoin {
		case RejoinNewOnly:
			allow = false
		case RejoinManual:
			allow = allow && manual
		}
		ok = append(ok, allow)
		anyOK = anyOK || allow
	}
	e.rejoinSvc = ok
	if !anyOK {
		return 0, true
	}
	joining := 0
	cands := e.rejoinCands[:0]
	capped := false
	for _, ce := range e.conns {
		c := ce.conn
		if i := c.MemberIndex(r.id); i >= 0 && c.MemberJoining(i) {
			joining++
			continue
		}
		if !ok[ce.svc] || !c.CanJoin(r.id) {
			continue
		}
		if len(cands) == maxJoining {
			capped = true
			continue
		}
		cands = append(cands, ce)
	}
	budget := maxJoining - joining
	for i, ce := range cands {
		if n >= budget {
			capped = true
			break
		}
		if ce.conn.Join(e.now, r.id, e) {
			n++
			e.schedule(ce)
		}
		cands[i] = nil
	}
	clear(cands)
	e.rejoinCands = cands[:0]
	return n, !capped
}

// probeMemory is how many earlier probes of a service are still answered:
// a replica whose round trip spans several probe intervals is healthy.
const probeMemory = 8

// sentProbe is one TCP probe: its source port and when it left.
type sentProbe struct {
	port uint16
	sent time.Time
}

// probeSentAt returns when the probe of service s with source port port
// left, or false if it is not one of the recent ones.
func (r *replica) probeSentAt(s int, port uint16) (time.Time, bool) {
	if port == 0 {
		return time.Time{}, false
	}
	for _, p := range r.prevPorts[s] {
		if p.port == port {
			return p.sent, true
		}
	}
	return time.Time{}, false
}

// overloadCap bounds how long the box's own overload excuses a replica's
// silence (see excused): a dead host must still fail while the box stays
// busy.
const overloadCap = 10 * time.Second

// excused reports whether a replica that was last heard at last may be
// silent because of the box rather than itself. When the loop falls behind
// its ports (a burst of new connections, a starved machine, a long turn of
// the loop), answers wait in its queues, probes go out late or not at all,
// and the replica's kernel may share the starved CPUs: silence before that
// proves nothing, so it is counted from the later of the last answer and
// the box's last overload. Past overloadCap of silence the replica is
// judged anyway. Carrier loss and a probe refused with RST are never
// excused.
func (e *Engine) excused(r *replica, last time.Time) bool {
	over := e.lastOverload()
	if over.IsZero() || !r.carrier || r.port == nil || !over.After(last) {
		return false
	}
	if e.now.Sub(last) > overloadCap {
		return false
	}
	return e.now.Sub(over) <= r.silentLimit(e.cfg.Health)
}

// silentLimit is how long a replica may go without answering before it is
// failed: fail_after probe intervals, or four round trips for a replica
// whose round trip is longer than that allows.
func (r *replica) silentLimit(h HealthConfig) time.Duration {
	return max(time.Duration(h.FailAfter)*h.Interval, 4*r.srtt)
}

// needReady holds a replica that came back out of service until its state
// hooks pass (Config.ReadyGate), and asks for them.
func (e *Engine) needReady(r *replica) {
	if !e.cfg.ReadyGate {
		return
	}
	r.ready = false
	e.publish(Event{Kind: EventReplicaNeedsReady, Replica: r.name})
}
