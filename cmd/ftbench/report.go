package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// report collects a run's results and writes docs/benchmarks.md, the
// plots and a JSON copy of the numbers.
type report struct {
	rev        string // the tree's revision when the run started (gitRev)
	started    time.Time
	elapsed    time.Duration
	quick      bool
	dur, rrDur time.Duration
	sections   []string
	results    []*topoResult
	stalls     []stallResult
	problems   []string
	// load is the machine's load average at the start and the end: other
	// jobs on the same cores show up here.
	loadStart, loadEnd string
}

// loadAvg returns the 1, 5 and 15 minute load averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

func (r *report) get(name string) *topoResult {
	for _, t := range r.results {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// ratio formats a/b as "0.78x", or "-" when either is missing.
func ratio(a, b float64) string {
	if a <= 0 || b <= 0 || math.IsNaN(a) || math.IsNaN(b) {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

func num(v float64, format string) string {
	if v <= 0 || math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf(format, v)
}

// machine describes the host the run is on.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(strings.SplitN(string(b), "\n", 2)[0], "MemTotal:")), "%d", &kb)
		mem = fmt.Sprintf(", %.0f GiB RAM", float64(kb)/(1<<20))
	}
	kernel, _ := exec.Command("uname", "-r").Output()
	return fmt.Sprintf("%d vCPU %s%s, Linux %s, %s", runtime.NumCPU(), model, mem, strings.TrimSpace(string(kernel)), runtime.Version())
}

func toolVersion(name string, args ...string) string {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return "not installed"
	}
	return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
}

func gitRev(root string) string {
	cmd := exec.Command("git", "rev-parse", "--short", "HEAD")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return "unknown"
	}
	rev := strings.TrimSpace(string(out))
	cmd = exec.Command("git", "status", "--porcelain", "--untracked-files=no")
	cmd.Dir = root
	if out, err := cmd.Output(); err == nil && len(out) > 0 {
		rev += " with uncommitted changes"
	}
	return rev
}

// target is one line of the targets, judged on this run.
type target struct{ what, measured, verdict string }

func verdict(ok, known bool) string {
	switch {
	case !known:
		return "not measured"
	case ok:
		return "met"
	}
	return "**missed**"
}

func (r *report) targets() []target {
	var ts []target
	k, h := r.get("kernel"), r.get("haproxy")
	f1, f2 := r.get("ftbridge-1"), r.get("ftbridge-2")
	g := func(t *topoResult, key string) float64 {
		if t == nil || t.Gbps == nil {
			return 0
		}
		return t.Gbps[key]
	}
	for _, key := range []string{"down1", "down4", "up1", "up4"} {
		a, b := g(f1, key), g(k, key)
		ts = append(ts, target{"1 replica bulk " + key + " >= 0.75x kernel", ratio(a, b), verdict(a >= 0.75*b, a > 0 && b > 0)})
	}
	for _, key := range []string{"down1", "down4", "up1", "up4"} {
		a, b, c := g(f2, key), g(k, key), g(h, key)
		ts = append(ts, target{"2 replicas bulk " + key + " >= 0.6x kernel and >= 1.2x HAProxy",
			ratio(a, b) + " kernel, " + ratio(a, c) + " HAProxy", verdict(a >= 0.6*b && a >= 1.2*c, a > 0 && b > 0 && c > 0)})
	}
	for _, t := range []*topoResult{f1, f2} {
		if t == nil || k == nil {
			continue
		}
		known := t.P50us > 0 && k.P50us > 0
		ts = append(ts,
			target{t.Name + ": added RTT p50 <= +20 us", fmt.Sprintf("%+.1f us", t.P50us-k.P50us), verdict(t.P50us-k.P50us <= 20, known)},
			target{t.Name + ": added RTT p99 <= +80 us", fmt.Sprintf("%+.1f us", t.P99us-k.P99us), verdict(t.P99us-k.P99us <= 80, known)},
			target{t.Name + ": request/response rate >= 0.5x kernel", ratio(t.RRRate, k.RRRate), verdict(t.RRRate >= 0.5*k.RRRate, known)})
	}
	if f2 != nil {
		ts = append(ts, target{"2 replicas: >= 20k new connections/s", fmt.Sprintf("%.0f/s", f2.ConnRate), verdict(f2.ConnRate >= 20000, f2.ConnRate > 0)})
		for _, n := range []int{10000, 100000} {
			v, ok := f2.MemPerConn[n]
			m := fmt.Sprintf("%.0f B (RSS growth / %d open)", v, f2.MemConns[n])
			if h, hok := f2.HeapPerConn[n]; hok && ok {
				// The state is what stays live; RSS adds the
				// collector's slack (garbage of the ramp not yet
				// collected, pages not yet returned).
				m = fmt.Sprintf("%.0f B live heap (RSS growth %.0f B) / %d open", h, v, f2.MemConns[n])
				v = h
			}
			if l, lost := f2.MemLost[n]; lost {
				m, ok, v = "the box lost connections: "+l, true, math.Inf(1)
			}
			ts = append(ts, target{fmt.Sprintf("2 replicas: <= 1 KiB box state per connection at %dk connections", n/1000),
				m, verdict(v <= 1024, ok)})
		}
	}
	for _, s := range r.stalls {
		if s.Kind != "kill-9" && s.Kind != "link-down" {
			continue
		}
		p50, p99 := quantile(s.Stalls, 0.5), quantile(s.Stalls, 0.99)
		ts = append(ts, target{"failover stall (" + s.Kind + ", 2 replicas) median <= 20 ms, p99 <= 50 ms",
			fmt.Sprintf("%.1f / %.1f ms over %d", p50, p99, len(s.Stalls)), verdict(p50 <= 20 && p99 <= 50, len(s.Stalls) > 0)})
	}
	return ts
}

func (r *report) write(b *bench) error {
	dir := filepath.Join(b.out, "bench")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	plots := r.plots(dir)
	var sb strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&sb, format, args...) }
	w("# Benchmarks\n\n")
	w("Generated by `make bench` (`go run ./cmd/ftbench`); do not edit by hand: the next run rewrites this\n")
	w("file. Hand-written analysis lives in [bench/notes.md](bench/notes.md) and is included below.\n\n")
	w("- Date: %s; the run took %v", r.started.UTC().Format("2006-01-02 15:04 MST"), r.elapsed.Round(time.Second))
	if r.quick {
		w(" (`-quick`)")
	}
	w(".\n- Machine: %s.\n", machine())
	w("- Commit: %s. HAProxy: %s. iperf3: %s.\n", r.rev, toolVersion("haproxy", "-v"), toolVersion("iperf3", "--version"))
	w("- Load average (1/5/15 min) at the start %s, at the end %s: anything above what the bench itself\n", r.loadStart, r.loadEnd)
	w("  runs (about 2) means other jobs shared the two cores and the numbers are noisier.\n")
	w("- Bulk runs last %v each, request/response and connection-rate runs %v. Noise between runs on this\n", r.dur, r.rrDur)
	w("  machine kind is about +-30%%, so only ratios within one run mean much.\n\n")
	if len(r.problems) > 0 {
		w("**Problems in this run:**\n\n")
		for _, p := range r.problems {
			w("- %s\n", p)
		}
		w("\n")
	}
	w("%s", topologyText)

	w("## Against the targets (issue 6)\n\n| target | measured | |\n|---|---|---|\n")
	for _, t := range r.targets() {
		w("| %s | %s | %s |\n", t.what, t.measured, t.verdict)
	}
	w("\n")

	w("## Bulk throughput\n\nGbit/s from the bench's own client and server (deterministic output, so it runs through any number\n")
	w("of replicas); ratios are to kernel routing (K) and HAProxy (H) in this run.\n\n")
	w("| path | down, 1 stream | down, 4 streams | up, 1 stream | up, 4 streams |\n|---|---|---|---|---|\n")
	k, h := r.get("kernel"), r.get("haproxy")
	for _, t := range r.results {
		w("| %s |", t.Name)
		for _, c := range bulkCases {
			v := t.Gbps[c.key]
			cell := num(v, "%.2f")
			if n := t.Failovers[c.key]; n > 0 {
				cell += fmt.Sprintf(" **[%d false failovers]**", n)
			}
			if k != nil && t != k && v > 0 {
				cell += " (" + ratio(v, k.Gbps[c.key]) + " K"
				if h != nil && t != h {
					cell += ", " + ratio(v, h.Gbps[c.key]) + " H"
				}
				cell += ")"
			}
			w(" %s |", cell)
		}
		w("\n")
	}
	if p, ok := plots["throughput"]; ok {
		w("\n![bulk throughput](%s)\n", p)
	}
	for _, t := range r.results {
		for _, c := range bulkCases {
			if n := t.Failovers[c.key]; n > 0 {
				w("\n**%s, %s: ftbridged failed a healthy replica during the run (%d connections failed over)**: the\n", t.Name, c.key, n)
				w("gray-failure detector took a replica that was merely slower under load for a stalled one, so part of\n")
				w("that run had one replica fewer. See the notes below.\n")
			}
		}
	}
	var iperfRows []*topoResult
	for _, t := range r.results {
		if len(t.IperfGbps) > 0 {
			iperfRows = append(iperfRows, t)
		}
	}
	if len(iperfRows) > 0 {
		w("\nCross-check with iperf3 (one server only: iperf3's control channel cannot be replicated, so\n")
		w("there is no iperf3 row for 2 and 3 replicas):\n\n| path | down, 1 | down, 4 | up, 1 | up, 4 |\n|---|---|---|---|---|\n")
		for _, t := range iperfRows {
			w("| %s |", t.Name)
			for _, c := range bulkCases {
				w(" %s |", num(t.IperfGbps[c.key], "%.2f"))
			}
			w("\n")
		}
	}

	w("\n## CPU per Gbit\n\nCPU seconds per Gbit moved: the box process alone (ftbridged or HAProxy; kernel forwarding runs in\n")
	w("softirq and is charged to no process), and the whole machine (client, box and servers on the same two\n")
	w("cores, from /proc/stat).\n\n| path | box, down 1 | box, down 4 | box, up 1 | box, up 4 | machine, down 1 | machine, down 4 | machine, up 1 | machine, up 4 |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, t := range r.results {
		w("| %s |", t.Name)
		for _, c := range bulkCases {
			w(" %s |", num(t.BoxCPU[c.key], "%.3f"))
		}
		for _, c := range bulkCases {
			w(" %s |", num(t.MachineCPU[c.key], "%.3f"))
		}
		w("\n")
	}

	w("\n## Round trips and request rate\n\n64-byte request/response ping-pong on one connection (Go client and server, so both ends add their\n")
	w("own scheduling cost equally to every path).\n\n| path | requests/s | RTT p50 | RTT p99 | added p50 | added p99 |\n|---|---|---|---|---|---|\n")
	for _, t := range r.results {
		add50, add99 := "-", "-"
		if k != nil && t != k && t.P50us > 0 && k.P50us > 0 {
			add50, add99 = fmt.Sprintf("%+.1f us", t.P50us-k.P50us), fmt.Sprintf("%+.1f us", t.P99us-k.P99us)
		}
		rr := num(t.RRRate, "%.0f")
		if k != nil && t != k && t.RRRate > 0 {
			rr += " (" + ratio(t.RRRate, k.RRRate) + " K)"
		}
		w("| %s | %s | %s | %s | %s | %s |\n", t.Name, rr, num(t.P50us, "%.1f us"), num(t.P99us, "%.1f us"), add50, add99)
	}
	if p, ok := plots["rtt"]; ok {
		w("\n![RTT CDF](%s)\n", p)
	}

	w("\n## Connections\n\nNew connections per second: 16 client workers, each connection does connect, a 1-byte request, a\n")
	w("1-byte reply and the server's close. Memory: growth of the box process's RSS (VmRSS) while that many\n")
	w("idle connections are open, divided by their number (kernel routing keeps no per-connection state in a\n")
	w("process). ftbridged is asked to collect garbage and return free memory first (SIGUSR2), both before and\n")
	w("after, and its live Go heap growth per connection in its table is shown too: the state itself.\n\n| path | new conns/s | errors |")
	var counts []int
	for _, t := range r.results {
		for n := range t.MemPerConn {
			if !slices.Contains(counts, n) {
				counts = append(counts, n)
			}
		}
		for n := range t.MemLost {
			if !slices.Contains(counts, n) {
				counts = append(counts, n)
			}
		}
	}
	slices.Sort(counts)
	for _, n := range counts {
		w(" box memory per conn at %dk |", n/1000)
	}
	w("\n|---|---|---|%s\n", strings.Repeat("---|", len(counts)))
	for _, t := range r.results {
		cr := num(t.ConnRate, "%.0f")
		if k != nil && t != k && t.ConnRate > 0 {
			cr += " (" + ratio(t.ConnRate, k.ConnRate) + " K)"
		}
		w("| %s | %s | %d |", t.Name, cr, t.ConnErrors)
		for _, n := range counts {
			if v, ok := t.MemPerConn[n]; ok {
				if h, hok := t.HeapPerConn[n]; hok {
					w(" %.0f B RSS, %.0f B live heap (%d open) |", v, h, t.MemConns[n])
				} else {
					w(" %.0f B (%d open) |", v, t.MemConns[n])
				}
			} else if l, ok := t.MemLost[n]; ok {
				w(" **lost connections**: %s |", l)
			} else {
				w(" - |")
			}
		}
		w("\n")
	}

	if len(r.stalls) > 0 {
		w("\n## Failover stalls\n\nTwo replicas, default settings (except where noted), a paced download (%d KiB every %v, %d MiB) verified\n", paceChunk>>10, pacePause, paceBytes>>20)
		w("byte for byte; the fault hits replica a (the primary) %v into it. The stall is the longest time the\n", faultAt)
		w("client waited between two reads; the control series shows the pacing gap alone. A trial counts only\n")
		w("when the box reported a failover and the stream was intact.\n\n| fault | trials | min | median | p99 | max | skipped |\n|---|---|---|---|---|---|---|\n")
		for _, s := range r.stalls {
			w("| %s | %d | %.1f ms | %.1f ms | %.1f ms | %.1f ms | %d |\n", s.Kind, len(s.Stalls), quantile(s.Stalls, 0),
				quantile(s.Stalls, 0.5), quantile(s.Stalls, 0.99), quantile(s.Stalls, 1), s.Skipped)
		}
		w("\n")
		for _, s := range r.stalls {
			w("- %s: %s.", s.Kind, s.Note)
			if s.Kind == "sigstop" {
				w(" Detected by progress (`stall_timeout`, default 300 ms), so its stall is bounded by that setting; `hold_down` is 1 ms in this series only, so the restarted replica rejoins between trials.")
			}
			if len(s.Errors) > 0 {
				w(" Skipped trials said: %s.", strings.Join(s.Errors, "; "))
			}
			w("\n")
		}
		if p, ok := plots["stalls"]; ok {
			w("\n![failover stalls](%s)\n", p)
		}
	}

	var profiled []*topoResult
	for _, t := range r.results {
		if t.Profile != "" {
			profiled = append(profiled, t)
		}
	}
	if len(profiled) > 0 {
		w("\n## Where ftbridged spends its CPU\n\n`perf record -g` on ftbridged during a one-stream download, flat profile (self time, top entries).\n")
		for _, t := range profiled {
			w("\n### %s\n\n```\n%s\n```\n", t.Name, t.Profile)
			if t.PProf != "" {
				w("\nThe daemon's Go code alone (`ftbridged -cpuprofile`, `go tool pprof -top`):\n\n```\n%s\n```\n", t.PProf)
			}
		}
	}
	if notes, err := os.ReadFile(filepath.Join(dir, "notes.md")); err == nil {
		w("\n%s", notes)
	}
	w("\n## Running it\n\n%s", runningText)
	if err := os.WriteFile(filepath.Join(b.out, "benchmarks.md"), []byte(sb.String()), 0o644); err != nil {
		return err
	}
	js, _ := json.MarshalIndent(struct {
		Date    time.Time      `json:"date"`
		Results []*topoResult  `json:"results"`
		Stalls  []stallResult  `json:"stalls"`
		Targets []target       `json:"-"`
		Extra   map[string]any `json:"extra,omitempty"`
	}{Date: r.started.UTC(), Results: r.results, Stalls: r.stalls}, "", "  ")
	return os.WriteFile(filepath.Join(dir, "results.json"), js, 0o644)
}

// plots draws the figures and returns their paths relative to the docs
// directory, by name.
func (r *report) plots(dir string) map[string]string {
	paths := map[string]string{}
	if len(r.results) > 0 {
		var names []string
		var vals [][]float64
		for _, t := range r.results {
			if len(t.Gbps) == 0 {
				continue
			}
			names = append(names, t.Name)
			row := make([]float64, len(bulkCases))
			for i, c := range bulkCases {
				row[i] = math.NaN()
				if v, ok := t.Gbps[c.key]; ok {
					row[i] = v
				}
			}
			vals = append(vals, row)
		}
		if len(names) > 0 {
			groups := []string{"down, 1 stream", "down, 4 streams", "up, 1 stream", "up, 4 streams"}
			if err := barChart(filepath.Join(dir, "throughput.png"), "Bulk TCP throughput through the box", "Gbit/s", groups, names, vals); err == nil {
				paths["throughput"] = "bench/throughput.png"
			}
		}
		names, vals = nil, nil
		hi := 0.0
		for _, t := range r.results {
			if len(t.RTTus) == 0 {
				continue
			}
			names = append(names, t.Name)
			vals = append(vals, t.RTTus)
			hi = math.Max(hi, quantile(t.RTTus, 0.995))
		}
		if len(names) > 0 {
			ticks := niceTicks(hi, 8)
			if err := cdfChart(filepath.Join(dir, "rtt-cdf.png"), "64-byte request/response round trip", "RTT (us)", names, vals,
				0, ticks[len(ticks)-1], false, ticks); err == nil {
				paths["rtt"] = "bench/rtt-cdf.png"
			}
		}
	}
	var names []string
	var vals [][]float64
	for _, s := range r.stalls {
		if len(s.Stalls) > 0 {
			names = append(names, fmt.Sprintf("%s (%d)", s.Kind, len(s.Stalls)))
			vals = append(vals, s.Stalls)
		}
	}
	if len(names) > 0 {
		if err := cdfChart(filepath.Join(dir, "stalls.png"), "Client-visible stall per failover", "longest gap between reads (ms, log scale)",
			names, vals, 0.5, 2000, true, []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000}); err == nil {
			paths["stalls"] = "bench/stalls.png"
		}
	}
	return paths
}

const topologyText = `## What is compared

All paths run on the project's netns lab (integration/lab): a client namespace, a box namespace and
replica namespaces joined by veth pairs with the kernel's default offloads (TSO/GSO/GRO, checksum
offload) on. Client, box and servers share the machine's cores.

- **kernel**: the limit. The box namespace routes (ip_forward=1) between the client's subnet
  (198.18.0.0/24, box 198.18.0.254) and replica 0's (198.18.1.0/24, box 198.18.1.254, replica
  198.18.1.10); the client dials 198.18.1.10 directly. No NAT, no conntrack rules, no proxy.
- **haproxy**: HAProxy in TCP mode (what users run today; no failover) in the same box namespace, listening
  on 198.18.0.10 (an address of the box's uplink) with replicas 198.18.1.10 and 198.18.2.10 as round-robin
  backends; no health checks, no logging; HAProxy's default thread count.
- **ftbridge-N**: ftbridged in the box namespace with N replicas, all carrying the service address
  198.18.0.10, default settings except a connection table of 1M entries (the default 65536, with 30 s
  of TIME_WAIT per closed connection, would cap the connection-rate test near 2.2k new connections/s
  sustained). Matched release (the default). The default is one dataplane loop on a machine of two
  cores.
- **ftbridge-2x2**: ftbridge-2 with two dataplane loops ("loops": 2, flow affinity): connections split
  between two loops by a symmetric hash, each on a thread of its own. On two cores the second loop
  competes with the client, the servers and the kernel's packet work; this row shows what it costs or
  gains here, not what it gives on a box with cores to spare.

The server on every replica is the bench's own (cmd/ftbench serve): its output depends only on the stream
offset, so replicas agree byte for byte. Replicas keep the kernel's default TCP settings here (the lab's
per-replica differences, which exist to catch translation bugs, are off: NoVary).

`

const runningText = "```\n" + `make bench                       # full run, under 15 minutes: writes docs/benchmarks.md and docs/bench/*.png
go run ./cmd/ftbench -quick      # about 3 minutes
go run ./cmd/ftbench -only bulk,rr -topos kernel,ftbridge-1
go run ./cmd/ftbench -only failover -failovers 50
go test -run XXX -bench . ./dataplane/pkt ./dataplane/failover ./dataplane/engine   # micro-benchmarks
` + "```\n\nIt needs root (network namespaces, raw sockets), iproute2 and, for the profile, perf (Debian's\n" +
	"linux-perf); it installs HAProxy with apt-get when it is missing. It is not part of CI's pass/fail.\n"
