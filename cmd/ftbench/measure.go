package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The measurements of one topology. Names of cases: "down1" is a download
// (server to client) over one stream, "up4" an upload over four.
var bulkCases = []struct {
	key     string
	down    bool
	streams int
}{{"down1", true, 1}, {"down4", true, 4}, {"up1", false, 1}, {"up4", false, 4}}

// topoResult is everything measured on one topology.
type topoResult struct {
	Name string `json:"name"`
	// Gbps per bulk case, from the bench's own client and server.
	Gbps map[string]float64 `json:"gbps"`
	// IperfGbps per bulk case, from iperf3 (single-server topologies only).
	IperfGbps map[string]float64 `json:"iperf_gbps,omitempty"`
	// Failovers counts the failovers ftbridged reported during each bulk
	// case: on a healthy run any is a false positive of failure detection,
	// and the rest of that case ran with fewer replicas.
	Failovers map[string]uint64 `json:"failovers,omitempty"`
	// BoxCPU is the box process's CPU seconds per Gbit moved, per bulk case.
	BoxCPU map[string]float64 `json:"box_cpu_s_per_gbit,omitempty"`
	// MachineCPU is the whole machine's busy CPU seconds per Gbit moved.
	MachineCPU map[string]float64 `json:"machine_cpu_s_per_gbit"`
	// RTTus are the request/response round trips in microseconds.
	RTTus  []float64 `json:"-"`
	RRRate float64   `json:"rr_per_s"`
	P50us  float64   `json:"rtt_p50_us"`
	P99us  float64   `json:"rtt_p99_us"`
	// ConnRate is new connections per second (connect, 1-byte exchange, close).
	ConnRate   float64 `json:"conns_per_s"`
	ConnErrors int     `json:"conn_errors"`
	// MemPerConn is the box process's RSS growth per open connection, by
	// connection count; MemConns is how many were actually open. MemLost notes counts at
	// which the box lost connections on the way (so no per-connection
	// figure is given).
	MemPerConn map[int]float64 `json:"mem_bytes_per_conn,omitempty"`
	MemConns   map[int]int     `json:"mem_conns_open,omitempty"`
	MemLost    map[int]string  `json:"mem_lost,omitempty"`
	// HeapPerConn is the growth of the daemon's live Go heap (measured
	// right after a collection) per connection in its table: the
	// connections' state without the collector's slack that RSS also
	// holds.
	HeapPerConn map[int]float64 `json:"heap_bytes_per_conn,omitempty"`
	// Profile is the top of a CPU profile of the box process during a
	// one-stream download, when one was taken.
	Profile string `json:"-"`
	// PProf is the top of the Go CPU profile (ftbridged -cpuprofile, read
	// with go tool pprof) of the same download: the daemon's own code.
	PProf string `json:"-"`
}

// load runs "ftbench load" in the client namespace and decodes its result.
func (b *bench) load(t *topo, s loadSpec, timeout time.Duration) (loadResult, error) {
	spec, _ := json.Marshal(s)
	cmd := t.lab.Command(t.lab.ClientNS, b.self, "load", string(spec))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		return loadResult{}, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return loadResult{}, fmt.Errorf("load %s: %v: %s", s.Kind, err, lastLines(errb.String(), 5))
		}
	case <-time.After(timeout):
		cmd.Process.Kill()
		<-done
		return loadResult{}, fmt.Errorf("load %s: timed out after %v", s.Kind, timeout)
	}
	var r loadResult
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return r, fmt.Errorf("load %s: %v", s.Kind, err)
	}
	return r, nil
}

// procCPU returns a process's user+system CPU time.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which may contain spaces.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	// USER_HZ is 100 on every Linux ABI Go supports.
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// procRSS returns a process's resident set size in bytes.
func procRSS(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// machineBusy returns the machine's busy CPU time over all cores (everything
// but idle and iowait) from /proc/stat.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var busy int64
	for i, v := range f[1:] {
		if i == 3 || i == 4 || i >= 8 { // idle, iowait; guest time is already in user
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		busy += n
	}
	return time.Duration(busy) * 10 * time.Millisecond
}

// measureBulk runs the four bulk cases with the bench's own load and, where
// the topology has one, iperf3.
func (b *bench) measureBulk(t *topo, r *topoResult) {
	r.Gbps, r.MachineCPU = map[string]float64{}, map[string]float64{}
	if t.boxPid() != 0 {
		r.BoxCPU = map[string]float64{}
	}
	addr := fmt.Sprintf("%s:%d", t.target, loadPort)
	ftb := strings.HasPrefix(t.name, "ftbridge")
	for _, c := range bulkCases {
		var fo0 uint64
		if ftb {
			// A replica failed by a (false) stall in the previous case is
			// held down for seconds: start each case with all replicas.
			if err := b.waitHealthy(t, 20*time.Second); err != nil {
				b.logf("%s %s: %v", t.name, c.key, err)
			}
			if s, err := b.snapshot(t); err == nil {
				fo0 = s.Failovers
			}
		}
		pid := t.boxPid()
		cpu0, m0 := procCPU(pid), machineBusy()
		res, err := b.load(t, loadSpec{Kind: "bulk", Addr: addr, Streams: c.streams, Down: c.down, Dur: b.dur}, b.dur+30*time.Second)
		if err != nil {
			b.logf("%s %s: %v", t.name, c.key, err)
			continue
		}
		cpu, m := procCPU(pid)-cpu0, machineBusy()-m0
		if ftb {
			if s, err := b.snapshot(t); err == nil && s.Failovers > fo0 {
				if r.Failovers == nil {
					r.Failovers = map[string]uint64{}
				}
				r.Failovers[c.key] = s.Failovers - fo0
				b.logf("%s %s: %d failovers during a healthy run: %s", t.name, c.key, s.Failovers-fo0, firstEvents(t.box.Log(), 2))
			}
		}
		gbit := float64(res.Bytes) * 8 / 1e9
		r.Gbps[c.key] = gbit / res.Secs
		if gbit > 0 {
			r.MachineCPU[c.key] = m.Seconds() / gbit
			if pid != 0 {
				r.BoxCPU[c.key] = cpu.Seconds() / gbit
			}
		}
		b.logf("%-11s bulk %-5s %6.2f Gbit/s  box %.3f s/Gbit  machine %.3f s/Gbit", t.name, c.key, r.Gbps[c.key],
			r.BoxCPU[c.key], r.MachineCPU[c.key])
	}
	if !t.iperf || !b.iperf {
		return
	}
	if _, err := exec.LookPath("iperf3"); err != nil {
		b.logf("iperf3 not installed: skipping the iperf3 cross-check")
		return
	}
	r.IperfGbps = map[string]float64{}
	for _, c := range bulkCases {
		args := []string{"-c", t.target, "-p", strconv.Itoa(iperfPort), "-t", strconv.FormatFloat(b.dur.Seconds(), 'f', 1, 64),
			"-P", strconv.Itoa(c.streams), "-J"}
		if c.down {
			args = append(args, "-R")
		}
		out, err := t.lab.Run(t.lab.ClientNS, "iperf3", args...)
		if err != nil {
			b.logf("%s iperf3 %s: %v", t.name, c.key, lastLines(err.Error(), 3))
			continue
		}
		var j struct {
			End struct {
				SumReceived struct {
					BitsPerSecond float64 `json:"bits_per_second"`
				} `json:"sum_received"`
			} `json:"end"`
		}
		if err := json.Unmarshal([]byte(out), &j); err != nil {
			b.logf("%s iperf3 %s: %v", t.name, c.key, err)
			continue
		}
		r.IperfGbps[c.key] = j.End.SumReceived.BitsPerSecond / 1e9
		b.logf("%-11s iperf3 %-5s %6.2f Gbit/s", t.name, c.key, r.IperfGbps[c.key])
	}
}

// measureRR measures 64-byte request/response round trips on one connection.
func (b *bench) measureRR(t *topo, r *topoResult) {
	res, err := b.load(t, loadSpec{Kind: "rr", Addr: fmt.Sprintf("%s:%d", t.target, loadPort), Size: 64, Dur: b.rrDur}, b.rrDur+30*time.Second)
	if err != nil {
		b.logf("%s rr: %v", t.name, err)
		return
	}
	r.RTTus = make([]float64, len(res.RTTs))
	for i, ns := range res.RTTs {
		r.RTTus[i] = float64(ns) / 1e3
	}
	slices.Sort(r.RTTus)
	r.RRRate = float64(res.Count) / res.Secs
	r.P50us, r.P99us = quantile(r.RTTus, 0.5), quantile(r.RTTus, 0.99)
	b.logf("%-11s rr    %8.0f/s  p50 %6.1f us  p99 %6.1f us", t.name, r.RRRate, r.P50us, r.P99us)
}

// measureConnRate measures new connections per second from 16 workers.
func (b *bench) measureConnRate(t *topo, r *topoResult) {
	res, err := b.load(t, loadSpec{Kind: "conn", Addr: fmt.Sprintf("%s:%d", t.target, loadPort), Workers: 16,
		Dur: b.rrDur, Sources: t.sources}, b.rrDur+60*time.Second)
	if err != nil {
		b.logf("%s conn: %v", t.name, err)
		return
	}
	r.ConnRate, r.ConnErrors = float64(res.Count)/res.Secs, res.Errors
	b.logf("%-11s conn  %8.0f/s  errors %d %s", t.name, r.ConnRate, res.Errors, res.FirstE)
}

// measureMemory opens n idle connections to the hold port and reports the
// box process's RSS growth per connection. The connections come from
// several client processes, none holding more than maxConnsPerProc.
func (b *bench) measureMemory(t *topo, r *topoResult, n int) {
	pid := t.boxPid()
	if pid == 0 {
		return
	}
	if r.MemPerConn == nil {
		r.MemPerConn, r.MemConns = map[int]float64{}, map[int]int{}
	}
	heapProf := ""
	if strings.HasPrefix(t.name, "ftbridge") {
		// A fresh daemon: the Go heap left by the bulk runs would be
		// returned to the OS at some point during the test and hide the
		// connections' memory. It writes a heap profile at each
		// collection (SIGUSR2), the last one with the connections open.
		heapProf = filepath.Join(t.lab.Dir(), fmt.Sprintf("heap-%s-%d.pprof", t.name, n))
		if err := b.startDaemon(t, "", "--memprofile", heapProf); err != nil {
			b.logf("%s hold %d: %v", t.name, n, err)
			return
		}
		pid = t.boxPid()
	}
	procs := (n + maxConnsPerProc - 1) / maxConnsPerProc
	var heap0 uint64
	if strings.HasPrefix(t.name, "ftbridge") {
		b.collect(t)
		if _, err := b.snapshot(t); err == nil {
			heap0 = t.heapLive
		}
	}
	rss0 := procRSS(pid)
	type client struct {
		cmd   *exec.Cmd
		stdin io.WriteCloser
		ready chan string
	}
	var clients []*client
	defer func() {
		for _, c := range clients {
			c.stdin.Close()
		}
		for _, c := range clients {
			done := make(chan struct{})
			go func() { c.cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				c.cmd.Process.Kill()
				<-done
			}
		}
	}()
	for i := 0; i < procs; i++ {
		share := n / procs
		if i == procs-1 {
			share = n - share*(procs-1)
		}
		// A gentle ramp (4 dials in flight per process): the point is the
		// memory of open connections, not the SYN rate.
		spec, _ := json.Marshal(loadSpec{Kind: "hold", Addr: fmt.Sprintf("%s:%d", t.target, holdPort), N: share,
			Workers: 4, Sources: t.sources})
		cmd := t.lab.Command(t.lab.ClientNS, b.self, "load", string(spec))
		stdin, _ := cmd.StdinPipe()
		stderr, _ := cmd.StderrPipe()
		cmd.Stdout = io.Discard
		if err := cmd.Start(); err != nil {
			b.logf("%s hold %d: %v", t.name, n, err)
			return
		}
		c := &client{cmd: cmd, stdin: stdin, ready: make(chan string, 1)}
		clients = append(clients, c)
		go func() {
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "READY") {
					c.ready <- sc.Text()
				}
			}
			close(c.ready)
		}()
	}
	open, errs := 0, 0
	timeout := time.After(180 * time.Second)
	for _, c := range clients {
		select {
		case line := <-c.ready:
			var o, e int
			fmt.Sscanf(line, "READY %d %d", &o, &e)
			open, errs = open+o, errs+e
		case <-timeout:
			b.logf("%s hold %d: not every client was ready within 180 s", t.name, n)
			return
		}
	}
	// The box completes a handshake after the client does: give the last
	// ones a moment, then read.
	time.Sleep(time.Second)
	boxConns := -1
	var heap1 uint64
	if strings.HasPrefix(t.name, "ftbridge") {
		b.collect(t)
	}
	rss1 := procRSS(pid)
	if strings.HasPrefix(t.name, "ftbridge") {
		if s, err := b.snapshot(t); err == nil {
			boxConns = s.Connections
			heap1 = t.heapLive
		}
	}
	if boxConns >= 0 && float64(boxConns) < 0.95*float64(open) {
		// The box dropped connections on the way (replicas failed under
		// the load): its RSS holds the churn, not n connections.
		if r.MemLost == nil {
			r.MemLost = map[int]string{}
		}
		r.MemLost[n] = fmt.Sprintf("box held %d of %d (%s)", boxConns, open, firstEvents(t.box.Log(), 2))
		b.logf("%s hold %d: the box holds %d of %d open connections: %s", t.name, n, boxConns, open, firstEvents(t.box.Log(), 3))
		return
	}
	if open > 0 {
		r.MemPerConn[n] = float64(rss1-rss0) / float64(open)
		r.MemConns[n] = open
	}
	heapNote := ""
	if heap0 > 0 && heap1 > heap0 && boxConns > 0 {
		if r.HeapPerConn == nil {
			r.HeapPerConn = map[int]float64{}
		}
		r.HeapPerConn[n] = float64(heap1-heap0) / float64(boxConns)
		heapNote = fmt.Sprintf(", live heap %d -> %d KiB, %.0f B/conn", heap0>>10, heap1>>10, r.HeapPerConn[n])
	}
	b.logf("%-11s hold  %d open (%d errors, box table %d): RSS %d -> %d KiB, %.0f B/conn%s", t.name, open, errs, boxConns,
		rss0>>10, rss1>>10, r.MemPerConn[n], heapNote)
	if heapProf != "" {
		// Where the connections' bytes are, for the notes.
		if out, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount", "12", "-sample_index", "inuse_space",
			b.ftbridged, heapProf).Output(); err == nil {
			b.logf("%s heap in use with %d connections:\n%s", t.name, boxConns, out)
		}
	}
}

// collect asks ftbridged to collect garbage and return free memory to the
// system (SIGUSR2), and gives it time to, so that its RSS and live heap
// show the connections rather than the ramp's garbage.
func (b *bench) collect(t *topo) {
	if t.box == nil || t.box.Signal(syscall.SIGUSR2) != nil {
		return
	}
	time.Sleep(1500 * time.Millisecond)
}

// quantile returns the q-quantile of sorted values (nearest rank).
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted)) + 0.5)
	return sorted[max(0, min(i, len(sorted)-1))]
}

// profileBox records the box process's CPU with perf during a one-stream
// download and returns the top of the flat profile.
func (b *bench) profileBox(t *topo, r *topoResult) {
	// A daemon that writes a Go CPU profile of this download when it stops.
	prof := filepath.Join(t.lab.Dir(), "cpu-"+t.name+".pprof")
	if err := b.startDaemon(t, "", "--cpuprofile", prof); err != nil {
		b.logf("%s profile: %v", t.name, err)
		return
	}
	defer func() {
		// Stopping writes the Go profile; the sections after this one get
		// a daemon without profiling.
		if err := b.startDaemon(t, ""); err != nil {
			b.logf("%s after profile: %v", t.name, err)
			return
		}
		out, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount", "25", b.ftbridged, prof).Output()
		if err != nil {
			b.logf("go tool pprof: %v", err)
			return
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		for i, l := range lines {
			if strings.HasPrefix(strings.TrimSpace(l), "flat") {
				lines = lines[i:]
				break
			}
		}
		r.PProf = strings.Join(lines, "\n")
	}()
	pid := t.boxPid()
	if pid == 0 {
		return
	}
	if _, err := exec.LookPath("perf"); err != nil {
		b.logf("perf not installed: no perf profile (apt-get install linux-perf); the Go profile follows")
		_, lerr := b.load(t, loadSpec{Kind: "bulk", Addr: fmt.Sprintf("%s:%d", t.target, loadPort), Streams: 1, Down: true, Dur: b.dur}, b.dur+30*time.Second)
		if lerr != nil {
			b.logf("%s profile load: %v", t.name, lerr)
		}
		return
	}
	data := fmt.Sprintf("%s/perf-%s.data", t.lab.Dir(), t.name)
	rec := exec.Command("perf", "record", "-q", "-F", "999", "-g", "-p", strconv.Itoa(pid), "-o", data)
	var rerr bytes.Buffer
	rec.Stderr = &rerr
	if err := rec.Start(); err != nil {
		b.logf("perf record: %v", err)
		return
	}
	time.Sleep(200 * time.Millisecond)
	_, lerr := b.load(t, loadSpec{Kind: "bulk", Addr: fmt.Sprintf("%s:%d", t.target, loadPort), Streams: 1, Down: true, Dur: b.dur}, b.dur+30*time.Second)
	rec.Process.Signal(os.Interrupt)
	rec.Wait()
	if lerr != nil {
		b.logf("%s profile load: %v", t.name, lerr)
	}
	rep := exec.Command("perf", "report", "-i", data, "--stdio", "--no-children", "-g", "none",
		"--sort", "dso,symbol", "--percent-limit", "0.7")
	out, err := rep.Output()
	if err != nil {
		b.logf("perf report: %v %s", err, rerr.String())
		return
	}
	var keep []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			continue
		}
		keep = append(keep, strings.TrimRight(l, " "))
	}
	if len(keep) > 30 {
		keep = keep[:30]
	}
	r.Profile = strings.Join(keep, "\n")
}
