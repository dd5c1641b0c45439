package engine

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/failover"
	"github.com/ftbridge/ftbridge/dataplane/link"
	"github.com/ftbridge/ftbridge/dataplane/pkt"
)

const (
	rxBatch   = 32
	rxBufSize = link.VNetHdrLen + 65536 + 256
	txBufSize = link.VNetHdrLen + pkt.EthernetLen + 60 + 60 + 65535
	// smallTxBufSize fits any frame without payload.
	smallTxBufSize = 256
	// maxTxFree bounds the transmit buffer pools of all loops together
	// (each loop keeps its share: the box's memory does not grow with
	// Config.Loops).
	maxTxFree = 256
	// maxNeighbors bounds the uplink neighbour table.
	maxNeighbors = 4096
)

// Admin is an operator's setting for a replica.
type Admin uint8

// Admin settings.
const (
	// AdminEnabled: the replica serves new and existing connections.
	AdminEnabled Admin = iota
	// AdminDrained: it keeps its connections but takes no new ones.
	AdminDrained
	// AdminDisabled: it is taken out of every connection at once.
	AdminDisabled
)

var adminNames = [...]string{"enabled", "drained", "disabled"}

// String returns the setting's name.
func (a Admin) String() string { return adminNames[a] }

// ParseAdmin parses an Admin name.
func ParseAdmin(s string) (Admin, error) {
	for i, n := range adminNames {
		if n == s {
			return Admin(i), nil
		}
	}
	return 0, fmt.Errorf("unknown admin state %q (want enabled, drained or disabled)", s)
}

// port is one open interface.
type port struct {
	name string
	p    *link.Port
	mac  pkt.MAC
	vnet bool
	tx   [][]byte
	ctr  *PortCounters
	// backlogged: a read left frames queued (the loop is behind); probe
	// answers may be among them, so a missing one proves nothing.
	backlogged bool
}

// service is one (address, port) the box replicates.
type service struct {
	addr   netip.AddrPort
	params *failover.Params
	rejoin RejoinPolicy
	// retired: removed by Reconfigure; it takes no new connections, its
	// live ones run on.
	retired bool
}

// connEntry is a table slot: the connection and its timer bookkeeping.
type connEntry struct {
	conn  *failover.Conn
	key   connKey
	svc   int
	sched int64 // the deadline in the heap (timer clock, see mono); 0: none
}

// connKey is the connection table's key: the client's IPv4 address and
// port and the service's index, in 8 bytes. A failover.Key is 64 bytes
// (room for IPv6 and zones) and the table is consulted for every frame:
// the small key hashes faster and makes the map's slots 16 bytes instead
// of 72.
type connKey uint64

// maxServices bounds the service indexes a connKey can carry.
const maxServices = 1 << 16

func makeConnKey(client netip.AddrPort, si int) connKey {
	a := client.Addr().As4()
	return connKey(uint64(a[0])<<56 | uint64(a[1])<<48 | uint64(a[2])<<40 | uint64(a[3])<<32 |
		uint64(client.Port())<<16 | uint64(si))
}

// Engine is a running dataplane.
type Engine struct {
	cfg      Config
	uplink   *port
	replicas []*replica // indexed by replica id
	order    []int      // replica ids in preference order
	services []service
	svcIndex map[netip.AddrPort]int
	vips     map[netip.Addr]bool
	vipMAC   pkt.MAC
	probeSrc netip.Addr

	conns  map[connKey]*connEntry
	timers timerHeap

	neighbors map[netip.Addr]pkt.MAC

	poller  *link.Poller
	watcher *link.Watcher
	ctl     chan func()

	rxBufs  [][]byte
	rxSizes []int
	txFree  [][]byte
	// txFreeMax is this loop's share of maxTxFree.
	txFreeMax int
	txSmall   [][]byte
	frame     pkt.Frame
	seg       failover.Segment
	ipID      uint16
	now       time.Time

	// pendingFail holds replicas to fail once the current connection call
	// returns: failing reaches into every connection, and must not run
	// inside another connection's call.
	pendingFail []pendingFailure

	hold      failover.HoldBudget
	logBudget failover.HoldBudget
	// maxConns is this loop's share of Limits.MaxConnections.
	maxConns int
	// heldStored is the part of counters.HeldBytes this loop stored.
	heldStored int64
	// counters, upCtr and events are shared by every loop of the engine.
	counters *Counters
	upCtr    *PortCounters
	events   *eventHub
	// shardState: this loop's place among the engine's loops (shard.go).
	shardState

	nextProbe time.Time
	// nextKernelStats is when the ports' kernel drop counters are read next.
	nextKernelStats time.Time
	nextSweep       time.Time
	// rejoinDirty: some connection may be joinable by some replica (see
	// rejoinSweep); rejoinSvc and rejoinCands are the sweep's scratch.
	rejoinDirty bool
	rejoinSvc   []bool
	rejoinCands []*connEntry
	// eligibleIDs is eligible's scratch.
	eligibleIDs []int
	// overloadedAt is when the loop last fell behind its ports: a replica
	// that seems to stall then may only be waiting in a queue.
	overloadedAt time.Time
	// rstLimit bounds the RSTs sent for segments of no known connection.
	rstLimit tokenBucket
	started  time.Time
	// epoch is the timer clock's zero (see mono), fixed at New.
	epoch time.Time
}

type pendingFailure struct {
	id     int
	reason failover.Reason
	detail string
}

// New opens the ports named by cfg in the current network namespace and
// returns an engine ready to Run. Replica ports that do not exist yet are
// not an error: the replica stays down until its interface appears.
func New(cfg Config) (*Engine, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	loops := cfg.Loops
	e, err := newLoop(cfg, 0, loops, nil)
	if err != nil {
		return nil, err
	}
	for i := 1; i < loops; i++ {
		f, err := newLoop(cfg, i, loops, e)
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("loop %d: %w", i, err)
		}
		e.followers = append(e.followers, f)
	}
	return e, nil
}

// newLoop opens loop index of loops; leader is loop 0 (nil for loop 0
// itself), whose counters, events and clock the others share.
func newLoop(cfg Config, index, loops int, leader *Engine) (*Engine, error) {
	e := &Engine{
		cfg:       cfg,
		svcIndex:  make(map[netip.AddrPort]int),
		vips:      make(map[netip.Addr]bool),
		conns:     make(map[connKey]*connEntry),
		neighbors: make(map[netip.Addr]pkt.MAC),
		ctl:       make(chan func(), 16),
		probeSrc:  cfg.ProbeSource,
		rstLimit:  tokenBucket{rate: 1000 / float64(loops), burst: max(200/float64(loops), 1)},
		epoch:     time.Now(),
	}
	e.shard, e.loops, e.leader = index, loops, leader
	e.txFreeMax = max(maxTxFree/loops, 16)
	if leader == nil {
		e.counters, e.upCtr, e.events = new(Counters), new(PortCounters), new(eventHub)
		e.shared = newShardShared()
	} else {
		e.counters, e.upCtr, e.events = leader.counters, leader.upCtr, leader.events
		e.shared, e.epoch = leader.shared, leader.epoch
	}
	e.setBudgets(cfg)
	for _, s := range cfg.Services {
		params := &failover.Params{}
		e.setParams(params, cfg, s)
		e.vips[s.Address] = true
		for _, p := range s.Ports {
			ap := netip.AddrPortFrom(s.Address, p)
			e.svcIndex[ap] = len(e.services)
			e.services = append(e.services, service{addr: ap, params: params, rejoin: s.Rejoin})
		}
	}
	if len(e.services) > maxServices {
		return nil, fmt.Errorf("engine: %d service ports, at most %d", len(e.services), maxServices)
	}
	var err error
	if e.poller, err = link.NewPoller(); err != nil {
		return nil, err
	}
	if leader == nil {
		// Loop 0 follows the interfaces for every loop.
		if e.watcher, err = link.NewWatcher(); err != nil {
			e.poller.Close()
			return nil, err
		}
	}
	up, err := e.openPort(cfg.Uplink)
	if err != nil {
		e.Close()
		return nil, fmt.Errorf("uplink: %w", err)
	}
	up.ctr = e.upCtr
	e.uplink = up
	e.vipMAC = pkt.MAC(cfg.VIPMAC)
	if e.vipMAC.IsZero() {
		e.vipMAC = up.mac
	}
	for i, rc := range cfg.Replicas {
		r := newReplica(i, rc, len(e.services))
		r.ready = !cfg.ReadyGate
		if leader != nil {
			r.shared = leader.replicas[i].counters()
		}
		if e.openReplicaPort(r) {
			if st, ok := link.LinkState(rc.Interface); ok {
				r.carrier = st.Up
			}
		}
		e.replicas = append(e.replicas, r)
		e.order = append(e.order, i)
	}
	e.rxBufs = make([][]byte, rxBatch)
	for i := range e.rxBufs {
		e.rxBufs[i] = make([]byte, rxBufSize)
	}
	e.rxSizes = make([]int, rxBatch)
	return e, nil
}

// setBudgets gives the loop its share of the box-wide limits: connections
// spread evenly over the loops (the filter hashes them), so each loop gets
// an equal part of the table and of the memory for held output and logs.
func (e *Engine) setBudgets(cfg Config) {
	n := int64(e.loops)
	e.maxConns = (cfg.Limits.MaxConnections + e.loops - 1) / e.loops
	e.hold.Max = (cfg.Limits.MaxTotalHoldBytes + n - 1) / n
	e.logBudget.Max = (cfg.Limits.MaxTotalLogBytes + n - 1) / n
}

// Validate checks what the engine needs of a configuration. The management
// plane validates the file with field names; this is the last line.
func (c Config) Validate() error {
	if c.Uplink == "" {
		return errors.New("engine: no uplink interface")
	}
	if len(c.Replicas) == 0 {
		return errors.New("engine: no replicas")
	}
	if len(c.Replicas) > 16 {
		return errors.New("engine: at most 16 replicas")
	}
	if len(c.Services) == 0 {
		return errors.New("engine: no services")
	}
	if c.Loops < 0 || c.Loops > MaxLoops {
		return fmt.Errorf("engine: %d loops, want 1 to %d (0: one per core beyond two)", c.Loops, MaxLoops)
	}
	for _, s := range c.Services {
		if !s.Address.Is4() {
			return fmt.Errorf("engine: service address %v is not IPv4", s.Address)
		}
		if len(s.Ports) == 0 {
			return fmt.Errorf("engine: service %v has no ports", s.Address)
		}
	}
	if !c.ProbeSource.Is4() {
		return errors.New("engine: no IPv4 probe source address")
	}
	return nil
}

// openReplicaPort opens the loop's socket on replica r's interface, counting
// into r's counters; it reports whether it could.
func (e *Engine) openReplicaPort(r *replica) bool {
	p, err := e.openPort(r.ifname)
	if err != nil {
		return false
	}
	p.ctr = r.counters()
	r.port = p
	return true
}

// openPort opens the loop's socket on interface name: with several
// loops, one filtered to the loop's share of the traffic.
func (e *Engine) openPort(name string) (*port, error) {
	// 16 MiB each way: a burst of GSO super-frames from several replicas
	// must not overflow the socket while the loop handles another port.
	o := &link.Options{VNetHdr: true, Promisc: true, RecvBuf: 16 << 20, SendBuf: 16 << 20}
	if e.loops > 1 {
		o.Filter = shardFilter(e.shard, e.loops, e.probeSrc)
	}
	p, err := link.Open(name, o)
	if err != nil {
		return nil, err
	}
	return &port{name: name, p: p, mac: pkt.MAC(p.MAC()), vnet: p.VNetHdr()}, nil
}

// Counters returns the engine's live counters.
func (e *Engine) Counters() *Counters { return e.counters }

// Close releases the engine's sockets. Call it after Run returned.
func (e *Engine) Close() error {
	for _, f := range e.followers {
		f.Close()
	}
	if e.uplink != nil {
		e.uplink.p.Close()
	}
	for _, r := range e.replicas {
		if r.port != nil {
			r.port.p.Close()
			r.port = nil
		}
	}
	if e.watcher != nil {
		e.watcher.Close()
	}
	if e.poller != nil {
		e.poller.Close()
	}
	return nil
}

// Run runs the dataplane until ctx ends. It locks its goroutine to one OS
// thread: the loop is the only place that touches connection state.
//
// Sockets the loop opens later (a replica port that comes back, one added
// by Reconfigure) are opened in the network namespace of that thread: run
// the engine from a thread in the dataplane's namespace (the daemon runs
// wholly inside it).
func (e *Engine) Run(ctx context.Context) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if len(e.followers) > 0 {
		return e.runLoops(ctx)
	}
	return e.run(ctx)
}

// run is one loop's body.
func (e *Engine) run(ctx context.Context) error {
	e.started = time.Now()
	e.now = e.started
	// The wake-up may run after ctx ends; Close must wait for it (a Wake
	// after the poller's Close would write to a closed descriptor).
	woke := make(chan struct{})
	stop := context.AfterFunc(ctx, func() { e.poller.Wake(); close(woke) })
	defer func() {
		if !stop() {
			<-woke
		}
	}()
	if e.leader == nil {
		e.publish(Event{Kind: EventStarted, Detail: fmt.Sprintf("%d replicas, %d service ports, %d loops", len(e.replicas), len(e.services), e.loops)})
		e.gratuitousARP()
	}
	fds := make([]int, 0, 2+len(e.replicas))
	owners := make([]*port, 0, cap(fds))
	ready := make([]bool, cap(fds))
	for ctx.Err() == nil {
		fds, owners = fds[:0], owners[:0]
		if e.watcher != nil {
			fds = append(fds, e.watcher.Fd())
			owners = append(owners, nil)
		}
		fds = append(fds, e.uplink.p.Fd())
		owners = append(owners, e.uplink)
		for _, r := range e.replicas {
			if r.port != nil {
				fds = append(fds, r.port.p.Fd())
				owners = append(owners, r.port)
			}
		}
		if len(fds) > len(ready) {
			ready = make([]bool, len(fds)) // Reconfigure added a replica
		}
		timeout := e.nextWake(time.Now())
		if _, err := e.poller.Wait(fds, ready[:len(fds)], timeout); err != nil {
			return err
		}
		e.now = time.Now()
		e.runControl()
		e.applySync()
		for i := range fds {
			if !ready[i] {
				continue
			}
			if owners[i] == nil {
				e.handleLinkEvents()
				continue
			}
			e.readPort(owners[i])
		}
		e.now = time.Now()
		e.runTimers()
		if e.leader == nil {
			e.runProbes()
		}
		e.runPendingFailures()
		e.rejoinSweep()
		e.flushAll()
		e.maintain()
		e.syncFollowers()
	}
	if e.leader == nil {
		e.publish(Event{Kind: EventStopped})
	}
	return nil
}

// maintain does the loop's once-a-second chores (kernelStatsEvery).
func (e *Engine) maintain() {
	if e.now.Before(e.nextKernelStats) {
		return
	}
	e.nextKernelStats = e.now.Add(kernelStatsEvery)
	e.readKernelDrops()
	if e.leader != nil {
		e.reopenPorts()
	}
	if len(e.timers) > 2*len(e.conns) {
		// More stale entries than the current table allows (it shrank
		// since they were pushed): on an idle box each would pin a page
		// of the heap until its deadline, hours away.
		e.compactTimers()
	}
}

// kernelStatsEvery is how often the ports' kernel drop counters are read.
const kernelStatsEvery = time.Second

// readKernelDrops counts the frames the kernel dropped at the ports'
// sockets (their queues overflowed while the loop was behind), which the
// loop never saw: without them a flood past capacity would look smaller
// than it was.
func (e *Engine) readKernelDrops() {
	e.kernelDrops(e.uplink)
	for _, r := range e.replicas {
		e.kernelDrops(r.port)
	}
}

// kernelDrops reads and counts the frames the kernel dropped at p's socket
// (the only reader of the kernel's counter: readKernelDrops and each probe
// round call it). A port that dropped frames is marked backlogged: the
// answers to the current probe round may have been among them.
func (e *Engine) kernelDrops(p *port) {
	if p == nil {
		return
	}
	if n, err := p.p.ReadKernelDrops(); err == nil && n > 0 {
		e.counters.Drops[DropSocketOverflow].Add(n)
		p.ctr.RxKernelDrops.Add(n)
		p.backlogged = true
	}
}

// runControl executes queued control requests on the loop's goroutine.
func (e *Engine) runControl() {
	for {
		select {
		case f := <-e.ctl:
			f()
		default:
			return
		}
	}
}

// do runs f on the loop and waits for it.
func (e *Engine) do(ctx context.Context, f func()) error {
	done := make(chan struct{})
	select {
	case e.ctl <- func() { f(); close(done) }:
	case <-ctx.Done():
		return ctx.Err()
	}
	e.poller.Wake()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// nextWake returns how long the loop may sleep.
func (e *Engine) nextWake(now time.Time) time.Duration {
	d := e.nextProbe.Sub(now)
	if e.leader != nil {
		// Other loops do not probe; they wake for their timers, the
		// kernel's drop counters and the rejoin sweep.
		d = e.nextKernelStats.Sub(now)
		if e.rejoinDirty {
			d = min(d, e.nextSweep.Sub(now))
		}
	}
	if len(e.timers) > 0 {
		d = min(d, time.Duration(e.timers[0].at-e.mono(now)))
	}
	return max(d, 0)
}

// readPort drains a port in batches, bounded so one busy port cannot
// starve the others.
func (e *Engine) readPort(p *port) {
	for round := 0; round < 8; round++ {
		n, err := p.p.ReadBatch(e.rxBufs, e.rxSizes)
		if err != nil {
			e.portError(p, err)
			return
		}
		for i := 0; i < n; i++ {
			size := e.rxSizes[i]
			if size < 0 {
				e.drop(DropTruncated)
				continue
			}
			p.ctr.RxFrames.Add(1)
			p.ctr.RxBytes.Add(uint64(size))
			e.handleFrame(p, e.rxBufs[i][:size])
		}
		if n < len(e.rxBufs) {
			return
		}
		e.flushAll()
	}
	p.backlogged = true
	e.overloaded()
}

func (e *Engine) drop(r DropReason) { e.counters.Drops[r].Add(1) }

func (e *Engine) publish(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	e.events.publish(ev)
	e.counters.EventsDropped.Store(e.events.dropped.Load())
}

// timerHeap orders connection deadlines: a binary min-heap written out
// for its one element type (container/heap boxes every pushed item in an
// interface, an allocation per (re)scheduled connection).
type timerHeap []timerItem

// timerItem is one deadline, in nanoseconds since the engine's epoch (16
// bytes; a time.Time alone is 24).
type timerItem struct {
	at int64
	e  *connEntry
}

func (h *timerHeap) push(it timerItem) {
	*h = append(*h, it)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if s[p].at <= s[i].at {
			break
		}
		s[p], s[i] = s[i], s[p]
		i = p
	}
}

// init restores the heap order of an arbitrary slice (Floyd).
func (h *timerHeap) init() {
	s := *h
	for i := len(s)/2 - 1; i >= 0; i-- {
		s.down(i)
	}
}

// down moves the item at i down to its place.
func (h timerHeap) down(i int) {
	n := len(h)
	for {
		l, m := 2*i+1, i
		if l < n && h[l].at < h[m].at {
			m = l
		}
		if r := l + 1; r < n && h[r].at < h[m].at {
			m = r
		}
		if m == i {
			return
		}
		h[m], h[i] = h[i], h[m]
		i = m
	}
}

func (h *timerHeap) pop() timerItem {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s[n] = timerItem{}
	s = s[:n]
	s.down(0)
	*h = s
	return top
}

// mono converts a time to the engine's timer clock (nanoseconds since its
// epoch; never 0, which means "no deadline").
func (e *Engine) mono(t time.Time) int64 { return max(int64(t.Sub(e.epoch)), 1) }

// schedule (re)arms a connection's timer after it changed, and removes a
// closed connection from the table.
func (e *Engine) schedule(ce *connEntry) {
	c := ce.conn
	if c.State() == failover.StateClosed {
		if e.conns[ce.key] == ce {
			delete(e.conns, ce.key)
			e.counters.ActiveConns.Add(-1)
			e.counters.ConnsClosed.Add(1)
		}
		ce.sched = 0
		// Stale heap entries may still point at the entry until their
		// deadlines (or a compaction): they must not keep the
		// connection's memory.
		ce.conn = nil
		return
	}
	t := c.NextDeadline()
	if t.IsZero() {
		return
	}
	d := e.mono(t)
	if ce.sched != 0 && d >= ce.sched {
		return
	}
	ce.sched = d
	e.timers.push(timerItem{at: d, e: ce})
	if len(e.timers) > 2*len(e.conns)+maxStaleTimers {
		e.compactTimers()
	}
}

// maxStaleTimers is the slack of stale entries the timer heap may carry
// beyond two per connection before it is compacted. An entry goes stale
// whenever a connection's deadline moves earlier (the idle timeout, hours
// away, is overtaken by a retransmission or TIME_WAIT timer); left alone,
// every connection the box ever carried would stay in the heap until its
// idle deadline.
const maxStaleTimers = 1024

// compactTimers drops the stale entries and rebuilds the heap, in time
// linear in its size; the bound above makes it amortised constant per
// push.
func (e *Engine) compactTimers() {
	live := e.timers[:0]
	for _, it := range e.timers {
		if it.e.sched == it.at {
			live = append(live, it)
		}
	}
	clear(e.timers[len(live):])
	e.timers = live
	e.timers.init()
}

// runTimers ticks every connection whose deadline passed. Heap entries
// whose deadline no longer matches the connection's are stale and skipped.
func (e *Engine) runTimers() {
	now := e.mono(e.now)
	for len(e.timers) > 0 && e.timers[0].at <= now {
		it := e.timers.pop()
		ce := it.e
		if ce.sched != it.at {
			continue
		}
		ce.sched = 0
		ce.conn.Tick(e.now, e)
		e.schedule(ce)
	}
	// Each loop adds its own change: they share the counter.
	e.counters.HeldBytes.Add(e.hold.Used - e.heldStored)
	e.heldStored = e.hold.Used
}

// logMax is a service's per-connection input log bound: none where
// replicas never join live connections.
func logMax(limit int, p RejoinPolicy) int {
	if p == RejoinNewOnly {
		return 0
	}
	return max(limit, 0)
}
