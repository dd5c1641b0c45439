package soak

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"
)

// Dist summarises a set of durations.
type Dist struct {
	N      int           `json:"n"`
	Min    time.Duration `json:"min_ns"`
	Median time.Duration `json:"median_ns"`
	P90    time.Duration `json:"p90_ns"`
	P99    time.Duration `json:"p99_ns"`
	Max    time.Duration `json:"max_ns"`
}

// NewDist computes the distribution of ds (nearest-rank percentiles).
func NewDist(ds []time.Duration) Dist {
	if len(ds) == 0 {
		return Dist{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := func(p float64) time.Duration {
		// Nearest rank: the smallest value with at least p of the data
		// at or below it.
		i := int(p*float64(len(s))+0.999999) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	return Dist{N: len(s), Min: s[0], Median: rank(0.5), P90: rank(0.9), P99: rank(0.99), Max: s[len(s)-1]}
}

func (d Dist) String() string {
	if d.N == 0 {
		return "none"
	}
	r := func(x time.Duration) string { return fmtDur(x) }
	return fmt.Sprintf("n=%d min %s, median %s, p90 %s, p99 %s, max %s", d.N, r(d.Min), r(d.Median), r(d.P90), r(d.P99), r(d.Max))
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}

// FaultRecord is one fault the runner injected.
type FaultRecord struct {
	N      int       `json:"n"`
	Kind   string    `json:"kind"`
	Target string    `json:"target"`
	Detail string    `json:"detail,omitempty"`
	Start  time.Time `json:"start"`
	// Detected is when the daemon first reacted (an event naming the
	// victim) after Start; zero if it did not within the wait.
	Detected time.Duration `json:"detected_ns,omitempty"`
	// Healed is when the fault was undone, Recovered when every replica
	// was healthy again, both after Start.
	Healed    time.Duration `json:"healed_ns,omitempty"`
	Recovered time.Duration `json:"recovered_ns,omitempty"`
	// Failovers and Removed count the daemon's failover and
	// member-removed events between Start and Recovered.
	Failovers int    `json:"failovers"`
	Removed   int    `json:"removed"`
	Err       string `json:"err,omitempty"`
}

// KindStats summarises the sessions of one kind.
type KindStats struct {
	Sessions int   `json:"sessions"`
	Failed   int   `json:"failed"`
	Down     int64 `json:"down_bytes"`
	Up       int64 `json:"up_bytes"`
	Ops      int   `json:"ops"`
	Gap      Dist  `json:"max_gap"`
}

// Memory is the daemon's footprint over the run.
type Memory struct {
	Baseline ProcStatus   `json:"baseline"`
	Peak     ProcStatus   `json:"peak"`
	Final    ProcStatus   `json:"final"`
	Samples  []ProcStatus `json:"samples"`
	// Bound is the criterion the final sample is held to.
	Bound string `json:"bound"`
	OK    bool   `json:"ok"`
}

// Report is the outcome of a soak run.
type Report struct {
	Date     time.Time     `json:"date"`
	Machine  string        `json:"machine"`
	Commit   string        `json:"commit,omitempty"`
	Config   Config        `json:"config"`
	Daemon   string        `json:"daemon_config"`
	Impair   string        `json:"impairment_method"`
	Elapsed  time.Duration `json:"elapsed_ns"`
	Lab      string        `json:"lab"`
	Problems []string      `json:"problems,omitempty"`

	// Failovers is the number of failover events in the daemon's log;
	// FailoverCounter the daemon's own counter at the end (they agree
	// unless the log lost events, which EventsDropped would show).
	Failovers         int            `json:"failovers"`
	FailoverCounter   uint64         `json:"failover_counter"`
	FailoversByReason map[string]int `json:"failovers_by_reason"`
	MembersRemoved    int            `json:"members_removed"`
	Divergences       uint64         `json:"divergences"`
	ClientResets      int            `json:"client_resets"`
	Drops             map[string]uint64

	Sessions      int                  `json:"sessions"`
	Verified      int                  `json:"verified"`
	Failed        int                  `json:"failed"`
	BytesDown     int64                `json:"bytes_down"`
	BytesUp       int64                `json:"bytes_up"`
	Ops           int                  `json:"ops"`
	ByKind        map[string]KindStats `json:"by_kind"`
	FailureClass  map[string]int       `json:"failure_classes,omitempty"`
	Stalls        Dist                 `json:"stalls_all"`
	FailoverStall Dist                 `json:"stalls_with_failover"`
	StallByFault  map[string]Dist      `json:"stalls_by_fault"`
	DetectByFault map[string]Dist      `json:"detection_by_fault"`

	Faults      []FaultRecord  `json:"faults"`
	FaultCounts map[string]int `json:"fault_counts"`
	Skipped     int            `json:"faults_skipped"`

	Failures []Failure `json:"failures,omitempty"`
	// Episodes groups the failures that happened together, with the
	// replica-wide events of the daemon around them: usually one cause
	// (every replica of some connections failed at once) explains many.
	Episodes []Episode `json:"episodes,omitempty"`

	Memory      Memory `json:"memory"`
	FinalConns  int    `json:"final_connections"`
	FinalHeld   int64  `json:"final_held_bytes"`
	DaemonStop  string `json:"daemon_stop"`
	FinalCheck  string `json:"final_check"`
	EventsTotal int    `json:"events"`

	// Pass: no session failed, the table drained, memory returned to its
	// bound, the daemon stopped cleanly and no runner problem occurred.
	Pass bool `json:"pass"`
}

// Failure is a failed session with the daemon's events about its
// connection, and the faults that were active around it.
type Failure struct {
	Session Session  `json:"session"`
	Faults  []string `json:"faults"`
	Events  []string `json:"events"`
}

// Episode is a burst of failed sessions.
type Episode struct {
	Start, End time.Time
	Sessions   int            `json:"sessions"`
	Classes    map[string]int `json:"classes"`
	// Faults are the runner's faults in progress; Events the daemon's
	// replica-wide events (replica down, stalled, port gone) around it.
	Faults []string `json:"faults"`
	Events []string `json:"events"`
}

// maxListed bounds the failed sessions listed one by one in the markdown
// report (the JSON has them all).
const maxListed = 40

// WriteFiles writes the report as dir/name.json and dir/name.md.
func (r *Report) WriteFiles(dir, name string) (jsonPath, mdPath string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	jsonPath = filepath.Join(dir, name+".json")
	mdPath = filepath.Join(dir, name+".md")
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(jsonPath, append(js, '\n'), 0o644); err != nil {
		return "", "", err
	}
	f, err := os.Create(mdPath)
	if err != nil {
		return "", "", err
	}
	r.Markdown(f)
	return jsonPath, mdPath, f.Close()
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func mib(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }

func human(b int64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	}
	return fmt.Sprintf("%d B", b)
}

// Markdown writes the report for humans.
func (r *Report) Markdown(w io.Writer) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	verdict := "PASS"
	if !r.Pass {
		verdict = "FAIL"
	}
	p("# Soak report: %d replicas, %s, seed %d: %s", r.Config.Replicas, r.Config.Duration, r.Config.Seed, verdict)
	p("")
	p("- Date: %s", r.Date.UTC().Format(time.RFC3339))
	p("- Machine: %s", r.Machine)
	if r.Commit != "" {
		p("- Commit: %s", r.Commit)
	}
	p("- Command: `%s`", r.Config.Command())
	p("- Elapsed: %s; %d client workers + %d long-lived idle connections%s", r.Elapsed.Round(time.Second), r.Config.Workers, r.Config.Idle, map[bool]string{true: " + redis", false: ""}[r.Config.Redis])
	p("- Impairments applied with: %s", r.Impair)
	if l := r.loadDist(); l != "" {
		p("- Machine load (1-minute load average, sampled every second; the machine is shared): %s", l)
	}
	p("")
	p("## Outcome")
	p("")
	p("| what | value |")
	p("| --- | --- |")
	p("| failovers performed (daemon log) | %d (daemon counter %d) |", r.Failovers, r.FailoverCounter)
	p("| failovers by reason | %s |", kv(r.FailoversByReason))
	p("| backups removed from connections | %d |", r.MembersRemoved)
	p("| faults injected | %d (%s); %d skipped (no safe victim) |", len(r.Faults), kv(r.FaultCounts), r.Skipped)
	p("| connections verified | %d of %d |", r.Verified, r.Sessions)
	p("| bytes verified | %s down, %s up |", human(r.BytesDown), human(r.BytesUp))
	p("| requests verified (INCR, echo, ...) | %d |", r.Ops)
	p("| lost / duplicated / reset / failed | %d (%s) |", r.Failed, kvOr(r.FailureClass, "none"))
	p("| RSTs the client received | %d |", r.ClientResets)
	p("| divergences | %d |", r.Divergences)
	p("| table after the run | %d connections, %d held bytes |", r.FinalConns, r.FinalHeld)
	p("| daemon stop (SIGTERM) | %s |", r.DaemonStop)
	p("| fresh connection after the run | %s |", r.FinalCheck)
	p("")
	p("## Client-visible stalls")
	p("")
	p("The longest gap a client saw between two reads (downloads, echoes), two")
	p("writes (uploads) or a request and its answer (INCR), per connection.")
	p("")
	p("| sessions | n | min | median | p90 | p99 | max |")
	p("| --- | --- | --- | --- | --- | --- | --- |")
	row := func(name string, d Dist) {
		if d.N == 0 {
			p("| %s | 0 | | | | | |", name)
			return
		}
		p("| %s | %d | %s | %s | %s | %s | %s |", name, d.N, fmtDur(d.Min), fmtDur(d.Median), fmtDur(d.P90), fmtDur(d.P99), fmtDur(d.Max))
	}
	row("all", r.Stalls)
	row("with a failover", r.FailoverStall)
	for _, k := range sortedKeys(r.StallByFault) {
		row("failover by "+k, r.StallByFault[k])
	}
	p("")
	p("Detection (fault injected to the daemon's first event about it):")
	p("")
	p("| fault | n | min | median | p90 | p99 | max |")
	p("| --- | --- | --- | --- | --- | --- | --- |")
	for _, k := range sortedKeys(r.DetectByFault) {
		row(k, r.DetectByFault[k])
	}
	p("")
	p("## Sessions by kind")
	p("")
	p("| kind | sessions | failed | down | up | requests | longest stall (median / max) |")
	p("| --- | --- | --- | --- | --- | --- | --- |")
	for _, k := range sortedKeys(r.ByKind) {
		s := r.ByKind[k]
		p("| %s | %d | %d | %s | %s | %d | %s / %s |", k, s.Sessions, s.Failed, human(s.Down), human(s.Up), s.Ops, fmtDur(s.Gap.Median), fmtDur(s.Gap.Max))
	}
	p("")
	p("## The daemon's memory and threads")
	p("")
	m := r.Memory
	p("| moment | VmRSS | threads | CPU |")
	p("| --- | --- | --- | --- |")
	p("| baseline (healthy, before traffic) | %s | %d | %s |", mib(m.Baseline.RSSKiB), m.Baseline.Threads, m.Baseline.CPU.Round(10*time.Millisecond))
	p("| peak | %s | %d | |", mib(m.Peak.RSSKiB), m.Peak.Threads)
	p("| final (traffic stopped, table drained) | %s | %d | %s |", mib(m.Final.RSSKiB), m.Final.Threads, m.Final.CPU.Round(10*time.Millisecond))
	p("")
	p("Bound: %s: %s.", m.Bound, map[bool]string{true: "held", false: "NOT held"}[m.OK])
	p("")
	if len(m.Samples) > 0 {
		p("Over time (every %d-th sample):", max(1, len(m.Samples)/20))
		p("")
		p("| t | VmRSS | threads | machine load |")
		p("| --- | --- | --- | --- |")
		step := max(1, len(m.Samples)/20)
		for i := 0; i < len(m.Samples); i += step {
			s := m.Samples[i]
			p("| %s | %s | %d | %.1f |", s.Time.Sub(m.Samples[0].Time).Round(time.Second), mib(s.RSSKiB), s.Threads, s.Load)
		}
		p("")
	}
	if len(r.Drops) > 0 {
		p("Drop counters at the end: %s.", kvU(r.Drops))
		p("")
	}
	p("## Problems")
	p("")
	if len(r.Problems) == 0 && len(r.Failures) == 0 {
		p("None.")
	}
	for _, pr := range r.Problems {
		p("- %s", pr)
	}
	if len(r.Episodes) > 0 {
		p("Failures by episode (sessions that failed within 2 s of each other):")
		p("")
		for _, e := range r.Episodes {
			p("- +%s to +%s: %d sessions (%s)", e.Start.Sub(r.Date).Round(100*time.Millisecond), e.End.Sub(r.Date).Round(100*time.Millisecond), e.Sessions, kv(e.Classes))
			for _, f := range e.Faults {
				p("  - fault: %s", f)
			}
			for _, ev := range e.Events {
				p("  - daemon: `%s`", ev)
			}
		}
		p("")
		p("Failed sessions:")
		p("")
	}
	for i, f := range r.Failures {
		if i == maxListed {
			p("- ... and %d more (see the JSON report)", len(r.Failures)-maxListed)
			break
		}
		s := f.Session
		p("- session %d (%s, %s, worker %d) at +%s: **%s**: %s", s.ID, s.Kind, s.Local, s.Worker,
			s.Start.Sub(r.Date).Round(time.Millisecond), s.Class, s.Err)
		for _, fl := range f.Faults {
			p("  - fault: %s", fl)
		}
		for _, ev := range f.Events {
			p("  - daemon: `%s`", ev)
		}
	}
	p("")
	p("## Faults")
	p("")
	p("| # | kind | target | detail | detected | healed | recovered | failovers | removed | error |")
	p("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, f := range r.Faults {
		det := "-"
		if f.Detected > 0 {
			det = fmtDur(f.Detected)
		}
		p("| %d | %s | %s | %s | %s | %s | %s | %d | %d | %s |", f.N, f.Kind, f.Target, f.Detail, det,
			fmtDur(f.Healed), fmtDur(f.Recovered), f.Failovers, f.Removed, f.Err)
	}
	p("")
	p("## Daemon configuration")
	p("")
	p("```json")
	p("%s", strings.TrimSpace(r.Daemon))
	p("```")
}

// loadDist summarises the machine's load average over the samples.
func (r *Report) loadDist() string {
	var ls []float64
	for _, s := range r.Memory.Samples {
		if s.Load > 0 {
			ls = append(ls, s.Load)
		}
	}
	if len(ls) == 0 {
		return ""
	}
	slices.Sort(ls)
	return fmt.Sprintf("min %.1f, median %.1f, max %.1f on %d CPUs", ls[0], ls[len(ls)/2], ls[len(ls)-1], runtime.NumCPU())
}

func kv(m map[string]int) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func kvOr(m map[string]int, none string) string {
	if len(m) == 0 {
		return none
	}
	return kv(m)
}

func kvU(m map[string]uint64) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		if m[k] != 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
		}
	}
	if len(parts) == 0 {
		return "all zero"
	}
	return strings.Join(parts, ", ")
}
