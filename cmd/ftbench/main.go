package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "serve":
			os.Exit(serveMain(os.Args[2:]))
		case "load":
			os.Exit(loadMain(os.Args[2:]))
		}
	}
	os.Exit(run(os.Args[1:], os.Stderr))
}

// bench holds a run's settings and the paths of what it runs.
type bench struct {
	self      string // this executable, re-run as server and load client
	ftbridged string
	root      string // module root
	out       string // docs directory

	dur, rrDur     time.Duration
	failovers      int
	failoverBudget time.Duration // per fault kind
	memConns       []int         // sorted
	haproxyMax     int           // HAProxy's maxconn: what the open-file limit allows
	iperf          bool
	profile        bool
	quick          bool
	deadline       time.Time

	log *log.Logger
}

func (b *bench) logf(format string, args ...any) { b.log.Printf(format, args...) }

// sections a run can be limited to.
var allSections = []string{"bulk", "rr", "conn", "mem", "failover", "profile"}
var allTopos = []string{"kernel", "haproxy", "ftbridge-1", "ftbridge-2", "ftbridge-3", "ftbridge-2x2"}

// ftbTopos are the ftbridge topologies: replicas and dataplane loops (0:
// the daemon's default, one loop on this machine kind).
var ftbTopos = []struct {
	name            string
	replicas, loops int
}{{"ftbridge-1", 1, 0}, {"ftbridge-2", 2, 0}, {"ftbridge-3", 3, 0}, {"ftbridge-2x2", 2, 2}}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("ftbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", false, "short run (about 3 minutes): 1.5 s bulk runs, 10k connections, 5 failovers per fault, no iperf3")
	only := fs.String("only", strings.Join(allSections, ","), "comma-separated `sections` to run: "+strings.Join(allSections, ","))
	topos := fs.String("topos", strings.Join(allTopos, ","), "comma-separated `topologies`: "+strings.Join(allTopos, ","))
	dur := fs.Duration("dur", 4*time.Second, "length of each bulk throughput run")
	rrDur := fs.Duration("rr-dur", 3*time.Second, "length of the request/response and connection-rate runs")
	failovers := fs.Int("failovers", 30, "failovers measured per fault kind")
	conns := fs.String("conns", "10000,100000", "open-connection `counts` for the memory test")
	iperf := fs.Bool("iperf3", true, "cross-check bulk throughput with iperf3 where it can run")
	out := fs.String("out", "docs", "`directory` for benchmarks.md; plots go to its bench/ subdirectory")
	ftbridged := fs.String("ftbridged", "", "use this ftbridged `binary` instead of building ./cmd/ftbridged")
	budget := fs.Duration("budget", 14*time.Minute, "stop starting new sections after this long")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	logger := log.New(stderr, "ftbench: ", log.Ltime)
	if os.Geteuid() != 0 {
		logger.Print("needs root: it builds network namespaces and runs the box in one")
		return 2
	}
	// Every process the bench starts inherits this: HAProxy, the servers
	// and the load clients each hold up to 200k sockets in the 100k test.
	raiseNoFile(1 << 20)
	b := &bench{out: *out, dur: *dur, rrDur: *rrDur, failovers: *failovers, iperf: *iperf, quick: *quick,
		failoverBudget: 75 * time.Second, log: logger, deadline: time.Now().Add(*budget)}
	for _, s := range strings.Split(*conns, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil && n > 0 {
			b.memConns = append(b.memConns, n)
		}
	}
	slices.Sort(b.memConns)
	if len(b.memConns) == 0 {
		b.memConns = []int{10000}
	}
	// HAProxy needs two sockets per connection in one process.
	b.haproxyMax = 300000
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil && rl.Max < 2*uint64(b.haproxyMax)+100 {
		b.haproxyMax = int(rl.Max/2) - 500
	}
	if *quick {
		b.dur, b.rrDur, b.failovers, b.iperf = 1500*time.Millisecond, 1500*time.Millisecond, 5, false
		b.memConns, b.failoverBudget = []int{10000}, 20*time.Second
	}
	sections := strings.Split(*only, ",")
	has := func(s string) bool { return slices.Contains(sections, s) }
	b.profile = has("profile")
	wantTopo := strings.Split(*topos, ",")
	for _, s := range sections {
		if !slices.Contains(allSections, s) {
			logger.Printf("unknown section %q", s)
			return 2
		}
	}
	var err error
	if b.self, err = os.Executable(); err != nil {
		logger.Print(err)
		return 1
	}
	if b.root, err = moduleRoot(); err != nil {
		logger.Print(err)
		return 1
	}
	if !filepath.IsAbs(b.out) {
		b.out = filepath.Join(b.root, b.out)
	}
	tmp, err := os.MkdirTemp("", "ftbench-")
	if err != nil {
		logger.Print(err)
		return 1
	}
	defer os.RemoveAll(tmp)
	b.ftbridged = *ftbridged
	if b.ftbridged == "" {
		b.ftbridged = filepath.Join(tmp, "ftbridged")
		cmd := exec.Command("go", "build", "-o", b.ftbridged, "./cmd/ftbridged")
		cmd.Dir = b.root
		if out, err := cmd.CombinedOutput(); err != nil {
			logger.Printf("building ftbridged: %v\n%s", err, out)
			return 1
		}
	}

	start := time.Now()
	// The revision is read before the run writes its own outputs (which
	// would otherwise always count as uncommitted changes).
	rep := &report{started: start, quick: b.quick, dur: b.dur, rrDur: b.rrDur, sections: sections, loadStart: loadAvg(),
		rev: gitRev(b.root)}
	for _, name := range wantTopo {
		if !slices.Contains(allTopos, name) {
			logger.Printf("unknown topology %q", name)
			return 2
		}
	}
	// The baseline lab serves the kernel and then the HAProxy runs.
	if slices.Contains(wantTopo, "kernel") || slices.Contains(wantTopo, "haproxy") {
		if err := b.runBaseline(rep, wantTopo, has); err != nil {
			logger.Printf("baseline: %v", err)
			rep.problems = append(rep.problems, "baseline: "+err.Error())
		}
	}
	for _, ft := range ftbTopos {
		name := ft.name
		if !slices.Contains(wantTopo, name) {
			continue
		}
		if b.late(name) {
			rep.problems = append(rep.problems, name+": skipped, over the time budget")
			continue
		}
		if err := b.runFTB(rep, ft.replicas, ft.loops, has); err != nil {
			logger.Printf("%s: %v", name, err)
			rep.problems = append(rep.problems, name+": "+err.Error())
		}
	}
	if has("failover") {
		if b.late("failover") {
			rep.problems = append(rep.problems, "failover: skipped, over the time budget")
		} else {
			st, err := b.measureFailover(b.failovers)
			rep.stalls = st
			if err != nil {
				logger.Printf("failover: %v", err)
				rep.problems = append(rep.problems, "failover: "+err.Error())
			}
		}
	}
	rep.elapsed = time.Since(start)
	rep.loadEnd = loadAvg()
	if err := rep.write(b); err != nil {
		logger.Print(err)
		return 1
	}
	logger.Printf("wrote %s in %v", filepath.Join(b.out, "benchmarks.md"), rep.elapsed.Round(time.Second))
	return 0
}

// late reports (and logs) that the time budget is spent.
func (b *bench) late(what string) bool {
	if time.Now().After(b.deadline) {
		b.logf("%s: skipped, over the time budget", what)
		return true
	}
	return false
}

// runBaseline measures kernel routing and HAProxy on one lab.
func (b *bench) runBaseline(rep *report, want []string, has func(string) bool) error {
	t, err := b.newBaseline()
	if err != nil {
		return err
	}
	defer t.lab.Close()
	if slices.Contains(want, "kernel") {
		r := &topoResult{Name: "kernel"}
		b.measureAll(t, r, has, false)
		rep.results = append(rep.results, r)
	}
	if slices.Contains(want, "haproxy") && !b.late("haproxy") {
		if err := b.startHAProxy(t); err != nil {
			return err
		}
		r := &topoResult{Name: "haproxy"}
		b.measureAll(t, r, has, true)
		rep.results = append(rep.results, r)
	}
	return nil
}

// runFTB measures ftbridge with n replicas.
func (b *bench) runFTB(rep *report, n, loops int, has func(string) bool) error {
	hold := 0
	if has("mem") {
		hold = b.memConns[len(b.memConns)-1]
		if n != 2 || loops != 0 {
			hold = b.memConns[0]
		}
	}
	t, err := b.newFTB(n, loops, hold)
	if err != nil {
		return err
	}
	defer t.lab.Close()
	r := &topoResult{Name: t.name}
	b.measureAll(t, r, has, true)
	rep.results = append(rep.results, r)
	s, err := b.snapshot(t)
	if err == nil {
		var drops []string
		for k, v := range s.Drops {
			if v > 0 {
				drops = append(drops, fmt.Sprintf("%s=%d", k, v))
			}
		}
		slices.Sort(drops)
		b.logf("%s: failovers %d, divergences %d, drops %s", t.name, s.Failovers, s.Divergences, strings.Join(drops, " "))
		if s.Failovers > 0 || s.Divergences > 0 {
			rep.problems = append(rep.problems, fmt.Sprintf("%s: %d failovers and %d divergences on a healthy run; first events: %s",
				t.name, s.Failovers, s.Divergences, firstEvents(t.box.Log(), 3)))
		}
	}
	return nil
}

// measureAll runs the selected sections on one topology. mem says whether
// the memory test applies (it needs a box process).
func (b *bench) measureAll(t *topo, r *topoResult, has func(string) bool, mem bool) {
	b.logf("== %s", t.name)
	if has("bulk") && !b.late(t.name+" bulk") {
		b.measureBulk(t, r)
	}
	if has("rr") && !b.late(t.name+" rr") {
		b.measureRR(t, r)
	}
	if has("conn") && !b.late(t.name+" conn") {
		b.measureConnRate(t, r)
	}
	// The profile comes before the memory test, which restarts the daemon
	// and leaves it busy with 100k connections.
	if b.profile && (t.name == "ftbridge-1" || t.name == "ftbridge-2") && !b.late("profile") {
		b.profileBox(t, r)
	}
	if has("mem") && mem {
		counts := b.memConns
		switch t.name {
		case "ftbridge-1", "ftbridge-3", "ftbridge-2x2":
			counts = counts[:1]
		case "haproxy":
			// As many as its open-file limit allows, once.
			counts = []int{min(counts[0], b.haproxyMax-200)}
		}
		for _, n := range counts {
			if b.late(t.name + " mem") {
				break
			}
			b.measureMemory(t, r, n)
		}
	}
}

// moduleRoot finds the directory of the project's go.mod from the working
// directory up.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/ftbridge/ftbridge") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run ftbench from inside the ftbridge repository")
		}
		dir = parent
	}
}

// firstEvents returns the first n failover, stall or divergence lines of a
// daemon log, for the report.
func firstEvents(log string, n int) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "SNAPSHOT") {
			continue
		}
		if strings.Contains(l, " failover ") || strings.Contains(l, " stalled ") || strings.Contains(l, " diverged ") ||
			strings.Contains(l, " replica-down ") {
			if i := strings.Index(l, "ftbridged: "); i >= 0 {
				l = l[i+len("ftbridged: "):]
			}
			out = append(out, "`"+l+"`")
			if len(out) == n {
				break
			}
		}
	}
	return strings.Join(out, "; ")
}
