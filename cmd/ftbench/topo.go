package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/engine"
	"github.com/ftbridge/ftbridge/integration/lab"
)

// Service ports every topology offers: the load protocol, the hold port
// (idle connections), and iperf3 where it can run (one server only: its
// control channel is not deterministic, so it cannot be replicated).
const (
	loadPort  = 7000
	holdPort  = 7001
	iperfPort = 5201
)

// topo is one path from the client namespace to a server: what the client
// dials, and the process (if any) that carries the traffic in the box.
type topo struct {
	name    string // kernel, haproxy, ftbridge-1, ...
	lab     *lab.Lab
	target  string // address the client dials (no port)
	box     *lab.Proc
	iperf   bool
	sources []string // client source addresses for many connections
	// heapLive is the daemon's live Go heap from its latest MEMSTATS line
	// (written after a collection on SIGUSR2), 0 if it gave none.
	heapLive uint64
	servers  []*lab.Proc
	// ftbridged only. loops: the configuration's "loops" (0: default).
	loops   int
	cfgPath string
	logOff  int64
}

// boxPid is the PID whose CPU and memory count as the box's, or 0 for
// kernel forwarding (softirq work is charged to no process).
func (t *topo) boxPid() int {
	if t.box == nil {
		return 0
	}
	return t.box.Pid()
}

// runIn runs "ip netns exec ns cmd args..." and fails with its output.
func runIn(l *lab.Lab, ns string, cmd string, args ...string) error {
	_, err := l.Run(ns, cmd, args...)
	return err
}

func sysctls(l *lab.Lab, ns string, kv ...string) error {
	for i := 0; i+1 < len(kv); i += 2 {
		if err := l.SetSysctl(ns, kv[i], kv[i+1]); err != nil {
			return err
		}
	}
	return nil
}

// clientSetup gives the client namespace extra source addresses (100k
// connections to one service port need more than one address's ports) and
// a wide port range.
func (b *bench) clientSetup(l *lab.Lab) ([]string, error) {
	srcs := []string{"198.18.0.1"}
	for _, a := range []string{"198.18.0.2", "198.18.0.3"} {
		if err := runIn(l, l.ClientNS, "ip", "addr", "add", a+"/24", "dev", "eth0"); err != nil {
			return nil, err
		}
		srcs = append(srcs, a)
	}
	return srcs, sysctls(l, l.ClientNS,
		"net.ipv4.ip_local_port_range", "1024 65535",
		"net.ipv4.tcp_tw_reuse", "1")
}

// startServers starts the load server (and iperf3 when asked) in every
// replica namespace, listening on addr, plus enough extra hold-port
// processes for holdConns connections per replica.
func (b *bench) startServers(t *topo, addrs []string, holdConns int) error {
	for i, ns := range t.lab.ReplicaNS {
		p, err := t.lab.Start(ns, b.self, "serve", "-listen", addrs[i], "-ports", strconv.Itoa(loadPort), "-hold", strconv.Itoa(holdPort))
		if err != nil {
			return err
		}
		t.servers = append(t.servers, p)
		for k := maxConnsPerProc; k < holdConns; k += maxConnsPerProc {
			if _, err := t.lab.Start(ns, b.self, "serve", "-listen", addrs[i], "-hold", strconv.Itoa(holdPort)); err != nil {
				return err
			}
		}
		if t.iperf && i == 0 {
			if _, err := t.lab.Start(ns, "iperf3", "-s", "-B", addrs[i], "-p", strconv.Itoa(iperfPort)); err != nil {
				return err
			}
		}
	}
	for _, ns := range t.lab.ReplicaNS {
		if err := waitListening(t.lab, ns, loadPort); err != nil {
			return err
		}
	}
	return nil
}

// restartServer replaces replica i's load server (after kill -9 or SIGSTOP).
func (b *bench) restartServer(t *topo, i int) error {
	old := t.servers[i]
	old.Kill()
	p, err := t.lab.Start(t.lab.ReplicaNS[i], b.self, "serve", "-listen", t.lab.VIP.String(),
		"-ports", strconv.Itoa(loadPort), "-hold", strconv.Itoa(holdPort))
	if err != nil {
		return err
	}
	t.servers[i] = p
	return waitListening(t.lab, t.lab.ReplicaNS[i], loadPort)
}

func waitListening(l *lab.Lab, ns string, port int) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		out, _ := l.Run(ns, "ss", "-Hltn", fmt.Sprintf("sport = :%d", port))
		if strings.Contains(out, "LISTEN") {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("nothing listens on port %d in %s", port, ns)
}

// newBaseline builds the comparison topology: the lab with two replicas,
// readdressed so that the box namespace routes between three subnets
// (client 198.18.0.0/24, replica i 198.18.(i+1).0/24). The kernel baseline
// dials replica 0 directly through the box's routing; HAProxy listens on
// 198.18.0.10 (an address of the box's uplink) and balances over both
// replicas.
func (b *bench) newBaseline() (*topo, error) {
	l, err := lab.New(lab.Options{Replicas: 2, NoVary: true})
	if err != nil {
		return nil, err
	}
	t := &topo{name: "kernel", lab: l, target: "198.18.1.10", iperf: true}
	fail := func(err error) (*topo, error) {
		l.Close()
		return nil, err
	}
	if t.sources, err = b.clientSetup(l); err != nil {
		return fail(err)
	}
	if err := runIn(l, l.ClientNS, "ip", "route", "add", "198.18.0.0/15", "via", "198.18.0.254"); err != nil {
		return fail(err)
	}
	box := [][]string{{"addr", "add", "198.18.0.254/24", "dev", "up0"}, {"addr", "add", "198.18.0.10/24", "dev", "up0"}}
	var addrs []string
	for i, ns := range l.ReplicaNS {
		net := fmt.Sprintf("198.18.%d", i+1)
		box = append(box, []string{"addr", "add", net + ".254/24", "dev", l.ReplicaPorts[i]})
		for _, c := range [][]string{
			{"addr", "del", "198.18.0.10/24", "dev", "eth0"},
			{"addr", "add", net + ".10/24", "dev", "eth0"},
			{"route", "add", "default", "via", net + ".254"},
		} {
			if err := runIn(l, ns, "ip", c...); err != nil {
				return fail(err)
			}
		}
		addrs = append(addrs, net+".10")
	}
	for _, c := range box {
		if err := runIn(l, l.BoxNS, "ip", c...); err != nil {
			return fail(err)
		}
	}
	if err := sysctls(l, l.BoxNS,
		"net.ipv4.ip_forward", "1",
		"net.ipv4.ip_local_port_range", "1024 65535",
		"net.ipv4.tcp_tw_reuse", "1"); err != nil {
		return fail(err)
	}
	// HAProxy spreads the hold connections over both replicas.
	if err := b.startServers(t, addrs, b.haproxyMax); err != nil {
		return fail(err)
	}
	return t, nil
}

// haproxyConfig is HAProxy in TCP mode in front of both baseline replicas:
// round robin, no health checks, no logging, at most maxconn connections.
func haproxyConfig(maxconn int) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "global\n    maxconn %d\n", maxconn)
	sb.WriteString(`defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
`)
	for _, p := range []int{loadPort, holdPort, iperfPort} {
		fmt.Fprintf(&sb, "frontend f%d\n    bind 198.18.0.10:%d\n    maxconn %d\n    default_backend b%d\n", p, p, maxconn, p)
		fmt.Fprintf(&sb, "backend b%d\n    balance roundrobin\n", p)
		fmt.Fprintf(&sb, "    server a 198.18.1.10:%d maxconn %d\n", p, maxconn)
		if p != iperfPort {
			fmt.Fprintf(&sb, "    server b 198.18.2.10:%d maxconn %d\n", p, maxconn)
		}
	}
	return sb.String()
}

// ensureHAProxy installs HAProxy from apt when it is missing.
func ensureHAProxy(logf func(string, ...any)) error {
	if _, err := exec.LookPath("haproxy"); err == nil {
		return nil
	}
	logf("haproxy not found: installing it with apt-get")
	for _, args := range [][]string{{"update", "-qq"}, {"install", "-y", "-qq", "haproxy"}} {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get %s: %v: %s", strings.Join(args, " "), err, lastLines(string(out), 5))
		}
	}
	_, err := exec.LookPath("haproxy")
	return err
}

// startHAProxy turns the baseline topology into the HAProxy one.
func (b *bench) startHAProxy(t *topo) error {
	if err := ensureHAProxy(b.logf); err != nil {
		return err
	}
	cfg := filepath.Join(t.lab.Dir(), "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(haproxyConfig(b.haproxyMax)), 0o600); err != nil {
		return err
	}
	p, err := t.lab.Start(t.lab.BoxNS, "haproxy", "-f", cfg, "-db")
	if err != nil {
		return err
	}
	t.box, t.name, t.target = p, "haproxy", "198.18.0.10"
	if err := waitListening(t.lab, t.lab.BoxNS, loadPort); err != nil {
		return fmt.Errorf("haproxy: %w; log: %s", err, lastLines(p.Log(), 10))
	}
	return nil
}

// ftbConfig is the daemon's configuration for the bench: defaults except a
// connection table large enough for the 100k-connection test and for the
// TIME_WAIT entries the connection-rate test leaves behind (30 s each by
// default); extra adds top-level members.
func ftbConfig(l *lab.Lab, iperf bool, extra string) string {
	var reps []string
	for i, p := range l.ReplicaPorts {
		reps = append(reps, fmt.Sprintf(`{"name": %q, "interface": %q}`, string(rune('a'+i)), p))
	}
	ports := fmt.Sprintf("%d, %d", loadPort, holdPort)
	if iperf {
		ports += fmt.Sprintf(", %d", iperfPort)
	}
	return fmt.Sprintf(`{
  "uplink": %q,
  "replicas": [%s],
  "services": [{"address": %q, "ports": [%s]}],
  "limits": {"max_connections": 1048576}%s
}
`, l.Uplink, strings.Join(reps, ", "), l.VIP, ports, extra)
}

// newFTB builds a lab with n replicas and ftbridged in its box namespace,
// with hold servers for holdConns connections.
func (b *bench) newFTB(n, loops, holdConns int) (*topo, error) {
	l, err := lab.New(lab.Options{Replicas: n, NoVary: true})
	if err != nil {
		return nil, err
	}
	t := &topo{name: fmt.Sprintf("ftbridge-%d", n), lab: l, target: l.VIP.String(), iperf: n == 1, loops: loops}
	if loops > 0 {
		t.name = fmt.Sprintf("ftbridge-%dx%d", n, loops)
	}
	fail := func(err error) (*topo, error) {
		l.Close()
		return nil, err
	}
	if t.sources, err = b.clientSetup(l); err != nil {
		return fail(err)
	}
	addrs := make([]string, n)
	for i := range addrs {
		addrs[i] = l.VIP.String()
	}
	if err := b.startServers(t, addrs, holdConns); err != nil {
		return fail(err)
	}
	if err := b.startDaemon(t, ""); err != nil {
		return fail(err)
	}
	return t, nil
}

// startDaemon (re)starts ftbridged with the bench configuration plus
// extra (and the command-line args), and waits until every replica serves every port.
func (b *bench) startDaemon(t *topo, extra string, args ...string) error {
	if t.box != nil {
		t.box.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- t.box.Wait() }()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			t.box.Kill()
		}
	}
	t.cfgPath = filepath.Join(t.lab.Dir(), fmt.Sprintf("ftbridged-%d.json", time.Now().UnixNano()))
	if t.loops > 0 {
		extra = fmt.Sprintf(`, "loops": %d`, t.loops) + extra
	}
	if err := os.WriteFile(t.cfgPath, []byte(ftbConfig(t.lab, t.iperf, extra)), 0o600); err != nil {
		return err
	}
	p, err := t.lab.Start(t.lab.BoxNS, b.ftbridged, append([]string{"--config", t.cfgPath, "--quiet-conns"}, args...)...)
	if err != nil {
		return err
	}
	t.box, t.logOff = p, 0
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.Log(), "running:") {
		if p.Exited() || time.Now().After(deadline) {
			return fmt.Errorf("ftbridged did not start: %s", lastLines(p.Log(), 10))
		}
		time.Sleep(10 * time.Millisecond)
	}
	return b.waitHealthy(t, 15*time.Second)
}

// snapshot asks ftbridged for a snapshot (SIGUSR1) and reads it from the
// log, scanning only what was written since the previous one.
func (b *bench) snapshot(t *topo) (engine.Snapshot, error) {
	if err := t.box.Signal(syscall.SIGUSR1); err != nil {
		return engine.Snapshot{}, err
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		f, err := os.Open(t.box.LogPath)
		if err != nil {
			return engine.Snapshot{}, err
		}
		f.Seek(t.logOff, io.SeekStart)
		r := bufio.NewReaderSize(f, 1<<20)
		off := t.logOff
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				break // a partial last line is read again next time
			}
			off += int64(len(line))
			if i := strings.Index(line, "MEMSTATS "); i >= 0 {
				var m struct {
					HeapLive uint64 `json:"heap_live_bytes"`
				}
				if json.Unmarshal([]byte(line[i+len("MEMSTATS "):]), &m) == nil {
					t.heapLive = m.HeapLive
				}
				continue
			}
			if i := strings.Index(line, "SNAPSHOT "); i >= 0 {
				var s engine.Snapshot
				jerr := json.Unmarshal([]byte(line[i+len("SNAPSHOT "):]), &s)
				f.Close()
				t.logOff = off
				return s, jerr
			}
		}
		f.Close()
		t.logOff = off
		time.Sleep(5 * time.Millisecond)
	}
	return engine.Snapshot{}, errors.New("no snapshot from ftbridged")
}

// waitHealthy waits until every replica is up and serves the load port.
func (b *bench) waitHealthy(t *topo, timeout time.Duration) error {
	want := fmt.Sprintf("%s:%d", t.lab.VIP, loadPort)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		s, err := b.snapshot(t)
		if err != nil {
			return err
		}
		ok := 0
		for _, r := range s.Replicas {
			for _, sv := range r.Services {
				if r.Up && sv == want {
					ok++
				}
			}
		}
		if ok == len(t.lab.ReplicaNS) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s: replicas not healthy after %v: %s", t.name, timeout, lastLines(t.box.Log(), 10))
}

// lastLines returns the last n lines of a log, leaving out snapshots
// (one long JSON line each).
func lastLines(s string, n int) string {
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		if !strings.Contains(l, "SNAPSHOT ") {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
