package engine

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ftbridge/ftbridge/dataplane/failover"
	"github.com/ftbridge/ftbridge/dataplane/pkt"
)

// Several loops (Config.Loops > 1). Each loop is an Engine with its own
// sockets, filtered to its share of every port's traffic (shardfilter.go),
// its own connection table, timers and buffers: a connection lives on one
// loop from its SYN to its end, and nothing on the per-frame path is
// shared but the atomic counters.
//
// Loop 0, the leader, is the engine the caller holds. It alone follows the
// interfaces (netlink), sends and judges the health probes, answers ARP
// and decides every replica's state; the other loops (followers) mirror
// that state and apply its consequences to their own connections:
//
//   - after each of its turns the leader posts what changed (every
//     replica's state and the operations that reach into connections:
//     take a replica out, bring it in, promote it) to each follower's
//     mailbox and wakes it; a follower applies them in order at its next
//     turn;
//   - a follower reports what only it sees to the leader through
//     shardShared: when it last heard each replica (traffic proves a host
//     alive, as a probe answer does), when it last fell behind its ports
//     (the box's own overload excuses a replica's silence), and the
//     replicas its connections found stalled.

// maxSharedReplicas bounds the replica ids whose traffic followers report;
// a replica beyond it (after many reconfigurations) is judged on the
// leader's probes and traffic alone.
const maxSharedReplicas = 1024

// shardState is an Engine's place among its loops.
type shardState struct {
	shard, loops int
	leader       *Engine   // loop 0; nil on loop 0
	followers    []*Engine // loops 1..; only on loop 0
	shared       *shardShared

	// Leader: the operations of this turn, the state last posted.
	ops      []shardOp
	lastSync []replicaSync
	// Follower: what the leader posted.
	mbox mailbox
	// heardPub: when this follower last published hearing each replica.
	heardPub []time.Time
}

// shardShared is what followers report to the leader.
type shardShared struct {
	heard      [maxSharedReplicas]atomic.Int64 // timer clock (mono) of the last frame from each replica
	overloaded atomic.Int64                    // timer clock of the last time a follower fell behind
	mu         sync.Mutex
	stalls     []pendingFailure
}

func newShardShared() *shardShared { return new(shardShared) }

// shardOpKind is what a shardOp does to a follower's connections.
type shardOpKind uint8

const (
	opFail    shardOpKind = iota // failReplicaConns
	opRejoin                     // maybeRejoin, automatic
	opPromote                    // Promote
)

// shardOp is one operation of the leader that reaches into connections.
type shardOp struct {
	kind   shardOpKind
	id     int
	svc    int
	reason failover.Reason
	soft   bool
}

// replicaSync is a replica's state as the leader decided it.
type replicaSync struct {
	up, downSoft, carrier, ready, removed bool
	admin                                 Admin
	holdUntil                             time.Time
	peer                                  pkt.MAC
	svcUp, svcRefused                     []bool
	// portGen changes whenever the leader closed or reopened the port;
	// portOpen says whether it has one.
	portGen  uint32
	portOpen bool
}

// stateSync is one posting to a follower.
type stateSync struct {
	replicas []replicaSync
	order    []int
	ops      []shardOp
}

// mailbox holds the leader's postings until the follower's next turn.
type mailbox struct {
	pending atomic.Bool
	mu      sync.Mutex
	posts   []*stateSync
}

// overloaded records that this loop fell behind its ports.
func (e *Engine) overloaded() {
	e.overloadedAt = e.now
	if e.leader != nil {
		e.shared.overloaded.Store(e.mono(e.now))
	}
}

// lastOverload returns when any loop last fell behind (the leader's view).
func (e *Engine) lastOverload() time.Time {
	t := e.overloadedAt
	if e.shared != nil {
		if m := e.shared.overloaded.Load(); m != 0 {
			if ft := e.epoch.Add(time.Duration(m)); ft.After(t) {
				t = ft
			}
		}
	}
	return t
}

// heardReplica notes a frame from replica r.
func (e *Engine) heardReplica(r *replica) {
	r.heard, r.heardAt = true, e.now
	if e.leader == nil || r.id >= maxSharedReplicas {
		return
	}
	for len(e.heardPub) <= r.id {
		e.heardPub = append(e.heardPub, time.Time{})
	}
	// A store per frame would bounce the cache line between cores; the
	// leader judges in probe intervals (milliseconds).
	if e.now.Sub(e.heardPub[r.id]) >= time.Millisecond {
		e.heardPub[r.id] = e.now
		e.shared.heard[r.id].Store(e.mono(e.now))
	}
}

// followersHeard merges into r what the followers heard from it since the
// probes went out (leader).
func (e *Engine) followersHeard(r *replica) {
	if len(e.followers) == 0 || r.id >= maxSharedReplicas {
		return
	}
	m := e.shared.heard[r.id].Load()
	if m == 0 {
		return
	}
	t := e.epoch.Add(time.Duration(m))
	if t.After(r.heardAt) {
		r.heardAt = t
	}
	if !t.Before(r.probedAt) {
		r.heard = true
	}
}

// logOp records an operation for the followers (leader with followers).
func (e *Engine) logOp(op shardOp) {
	if len(e.followers) > 0 {
		e.ops = append(e.ops, op)
	}
}

// reportStall hands a stalled replica to the leader, which decides.
func (e *Engine) reportStall(pf pendingFailure) {
	s := e.shared
	s.mu.Lock()
	if len(s.stalls) < 1024 { // a flood of stalls carries no more news
		s.stalls = append(s.stalls, pf)
	}
	s.mu.Unlock()
	e.leader.poller.Wake()
}

// takeStalls moves the followers' stall reports into the leader's queue.
func (e *Engine) takeStalls() {
	if len(e.followers) == 0 {
		return
	}
	s := e.shared
	s.mu.Lock()
	e.pendingFail = append(e.pendingFail, s.stalls...)
	clear(s.stalls)
	s.stalls = s.stalls[:0]
	s.mu.Unlock()
}

// syncFollowers posts the replicas' state and this turn's operations to
// every follower when anything changed (leader, end of each turn).
func (e *Engine) syncFollowers() {
	if len(e.followers) == 0 {
		return
	}
	changed := len(e.ops) > 0 || len(e.lastSync) != len(e.replicas)
	for i, r := range e.replicas {
		if changed {
			break
		}
		changed = !e.lastSync[i].matches(r)
	}
	if !changed {
		return
	}
	st := &stateSync{order: slices.Clone(e.order), ops: e.ops}
	e.ops = nil
	st.replicas = make([]replicaSync, len(e.replicas))
	for i, r := range e.replicas {
		st.replicas[i] = r.syncState()
	}
	e.lastSync = st.replicas
	for _, f := range e.followers {
		f.post(st)
	}
}

func (r *replica) syncState() replicaSync {
	return replicaSync{
		up: r.up, downSoft: r.downSoft, carrier: r.carrier, ready: r.ready, removed: r.removed,
		admin: r.admin, holdUntil: r.holdUntil, peer: r.peer,
		svcUp: slices.Clone(r.svcUp), svcRefused: slices.Clone(r.svcRefused),
		portGen: r.portGen, portOpen: r.port != nil,
	}
}

func (s *replicaSync) matches(r *replica) bool {
	return s.up == r.up && s.downSoft == r.downSoft && s.carrier == r.carrier && s.ready == r.ready &&
		s.removed == r.removed && s.admin == r.admin && s.holdUntil.Equal(r.holdUntil) && s.peer == r.peer &&
		slices.Equal(s.svcUp, r.svcUp) && slices.Equal(s.svcRefused, r.svcRefused) &&
		s.portGen == r.portGen && s.portOpen == (r.port != nil)
}

// post queues st for the follower and wakes it.
func (e *Engine) post(st *stateSync) {
	e.mbox.mu.Lock()
	e.mbox.posts = append(e.mbox.posts, st)
	e.mbox.mu.Unlock()
	e.mbox.pending.Store(true)
	e.poller.Wake()
}

// applySync applies the leader's postings (follower, start of each turn).
func (e *Engine) applySync() {
	if e.leader == nil || !e.mbox.pending.Load() {
		return
	}
	e.mbox.mu.Lock()
	posts := e.mbox.posts
	e.mbox.posts = nil
	e.mbox.pending.Store(false)
	e.mbox.mu.Unlock()
	for _, st := range posts {
		e.apply(st)
	}
	e.flushAll()
}

func (e *Engine) apply(st *stateSync) {
	e.rejoinDirty = true
	e.order = st.order
	for i := range st.replicas {
		if i >= len(e.replicas) {
			break // a replica this loop's Reconfigure has not added yet
		}
		r, s := e.replicas[i], &st.replicas[i]
		if s.portGen != r.portGen || (r.port != nil && !s.portOpen) {
			// The leader closed or reopened the port: follow it.
			if r.port != nil {
				r.port.p.Close()
				r.port = nil
			}
			r.portGen = s.portGen
		}
		r.wantPort = s.portOpen && !s.removed
		r.up, r.downSoft, r.carrier, r.ready, r.removed = s.up, s.downSoft, s.carrier, s.ready, s.removed
		r.admin, r.holdUntil = s.admin, s.holdUntil
		if !s.peer.IsZero() {
			r.peer = s.peer
		}
		copy(r.svcUp, s.svcUp)
		copy(r.svcRefused, s.svcRefused)
	}
	e.reopenPorts()
	for _, op := range st.ops {
		if op.id >= len(e.replicas) {
			continue
		}
		r := e.replicas[op.id]
		switch op.kind {
		case opFail:
			e.failReplicaConns(r, op.svc, op.reason, op.soft)
		case opRejoin:
			e.maybeRejoin(r, op.svc, false)
		case opPromote:
			for _, ce := range e.conns {
				ce.conn.Promote(e.now, r.id, e)
				e.schedule(ce)
			}
		}
	}
}

// reopenPorts opens the follower's socket on every port loop 0 has open
// and it has not: after loop 0 reopened it, or after this loop's own
// socket failed or could not be opened (retried every kernelStatsEvery).
func (e *Engine) reopenPorts() {
	for _, r := range e.replicas {
		if !r.wantPort || r.port != nil {
			continue
		}
		e.openReplicaPort(r)
	}
}

// resync makes loop 0 post the whole state at the end of its next turn
// (after the followers changed under it, as Reconfigure does).
func (e *Engine) resync() { e.lastSync = nil }

// forEachFollower runs f on every follower's loop in turn (the caller is not a
// loop), stopping at the first error.
func (e *Engine) forEachFollower(ctx context.Context, f func(l *Engine) error) error {
	for _, l := range e.followers {
		var err error
		if derr := l.do(ctx, func() { err = f(l) }); derr != nil {
			return derr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// runLoops runs the leader on the calling thread and every follower on a
// thread of its own in the same network namespace, until ctx ends or a
// loop fails.
func (e *Engine) runLoops(ctx context.Context) error {
	// Threads the runtime starts later begin in the process's original
	// namespace, not this thread's: the followers must enter it, or a
	// port they reopen would be looked up in the wrong one.
	ns, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("engine: network namespace: %w", err)
	}
	defer unix.Close(ns)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(e.followers))
	var wg sync.WaitGroup
	for _, f := range e.followers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			if err := unix.Setns(ns, unix.CLONE_NEWNET); err != nil {
				// The thread is in no known state: let it end with the
				// goroutine (never unlocked).
				errs <- fmt.Errorf("engine: loop %d: setns: %w", f.shard, err)
				cancel()
				return
			}
			err := f.run(ctx)
			if err != nil {
				errs <- fmt.Errorf("engine: loop %d: %w", f.shard, err)
				cancel()
			}
		}()
	}
	err = e.run(ctx)
	cancel()
	wg.Wait()
	close(errs)
	for ferr := range errs {
		err = errors.Join(err, ferr)
	}
	return err
}
