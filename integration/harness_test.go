package integration_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/engine"
	"github.com/ftbridge/ftbridge/integration/lab"
)

// Binaries built once by TestMain.
var bins struct {
	dir, ftbridged, labsvc string
	err                    error
}

func TestMain(m *testing.M) {
	if os.Geteuid() == 0 {
		dir, err := os.MkdirTemp("", "ftb-bins-")
		if err == nil {
			bins.dir = dir
			bins.ftbridged = filepath.Join(dir, "ftbridged")
			bins.labsvc = filepath.Join(dir, "labsvc")
			for out, pkg := range map[string]string{bins.ftbridged: "../cmd/ftbridged", bins.labsvc: "../integration/labsvc/cmd/labsvc"} {
				cmd := exec.Command("go", "build", "-o", out, pkg)
				cmd.Dir = "."
				if b, err := cmd.CombinedOutput(); err != nil {
					bins.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
				}
			}
		} else {
			bins.err = err
		}
	}
	code := m.Run()
	if bins.dir != "" {
		os.RemoveAll(bins.dir)
	}
	os.Exit(code)
}

// needLab skips tests that need root and network namespaces.
func needLab(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: builds network namespaces and raw sockets")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2 (ip)")
	}
	if bins.err != nil {
		t.Fatal(bins.err)
	}
}

// bridgeLab is a lab with ftbridged running in the box namespace.
type bridgeLab struct {
	*lab.Lab
	t       *testing.T
	daemon  *lab.Proc
	cfgPath string
	servers map[string][]*lab.Proc // per replica namespace
}

// labOptions configure newBridgeLab.
type labOptions struct {
	replicas int
	ports    []uint16
	// config adds JSON members to the service or top level: raw text
	// inserted into the document.
	release string
	extra   string
	// service adds raw JSON members to the service object.
	service string
	noVary  bool
	// noServers skips starting labsvc on port 7000.
	noServers bool
	// impaired names links (by box port) that get an impairment point
	// (lab.Options.Impaired).
	impaired []string
}

func newBridgeLab(t *testing.T, o labOptions) *bridgeLab {
	t.Helper()
	needLab(t)
	if o.replicas == 0 {
		o.replicas = 2
	}
	if len(o.ports) == 0 {
		o.ports = []uint16{7000}
	}
	lo := lab.Options{Replicas: o.replicas, NoVary: o.noVary}
	if len(o.impaired) > 0 {
		lo.Impaired, lo.ImpairBin = o.impaired, impairBinary(t)
	}
	l, err := lab.New(lo)
	if err != nil {
		t.Fatal(err)
	}
	b := &bridgeLab{Lab: l, t: t, servers: map[string][]*lab.Proc{}}
	t.Cleanup(func() {
		if t.Failed() && b.daemon != nil {
			t.Logf("ftbridged log (tail):\n%s", tail(b.daemon.Log(), 60))
		}
		// Resume anything a test stopped so that Close can reap it.
		for _, ps := range b.servers {
			for _, p := range ps {
				p.Signal(syscall.SIGCONT)
			}
		}
		l.Close()
	})
	var reps []string
	for i, port := range l.ReplicaPorts {
		reps = append(reps, fmt.Sprintf(`{"name": %q, "interface": %q}`, string(rune('a'+i)), port))
	}
	ports := make([]string, len(o.ports))
	for i, p := range o.ports {
		ports[i] = fmt.Sprint(p)
	}
	release := ""
	if o.release != "" {
		release = fmt.Sprintf(`, "release": %q`, o.release)
	}
	doc := fmt.Sprintf(`{
  "uplink": %q,
  "replicas": [%s],
  "services": [{"address": %q, "ports": [%s]%s%s}]%s
}`, l.Uplink, strings.Join(reps, ", "), l.VIP, strings.Join(ports, ", "), release, o.service, o.extra)
	b.cfgPath = filepath.Join(l.Dir(), "config.json")
	if err := os.WriteFile(b.cfgPath, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	if !o.noServers {
		for i := range l.ReplicaNS {
			b.startLabsvc(i)
		}
	}
	b.startDaemon()
	return b
}

// startLabsvc starts the demo service on replica i (VIP:7000).
func (b *bridgeLab) startLabsvc(i int) *lab.Proc {
	b.t.Helper()
	ns := b.ReplicaNS[i]
	p, err := b.Start(ns, bins.labsvc, "-listen", b.VIP.String()+":7000")
	if err != nil {
		b.t.Fatal(err)
	}
	b.servers[ns] = append(b.servers[ns], p)
	waitListening(b.t, b.Lab, ns, 7000)
	return p
}

// server returns the latest server process started on replica i.
func (b *bridgeLab) server(i int) *lab.Proc {
	ps := b.servers[b.ReplicaNS[i]]
	return ps[len(ps)-1]
}

func (b *bridgeLab) startDaemon() {
	b.t.Helper()
	p, err := b.Start(b.BoxNS, bins.ftbridged, "--config", b.cfgPath)
	if err != nil {
		b.t.Fatal(err)
	}
	b.daemon = p
	// SIGUSR1 before the daemon installed its handler would kill it.
	b.waitLog(10*time.Second, "running:")
}

// waitListening waits until something listens on port in ns.
func waitListening(t *testing.T, l *lab.Lab, ns string, port int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		out, _ := l.Run(ns, "ss", "-Hltn", fmt.Sprintf("sport = :%d", port))
		if strings.Contains(out, "LISTEN") {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("nothing listens on port %d in %s", port, ns)
}

// snapshot asks the daemon for a snapshot (SIGUSR1) and parses it.
func (b *bridgeLab) snapshot() engine.Snapshot {
	b.t.Helper()
	before := strings.Count(b.daemon.Log(), "SNAPSHOT ")
	if err := b.daemon.Signal(syscall.SIGUSR1); err != nil {
		b.t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		log := b.daemon.Log()
		if strings.Count(log, "SNAPSHOT ") > before {
			i := strings.LastIndex(log, "SNAPSHOT ")
			line := log[i+len("SNAPSHOT "):]
			if j := strings.IndexByte(line, '\n'); j >= 0 {
				var s engine.Snapshot
				if err := json.Unmarshal([]byte(line[:j]), &s); err != nil {
					b.t.Fatalf("bad snapshot: %v", err)
				}
				return s
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.t.Fatalf("no snapshot from ftbridged; log:\n%s", tail(b.daemon.Log(), 30))
	return engine.Snapshot{}
}

// waitHealthy waits until the named replicas are up and serve port.
func (b *bridgeLab) waitHealthy(port uint16, names ...string) {
	b.t.Helper()
	want := fmt.Sprintf("%s:%d", b.VIP, port)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		s := b.snapshot()
		ok := 0
		for _, r := range s.Replicas {
			for _, n := range names {
				if r.Name == n && r.Up && contains(r.Services, want) {
					ok++
				}
			}
		}
		if ok == len(names) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.t.Fatalf("replicas %v not healthy for %s; log:\n%s", names, want, tail(b.daemon.Log(), 40))
}

// waitLog waits for a log line containing all parts.
func (b *bridgeLab) waitLog(timeout time.Duration, parts ...string) string {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if l := findLine(b.daemon.Log(), parts...); l != "" {
			return l
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.t.Fatalf("no log line with %q; log:\n%s", parts, tail(b.daemon.Log(), 40))
	return ""
}

func findLine(log string, parts ...string) string {
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		l := sc.Text()
		all := true
		for _, p := range parts {
			if !strings.Contains(l, p) {
				all = false
				break
			}
		}
		if all {
			return l
		}
	}
	return ""
}

// dial connects from the client namespace to the VIP.
func (b *bridgeLab) dial(port int) net.Conn {
	b.t.Helper()
	c, err := b.Dial(b.ClientNS, "tcp", fmt.Sprintf("%s:%d", b.VIP, port), 5*time.Second)
	if err != nil {
		b.t.Fatalf("dial: %v\nlog:\n%s", err, tail(b.daemon.Log(), 30))
	}
	b.t.Cleanup(func() { c.Close() })
	return c
}

// daemonAlive fails the test if ftbridged exited.
func (b *bridgeLab) daemonAlive() {
	b.t.Helper()
	if b.daemon.Exited() {
		b.t.Fatalf("ftbridged exited; log:\n%s", tail(b.daemon.Log(), 40))
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// after runs f after d in the background; the returned channel yields its
// error. The lab's cleanup waits for it, so f never outlives the test.
func (b *bridgeLab) after(d time.Duration, f func() error) <-chan error {
	ch := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(d)
		ch <- f()
	}()
	b.t.Cleanup(func() { <-done })
	return ch
}

// labWithServers builds a lab with the demo service listening on every
// replica (for tests that run the engine in-process).
func labWithServers(t *testing.T, o lab.Options) (*lab.Lab, []*lab.Proc) {
	t.Helper()
	needLab(t)
	l, err := lab.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var servers []*lab.Proc
	for i := range l.ReplicaNS {
		p, err := l.Start(l.ReplicaNS[i], bins.labsvc, "-listen", l.VIP.String()+":7000")
		if err != nil {
			t.Fatal(err)
		}
		servers = append(servers, p)
		waitListening(t, l, l.ReplicaNS[i], 7000)
	}
	return l, servers
}

// startEngine runs an engine in-process with its sockets, and its loop's
// thread, in the lab's box namespace (as the daemon runs wholly inside
// it). stop ends the loop, waits for it and closes the engine.
func startEngine(t *testing.T, l *lab.Lab, cfg engine.Config) (eng *engine.Engine, ctx context.Context, stop func()) {
	t.Helper()
	if err := l.InNS(l.BoxNS, func() error {
		var err error
		eng, err = engine.New(cfg)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		if err := l.InNS(l.BoxNS, func() error { return eng.Run(ctx) }); err != nil {
			t.Errorf("engine: %v", err)
		}
		close(done)
	}()
	var once sync.Once
	return eng, ctx, func() {
		once.Do(func() {
			cancel()
			<-done
			eng.Close()
		})
	}
}
