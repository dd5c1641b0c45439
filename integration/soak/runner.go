package soak

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/engine"
)

// Fault kinds.
const (
	FaultKill9     = "kill9"     // kill -9 of the replica's servers, then restart
	FaultSigstop   = "sigstop"   // SIGSTOP of the servers, SIGCONT later
	FaultLinkFlap  = "linkflap"  // the replica's own interface down, then up
	FaultPortFlap  = "portflap"  // the box's port of the replica down, then up
	FaultNSDelete  = "nsdelete"  // the replica's namespace deleted, rebuilt, servers restarted
	FaultLoss      = "loss"      // packet loss on a link for a few seconds
	FaultDuplicate = "duplicate" // packet duplication
	FaultReorder   = "reorder"   // reordering (a share of packets overtakes delayed ones)
	FaultDelay     = "delay"     // added latency with jitter
)

// DefaultFaults weighs the fault kinds of a default run: crashes of the
// kind that make failovers dominate; impairments run alone and also
// overlap a share of the crashes (Config.OverlapImpair).
var DefaultFaults = map[string]int{
	FaultKill9: 4, FaultSigstop: 1, FaultLinkFlap: 2, FaultPortFlap: 2, FaultNSDelete: 1,
	FaultLoss: 1, FaultDuplicate: 1, FaultReorder: 1, FaultDelay: 1,
}

func isCrash(kind string) bool {
	switch kind {
	case FaultKill9, FaultSigstop, FaultLinkFlap, FaultPortFlap, FaultNSDelete:
		return true
	}
	return false
}

// Config configures Run. Zero values take the defaults noted.
type Config struct {
	// Duration is how long traffic and faults run (default 5m).
	Duration time.Duration `json:"duration"`
	// Replicas is 2..8 (default 2).
	Replicas int `json:"replicas"`
	// Seed makes the schedule and the traffic repeatable (default 1).
	Seed uint64 `json:"seed"`
	// MaxFaults bounds the number of faults (default 10000).
	MaxFaults int `json:"max_faults"`
	// FaultGap is the mean pause between one fault's recovery and the
	// next fault (default 1s).
	FaultGap time.Duration `json:"fault_gap"`
	// Workers is the number of concurrent client sessions of the Mix
	// (default 12).
	Workers int `json:"workers"`
	// Idle is the number of long-lived idle connections kept open (default 4).
	Idle int `json:"idle"`
	// Redis adds redis-server on every replica and RedisWorkers sessions
	// against it.
	Redis        bool `json:"redis"`
	RedisWorkers int  `json:"redis_workers,omitempty"`
	// Faults weighs the fault kinds (default DefaultFaults); Mix the
	// session kinds (default DefaultMix).
	Faults map[string]int `json:"faults"`
	Mix    Mix            `json:"mix"`
	// OverlapImpair is the probability that a crash fault happens while
	// the client link is impaired (default 0.3; negative for never).
	OverlapImpair float64 `json:"overlap_impair"`
	// Settle bounds the wait at the end for the daemon's memory to come
	// back under its bound (default 150s: the Go runtime forces a garbage
	// collection every 2 minutes, and an idle daemon may not collect
	// sooner, so its heap goal, and with it its RSS, stays where the load
	// left it until then).
	Settle time.Duration `json:"settle"`
	// MemorySlack is how far above its baseline the daemon's VmRSS may
	// end (default 24 MiB: the dataplane keeps up to 256 transmit buffers
	// of 64 KiB, 16 MiB, once a burst made them, plus 8 MiB for the Go
	// heap's headroom).
	MemorySlack int64 `json:"memory_slack_bytes"`
	// Daemon holds extra top-level members of the daemon's configuration;
	// nil means DefaultDaemonConfig. Service holds extra members of the
	// service (for example "rejoin": "new-only").
	Daemon  map[string]any `json:"-"`
	Service map[string]any `json:"service,omitempty"`
	// Bins are the programs (built when empty).
	Bins Binaries `json:"-"`
	// NoImpair builds the lab without impairment points (plain veth
	// pairs: no userspace forwarder on any link) and skips every
	// impairment, alone or overlapping a crash.
	NoImpair bool `json:"no_impair,omitempty"`
	// Loops sets the daemon's dataplane loops (0: its default) when
	// Daemon is nil.
	Loops int `json:"loops,omitempty"`
	// Progress receives one line per fault and a summary now and then.
	Progress io.Writer `json:"-"`
	// LogCopy, when set, receives the daemon's whole log at the end.
	LogCopy io.Writer `json:"-"`
}

// DefaultDaemonConfig is the soak's daemon tuning beyond the defaults: a
// short TIME_WAIT so the table drains within seconds of the end, and a
// short stall hold-down so that a replica stopped with SIGSTOP comes back
// for the next faults (it doubles on every repeat, up to 64 times).
var DefaultDaemonConfig = map[string]any{
	"timers": map[string]any{"time_wait": "2s"},
	"health": map[string]any{"hold_down": "200ms"},
}

// Command is the ftsoak command line that reproduces the run.
func (c Config) Command() string {
	s := fmt.Sprintf("go run ./cmd/ftsoak -duration %s -replicas %d -seed %d -workers %d -idle %d", c.Duration, c.Replicas, c.Seed, c.Workers, c.Idle)
	if c.MaxFaults != 10000 {
		s += fmt.Sprintf(" -max-faults %d", c.MaxFaults)
	}
	if c.Redis {
		s += " -redis"
	}
	if c.NoImpair {
		s += " -no-impair"
	}
	if c.Loops > 0 {
		s += fmt.Sprintf(" -loops %d", c.Loops)
	}
	for _, k := range sortedKeys(c.Service) {
		s += fmt.Sprintf(" -%s %v", k, c.Service[k])
	}
	if !maps.Equal(c.Faults, DefaultFaults) {
		var f []string
		for _, k := range sortedKeys(c.Faults) {
			f = append(f, fmt.Sprintf("%s=%d", k, c.Faults[k]))
		}
		if len(f) == 0 {
			f = []string{"none"}
		}
		s += " -faults " + strings.Join(f, ",")
	}
	return s
}

func (c *Config) defaults() error {
	if c.Duration <= 0 {
		c.Duration = 5 * time.Minute
	}
	if c.Replicas == 0 {
		c.Replicas = 2
	}
	if c.Replicas < 2 || c.Replicas > 8 {
		return fmt.Errorf("soak: %d replicas: failover needs 2..8", c.Replicas)
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.MaxFaults <= 0 {
		c.MaxFaults = 10000
	}
	if c.FaultGap <= 0 {
		c.FaultGap = time.Second
	}
	if c.Workers <= 0 {
		c.Workers = 12
	}
	if c.Idle < 0 {
		c.Idle = 0
	} else if c.Idle == 0 {
		c.Idle = 4
	}
	if c.Redis && c.RedisWorkers <= 0 {
		c.RedisWorkers = 2
	}
	if c.Faults == nil {
		c.Faults = DefaultFaults
	}
	// Our own copy: defaults and NoImpair edit it.
	c.Faults = maps.Clone(c.Faults)
	for k, w := range c.Faults {
		if w <= 0 {
			delete(c.Faults, k)
		}
	}
	for k := range c.Faults {
		if _, ok := DefaultFaults[k]; !ok {
			return fmt.Errorf("soak: unknown fault kind %q", k)
		}
	}
	if c.Mix == nil {
		c.Mix = DefaultMix
	}
	if c.OverlapImpair == 0 {
		c.OverlapImpair = 0.3
	}
	if c.NoImpair {
		c.OverlapImpair = -1
		for k := range c.Faults {
			if !isCrash(k) {
				delete(c.Faults, k)
			}
		}
	}
	if c.Daemon == nil {
		c.Daemon = maps.Clone(DefaultDaemonConfig)
		if c.Loops > 0 {
			c.Daemon["loops"] = c.Loops
		}
	}
	if c.MemorySlack <= 0 {
		c.MemorySlack = 24 << 20
	}
	if c.Settle <= 0 {
		c.Settle = 150 * time.Second
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	return nil
}

// runner is one soak run in progress.
type runner struct {
	cfg   Config
	b     *Bridge
	imp   *Impairer
	rng   *rand.Rand // the fault schedule's; only the fault loop uses it
	start time.Time  // for progress lines
	t0    time.Time  // the report's Date: offsets in the report count from it

	mu       sync.Mutex
	sessions []Session
	faults   []FaultRecord
	samples  []ProcStatus
	problems []string
	skipped  int
	nextID   int
}

func (r *runner) say(format string, a ...any) {
	fmt.Fprintf(r.cfg.Progress, "%7.1fs  %s\n", time.Since(r.start).Seconds(), fmt.Sprintf(format, a...))
}

func (r *runner) problem(format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	r.mu.Lock()
	r.problems = append(r.problems, msg)
	r.mu.Unlock()
	r.say("PROBLEM: %s", msg)
}

// Run runs a soak: it returns the report (also when the run found
// failures; err is for a run that could not be carried out). Cancelling
// ctx ends the run early; the lab is always torn down.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("soak: needs root: it builds network namespaces and opens raw sockets")
	}
	r := &runner{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x50a4)), start: time.Now()}
	r.say("building a lab with %d replicas", cfg.Replicas)
	b, err := NewBridge(BridgeOptions{Replicas: cfg.Replicas, Redis: cfg.Redis, Config: cfg.Daemon, Service: cfg.Service, Bins: cfg.Bins, Impaired: !cfg.NoImpair})
	if err != nil {
		return nil, err
	}
	r.b = b
	defer b.Close()
	r.imp = NewImpairer(b.Lab, cfg.Seed)
	rep := &Report{Date: time.Now(), Config: cfg, Daemon: b.ConfigText(), Machine: machine(), Commit: commit(), Lab: b.Lab.Name}
	r.t0 = rep.Date
	r.say("lab %s up; ftbridged pid %d", b.Lab.Name, b.Daemon.Pid())

	// Baseline: healthy and idle, before any client traffic.
	time.Sleep(2 * time.Second)
	base, err := b.DaemonStatus()
	if err != nil {
		return nil, err
	}
	rep.Memory.Baseline = base
	resetsBefore := r.clientResets()

	stopSampler := r.sample(time.Second)
	stopWork := make(chan struct{})
	var wg sync.WaitGroup
	r.startWorkers(&wg, stopWork)

	deadline := time.Now().Add(cfg.Duration)
	r.faultLoop(ctx, deadline)
	if b.Daemon.Exited() {
		// Nothing more to measure; the report says why.
		close(stopWork)
		wg.Wait()
		stopSampler()
		rep.Elapsed = time.Since(rep.Date)
		rep.DaemonStop = "died during the run"
		if !strings.Contains(strings.Join(r.problems, "\n"), "died") {
			r.problem("ftbridged died during the run:\n%s", b.DeathNote())
		}
		b.Log.Close()
		if cfg.LogCopy != nil {
			b.WriteLogTo(cfg.LogCopy)
		}
		r.fill(rep)
		return rep, nil
	}

	r.say("traffic winding down")
	close(stopWork)
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(sessionTimeout + 15*time.Second):
		r.problem("client sessions did not finish within %v of the end", sessionTimeout+15*time.Second)
	}
	rep.Elapsed = time.Since(rep.Date)

	// The end: everyone healthy, a fresh connection works, the table
	// drains, memory comes back.
	if err := b.WaitHealthy(30*time.Second, b.ReplicaNames()...); err != nil {
		r.problem("replicas not all healthy at the end: %v", err)
	}
	rep.FinalCheck = r.finalCheck()
	r.drain(rep)
	stopSampler()
	rep.ClientResets = int(r.clientResets() - resetsBefore)
	if s, err := b.Snapshot(5 * time.Second); err == nil {
		rep.FailoverCounter, rep.Divergences, rep.Drops = s.Failovers, s.Divergences, s.Drops
	}
	if err := b.Stop(10 * time.Second); err != nil {
		rep.DaemonStop = err.Error()
		r.problem("daemon stop: %v", err)
	} else {
		rep.DaemonStop = "clean (exit 0)"
	}
	b.Log.Close()
	if cfg.LogCopy != nil {
		b.WriteLogTo(cfg.LogCopy)
	}
	r.fill(rep)
	return rep, nil
}

// startWorkers starts the client workers; they stop when stop closes.
func (r *runner) startWorkers(wg *sync.WaitGroup, stop chan struct{}) {
	c := &client{b: r.b, stop: stop}
	worker := func(w int, kinds func(*rand.Rand) string) {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(r.cfg.Seed, uint64(w)+1))
		for {
			select {
			case <-stop:
				return
			default:
			}
			if r.b.Daemon.Exited() {
				return
			}
			r.mu.Lock()
			r.nextID++
			id := r.nextID
			r.mu.Unlock()
			s := c.run(id, w, kinds(rng), rng)
			r.mu.Lock()
			r.sessions = append(r.sessions, s)
			r.mu.Unlock()
			if s.Err != "" {
				r.say("SESSION FAILED: #%d %s %s: %s", s.ID, s.Kind, s.Local, s.Err)
				// Do not hammer a broken box: a failing run should
				// still end with a readable report.
				time.Sleep(200 * time.Millisecond)
			}
		}
	}
	w := 0
	for i := 0; i < r.cfg.Workers; i++ {
		wg.Add(1)
		go worker(w, r.cfg.Mix.pick)
		w++
	}
	for i := 0; i < r.cfg.Idle; i++ {
		wg.Add(1)
		go worker(w, func(*rand.Rand) string { return KindIdle })
		w++
	}
	if r.cfg.Redis {
		for i := 0; i < r.cfg.RedisWorkers; i++ {
			wg.Add(1)
			go worker(w, func(*rand.Rand) string { return KindRedis })
			w++
		}
	}
}

// sample records the daemon's footprint every interval until the
// returned function is called.
func (r *runner) sample(every time.Duration) func() {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if st, err := r.b.DaemonStatus(); err == nil {
				r.mu.Lock()
				r.samples = append(r.samples, st)
				r.mu.Unlock()
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-finished }
}

// finalCheck verifies that a fresh connection works after the run.
func (r *runner) finalCheck() string {
	c := &client{b: r.b, stop: make(chan struct{})}
	rng := rand.New(rand.NewPCG(r.cfg.Seed, 99))
	for _, k := range []string{KindDownload, KindUpload, KindReqResp} {
		if s := c.run(-1, -1, k, rng); s.Err != "" {
			r.problem("fresh %s connection after the run failed: %s", k, s.Err)
			return "FAILED: " + s.Err
		}
	}
	return "ok (download, upload, request/response)"
}

// drain waits for the connection table to empty and the daemon's memory
// to settle, and judges the memory against the baseline.
func (r *runner) drain(rep *Report) {
	deadline := time.Now().Add(45 * time.Second)
	for {
		s, err := r.b.Snapshot(5 * time.Second)
		if err == nil {
			rep.FinalConns, rep.FinalHeld = s.Connections, s.HeldBytes
			if s.Connections == 0 && s.HeldBytes == 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			r.problem("the connection table did not drain: %d connections, %d held bytes 45s after the end", rep.FinalConns, rep.FinalHeld)
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	m := &rep.Memory
	// The Go runtime returns freed memory to the kernel gradually (its
	// scavenger), so the daemon gets a while to come back under the bound.
	base := m.Baseline
	limit := base.RSSKiB + r.cfg.MemorySlack>>10
	m.Bound = fmt.Sprintf("final VmRSS <= baseline + %s = %s (the transmit buffer pool, 16 MiB, plus heap headroom) and threads <= baseline + 4 = %d, with an empty table",
		mib(r.cfg.MemorySlack>>10), mib(limit), base.Threads+4)
	settle := time.Now().Add(r.cfg.Settle)
	r.say("waiting up to %v for the daemon's memory to settle", r.cfg.Settle)
	for {
		st, err := r.b.DaemonStatus()
		if err == nil {
			m.Final = st
			if st.RSSKiB <= limit && st.Threads <= base.Threads+4 {
				m.OK = rep.FinalConns == 0 && rep.FinalHeld == 0
				break
			}
		}
		if time.Now().After(settle) {
			r.problem("daemon memory did not return to its bound: VmRSS %s, threads %d (baseline %s, %d)", mib(m.Final.RSSKiB), m.Final.Threads, mib(base.RSSKiB), base.Threads)
			break
		}
		time.Sleep(time.Second)
	}
}

// clientResets reads the client namespace's TCP EstabResets counter: how
// many of its connections ended with an RST (sent or received), as the
// kernel itself saw it.
func (r *runner) clientResets() uint64 {
	var n uint64
	r.b.Lab.InNS(r.b.Lab.ClientNS, func() error {
		// thread-self: /proc/net follows the thread group leader's
		// namespace, not this thread's.
		b, err := os.ReadFile("/proc/thread-self/net/snmp")
		if err != nil {
			return err
		}
		n = snmpField(string(b), "Tcp:", "EstabResets")
		return nil
	})
	return n
}

// snmpField finds field in the two-line group of /proc/net/snmp.
func snmpField(snmp, group, field string) uint64 {
	lines := strings.Split(snmp, "\n")
	for i := 0; i+1 < len(lines); i++ {
		if !strings.HasPrefix(lines[i], group) || !strings.HasPrefix(lines[i+1], group) {
			continue
		}
		names, vals := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		for j := range names {
			if names[j] == field && j < len(vals) {
				v, _ := strconv.ParseUint(vals[j], 10, 64)
				return v
			}
		}
	}
	return 0
}

// machine describes the host for the report.
func machine() string {
	host, _ := os.Hostname()
	var u syscall.Utsname
	kernel := "?"
	if syscall.Uname(&u) == nil {
		kernel = utsString(u.Release[:])
	}
	return fmt.Sprintf("%s, Linux %s, %d CPUs, %s", host, kernel, runtime.NumCPU(), runtime.Version())
}

func utsString(b []int8) string {
	var s []byte
	for _, c := range b {
		if c == 0 {
			break
		}
		s = append(s, byte(c))
	}
	return string(s)
}

// commit is the checkout's commit, with "+dirty" when the dataplane or
// daemon differ from it, or "" outside a git checkout.
func commit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	c := strings.TrimSpace(string(out))
	if out, err := exec.Command("git", "status", "--porcelain", "--", "dataplane", "cmd/ftbridged").Output(); err == nil && len(out) > 0 {
		c += "+dirty (dataplane or cmd/ftbridged modified)"
	}
	return c
}

// eventAbout reports whether ev shows the daemon reacting to a fault of
// replica name.
func eventAbout(ev engine.Event, name string) bool {
	switch ev.Kind {
	case engine.EventReplicaDown, engine.EventPortGone, engine.EventStalled, engine.EventMemberRemoved:
		return ev.Replica == name
	case engine.EventFailover:
		return ev.From == name
	}
	return false
}

// FaultKinds lists the known fault kinds.
func FaultKinds() []string { return sortedKeys(DefaultFaults) }

// CrashFaults returns the default weights of the crash kinds only (no
// impairments).
func CrashFaults() map[string]int {
	m := map[string]int{}
	for k, w := range DefaultFaults {
		if isCrash(k) {
			m[k] = w
		}
	}
	return m
}
