package soak

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/engine"
	"github.com/ftbridge/ftbridge/integration/impair"
	"github.com/ftbridge/ftbridge/integration/lab"
)

// Service ports the Bridge knows how to serve.
const (
	// LabsvcPort is where labsvc listens on every replica.
	LabsvcPort uint16 = 7000
	// RedisPort is where redis-server listens when BridgeOptions.Redis is set.
	RedisPort uint16 = 6379
)

// Binaries are the programs a Bridge runs.
type Binaries struct {
	// Ftbridged is the daemon; Labsvc the demo service; Impair the lab's
	// impairment forwarder.
	Ftbridged, Labsvc, Impair string
}

// BuildBinaries builds ftbridged, labsvc and the impair forwarder from the
// current module into dir (go must be on PATH and the working directory
// inside the module).
func BuildBinaries(dir string) (Binaries, error) {
	b := Binaries{Ftbridged: filepath.Join(dir, "ftbridged"), Labsvc: filepath.Join(dir, "labsvc")}
	for out, pkg := range map[string]string{
		b.Ftbridged: "github.com/ftbridge/ftbridge/cmd/ftbridged",
		b.Labsvc:    "github.com/ftbridge/ftbridge/integration/labsvc/cmd/labsvc",
	} {
		cmd := exec.Command("go", "build", "-o", out, pkg)
		if o, err := cmd.CombinedOutput(); err != nil {
			return b, fmt.Errorf("soak: go build %s: %w\n%s", pkg, err, o)
		}
	}
	var err error
	b.Impair, err = impair.Build(dir)
	return b, err
}

// BridgeOptions configure NewBridge.
type BridgeOptions struct {
	// Replicas is the number of replicas (default 2).
	Replicas int
	// Ports are the service ports in the daemon's configuration; default
	// {LabsvcPort} (plus RedisPort with Redis).
	Ports []uint16
	// Redis also runs redis-server on RedisPort on every replica.
	Redis bool
	// NoServers starts no server at all (a test starts its own).
	NoServers bool
	// Service holds extra members of the service's object in the
	// daemon's configuration, such as "release" or "rejoin".
	Service map[string]any
	// Config holds extra top-level members of the daemon's JSON
	// configuration, such as "limits", "timers" or "health".
	Config map[string]any
	// Bins are the programs; zero means build them into the lab's directory.
	Bins Binaries
	// NoVary gives every replica the default TCP sysctls (lab.Options).
	NoVary bool
	// Impaired puts an impairment point on every link (lab.Options), for
	// an Impairer; ImpairedPorts on the listed links only (box ports: "up0",
	// "rp0", ...), leaving the others plain veth pairs with no userspace
	// forwarder in the way.
	Impaired      bool
	ImpairedPorts []string
}

// Bridge is a lab with ftbridged in its box and servers on its replicas.
// Its methods are safe for concurrent use.
type Bridge struct {
	// Lab is the namespaces; use it for faults.
	Lab *lab.Lab
	// Daemon is the running ftbridged.
	Daemon *lab.Proc
	// ConfigPath is the daemon's configuration file.
	ConfigPath string
	// Log follows the daemon's event log.
	Log *Follower
	// Ports are the service ports.
	Ports []uint16

	opts   BridgeOptions
	bins   Binaries
	snapMu sync.Mutex

	mu      sync.Mutex
	servers map[int]map[uint16]*lab.Proc // latest server per replica and port
	stopped map[*lab.Proc]bool           // processes we SIGSTOPped
}

// NewBridge builds the lab, starts the servers and the daemon, and waits
// until every replica is healthy on every port. On error everything is
// torn down.
func NewBridge(o BridgeOptions) (_ *Bridge, err error) {
	if o.Replicas == 0 {
		o.Replicas = 2
	}
	ports := append([]uint16(nil), o.Ports...)
	if len(ports) == 0 {
		ports = []uint16{LabsvcPort}
		if o.Redis {
			ports = append(ports, RedisPort)
		}
	}
	if o.Redis {
		if _, err := exec.LookPath("redis-server"); err != nil {
			return nil, fmt.Errorf("soak: redis-server not installed: %w", err)
		}
	}
	lo := lab.Options{Replicas: o.Replicas, NoVary: o.NoVary}
	if o.Impaired {
		// The lab names its ports up0 and rp<i>.
		lo.Impaired = []string{"up0"}
		for i := 0; i < o.Replicas; i++ {
			lo.Impaired = append(lo.Impaired, fmt.Sprintf("rp%d", i))
		}
		lo.ImpairBin = o.Bins.Impair
	}
	if len(o.ImpairedPorts) > 0 {
		lo.Impaired, lo.ImpairBin = o.ImpairedPorts, o.Bins.Impair
	}
	l, err := lab.New(lo)
	if err != nil {
		return nil, err
	}
	b := &Bridge{Lab: l, Ports: ports, opts: o, bins: o.Bins,
		servers: map[int]map[uint16]*lab.Proc{}, stopped: map[*lab.Proc]bool{}}
	defer func() {
		if err != nil {
			err = errors.Join(err, b.Close())
		}
	}()
	if b.bins.Ftbridged == "" || b.bins.Labsvc == "" {
		if b.bins, err = BuildBinaries(l.Dir()); err != nil {
			return nil, err
		}
	}
	if err := b.writeConfig(); err != nil {
		return nil, err
	}
	if !o.NoServers {
		for i := range l.ReplicaNS {
			if err := b.StartServers(i); err != nil {
				return nil, err
			}
		}
	}
	if err := b.startDaemon(); err != nil {
		return nil, err
	}
	if !o.NoServers {
		if err := b.WaitHealthy(20*time.Second, b.ReplicaNames()...); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// ReplicaName is the configured name of replica i: "a", "b", ...
func ReplicaName(i int) string { return string(rune('a' + i)) }

// ReplicaNames lists every replica's name.
func (b *Bridge) ReplicaNames() []string {
	var n []string
	for i := range b.Lab.ReplicaNS {
		n = append(n, ReplicaName(i))
	}
	return n
}

func (b *Bridge) writeConfig() error {
	var reps []map[string]string
	for i, port := range b.Lab.ReplicaPorts {
		reps = append(reps, map[string]string{"name": ReplicaName(i), "interface": port})
	}
	svc := map[string]any{"address": b.Lab.VIP.String(), "ports": b.Ports}
	for k, v := range b.opts.Service {
		svc[k] = v
	}
	doc := map[string]any{"uplink": b.Lab.Uplink, "replicas": reps, "services": []any{svc}}
	for k, v := range b.opts.Config {
		doc[k] = v
	}
	js, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	b.ConfigPath = filepath.Join(b.Lab.Dir(), "config.json")
	return os.WriteFile(b.ConfigPath, js, 0o600)
}

// ConfigText returns the daemon's configuration file.
func (b *Bridge) ConfigText() string {
	t, _ := os.ReadFile(b.ConfigPath)
	return string(t)
}

func (b *Bridge) startDaemon() error {
	p, err := b.Lab.Start(b.Lab.BoxNS, b.bins.Ftbridged, "--config", b.ConfigPath, "-json")
	if err != nil {
		return err
	}
	b.Daemon = p
	b.Log = Follow(p.LogPath)
	// SIGUSR1 before the daemon installed its handler would kill it: wait
	// for the line it prints once running.
	if !b.Log.WaitText(15*time.Second, "running:") {
		return fmt.Errorf("soak: ftbridged did not start; log:\n%s", b.LogTail(30))
	}
	return nil
}

// LogTail returns the last n non-event lines of the daemon's log.
func (b *Bridge) LogTail(n int) string {
	t := b.Log.Text()
	if len(t) > n {
		t = t[len(t)-n:]
	}
	return strings.Join(t, "\n")
}

// StartServers starts every configured server on replica i and waits until
// each listens.
func (b *Bridge) StartServers(i int) error {
	for _, port := range b.Ports {
		var name string
		var args []string
		switch port {
		case LabsvcPort:
			name, args = b.bins.Labsvc, []string{"-listen", fmt.Sprintf("%s:%d", b.Lab.VIP, port)}
		case RedisPort:
			if !b.opts.Redis {
				continue
			}
			dir := filepath.Join(b.Lab.Dir(), "redis-"+ReplicaName(i))
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
			// No persistence: a restarted replica starts empty, like a
			// replaced host, and the workload never reuses a key.
			name, args = "redis-server", []string{"--bind", b.Lab.VIP.String(), "--port", fmt.Sprint(port),
				"--save", "", "--appendonly", "no", "--protected-mode", "no", "--daemonize", "no", "--dir", dir}
		default:
			continue // a test serves this port itself
		}
		if err := b.StartServer(i, port, name, args...); err != nil {
			return err
		}
	}
	return nil
}

// StartServer starts name args... on replica i as the server of port and
// waits until something listens on port there.
func (b *Bridge) StartServer(i int, port uint16, name string, args ...string) error {
	ns := b.Lab.ReplicaNS[i]
	p, err := b.Lab.Start(ns, name, args...)
	if err != nil {
		return err
	}
	b.mu.Lock()
	if b.servers[i] == nil {
		b.servers[i] = map[uint16]*lab.Proc{}
	}
	b.servers[i][port] = p
	b.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		out, _ := b.Lab.Run(ns, "ss", "-Hltn", fmt.Sprintf("sport = :%d", port))
		if strings.Contains(out, "LISTEN") {
			return nil
		}
		if p.Exited() {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("soak: %s on replica %s does not listen on port %d; its log:\n%s", filepath.Base(name), ReplicaName(i), port, p.Log())
}

// Servers returns replica i's current server processes.
func (b *Bridge) Servers(i int) []*lab.Proc {
	b.mu.Lock()
	defer b.mu.Unlock()
	var ps []*lab.Proc
	for _, port := range b.Ports {
		if p := b.servers[i][port]; p != nil {
			ps = append(ps, p)
		}
	}
	return ps
}

// SignalServers sends sig to every server process of replica i. SIGSTOP
// is remembered so that Close resumes the process before killing it.
func (b *Bridge) SignalServers(i int, sig syscall.Signal) error {
	var errs []error
	for _, p := range b.Servers(i) {
		if err := p.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
			errs = append(errs, err)
		}
		b.mu.Lock()
		switch sig {
		case syscall.SIGSTOP:
			b.stopped[p] = true
		case syscall.SIGCONT, syscall.SIGKILL:
			delete(b.stopped, p)
		}
		b.mu.Unlock()
		if sig == syscall.SIGKILL {
			// Reap in the background; Wait also kills what is left of
			// the process group.
			go p.Wait()
		}
	}
	return errors.Join(errs...)
}

// Snapshot asks the daemon for a snapshot (SIGUSR1) and returns it.
func (b *Bridge) Snapshot(timeout time.Duration) (engine.Snapshot, error) {
	b.snapMu.Lock()
	defer b.snapMu.Unlock()
	if b.Daemon.Exited() {
		return engine.Snapshot{}, fmt.Errorf("soak: ftbridged exited: %s", b.DeathNote())
	}
	n := b.Log.snapshotCount()
	if err := b.Daemon.Signal(syscall.SIGUSR1); err != nil {
		return engine.Snapshot{}, fmt.Errorf("soak: signalling ftbridged: %w", err)
	}
	return b.Log.waitSnapshot(n, timeout)
}

// Healthy reports whether replica name is up, enabled and serves every
// service port in s.
func (b *Bridge) Healthy(s engine.Snapshot, name string) bool {
	for _, r := range s.Replicas {
		if r.Name != name {
			continue
		}
		if !r.Up || r.Admin != "enabled" || !r.Port {
			return false
		}
		for _, p := range b.Ports {
			if !slices.Contains(r.Services, fmt.Sprintf("%s:%d", b.Lab.VIP, p)) {
				return false
			}
		}
		return true
	}
	return false
}

// WaitHealthy waits until every named replica is Healthy.
func (b *Bridge) WaitHealthy(timeout time.Duration, names ...string) error {
	deadline := time.Now().Add(timeout)
	for {
		s, err := b.Snapshot(5 * time.Second)
		if err == nil {
			ok := true
			for _, n := range names {
				ok = ok && b.Healthy(s, n)
			}
			if ok {
				return nil
			}
		}
		if time.Now().After(deadline) || b.Daemon.Exited() {
			if err == nil {
				err = errors.New("not healthy")
			}
			return fmt.Errorf("soak: replicas %v not healthy after %v: %w; log:\n%s", names, timeout, err, b.LogTail(20))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// DeathNote says why the daemon died, from its log: the panic or fatal
// error line and the first frames of the stack, or its last line.
func (b *Bridge) DeathNote() string {
	t := b.Log.Text()
	for i, l := range t {
		if strings.HasPrefix(l, "panic:") || strings.HasPrefix(l, "fatal error:") {
			end := min(len(t), i+12)
			return strings.Join(t[i:end], "\n")
		}
	}
	if len(t) > 0 {
		return t[len(t)-1]
	}
	return "no log output"
}

// Dial connects from the client namespace to the service port.
func (b *Bridge) Dial(port uint16, timeout time.Duration) (net.Conn, error) {
	return b.Lab.Dial(b.Lab.ClientNS, "tcp", fmt.Sprintf("%s:%d", b.Lab.VIP, port), timeout)
}

// DaemonStatus samples the daemon's /proc status.
func (b *Bridge) DaemonStatus() (ProcStatus, error) {
	if b.Daemon.Exited() {
		return ProcStatus{}, errors.New("soak: ftbridged exited")
	}
	return ReadProcStatus(b.Daemon.Pid())
}

// Stop stops the daemon with SIGTERM, as systemd would, and reports
// whether it exited cleanly within timeout.
func (b *Bridge) Stop(timeout time.Duration) error {
	if b.Daemon == nil {
		return nil
	}
	if err := b.Daemon.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- b.Daemon.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("soak: ftbridged exited with %v after SIGTERM; log:\n%s", err, b.LogTail(20))
		}
		return nil
	case <-time.After(timeout):
		b.Daemon.Kill()
		return fmt.Errorf("soak: ftbridged did not stop within %v of SIGTERM", timeout)
	}
}

// Close resumes what was stopped, then tears the lab down (killing every
// process it started).
func (b *Bridge) Close() error {
	b.mu.Lock()
	for p := range b.stopped {
		p.Signal(syscall.SIGCONT)
	}
	b.stopped = map[*lab.Proc]bool{}
	b.mu.Unlock()
	err := b.Lab.Close()
	if b.Log != nil {
		b.Log.Close()
	}
	return err
}

// WriteLogTo copies the daemon's log to w (for keeping after Close).
func (b *Bridge) WriteLogTo(w io.Writer) error {
	f, err := os.Open(b.Daemon.LogPath)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}
