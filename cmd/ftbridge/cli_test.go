package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/engine"
	"github.com/ftbridge/ftbridge/firmware/mgmt"
)

// fakeEngine is a dataplane without ports, for running the daemon's
// management plane in a test.
type fakeEngine struct {
	cfg   engine.Config
	mu    sync.Mutex
	admin map[string]string
	subs  []chan engine.Event
	ctr   engine.Counters
}

func (f *fakeEngine) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (f *fakeEngine) Close() error                  { return nil }
func (f *fakeEngine) Snapshot(ctx context.Context, maxConns int) (engine.Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := engine.Snapshot{Connections: 1, Failovers: 2}
	for i, r := range f.cfg.Replicas {
		a := f.admin[r.Name]
		if a == "" {
			a = "enabled"
		}
		s.Replicas = append(s.Replicas, engine.ReplicaStatus{Name: r.Name, Interface: r.Interface, Up: true, Admin: a, Preferred: i == 0, Conns: 1, Primaries: 1 - min(i, 1)})
	}
	if maxConns > 0 {
		s.Conns = []engine.ConnStatus{{Client: "198.18.1.2:40000", Service: "198.18.0.10:7000", State: "established", Primary: "a",
			Members: []engine.MemberStatus{{Replica: "a", Live: true, Primary: true}, {Replica: "b", Live: true}}, BytesOut: 1234}}
	}
	return s, nil
}
func (f *fakeEngine) SetAdmin(ctx context.Context, name string, a engine.Admin) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.admin[name] = a.String()
	return nil
}
func (f *fakeEngine) Promote(ctx context.Context, name string) error { return nil }
func (f *fakeEngine) Counters() *engine.Counters                     { return &f.ctr }
func (f *fakeEngine) Subscribe(n int) (<-chan engine.Event, func()) {
	ch := make(chan engine.Event, n)
	f.mu.Lock()
	f.subs = append(f.subs, ch)
	f.mu.Unlock()
	return ch, func() {}
}
func (f *fakeEngine) publish(ev engine.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ch := range f.subs {
		ch <- ev
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

type daemon struct {
	t       *testing.T
	dir     string
	data    string
	url     string
	plane   *mgmt.Plane
	mu      sync.Mutex
	engines []*fakeEngine
}

// startDaemon runs the daemon's management plane over a fake dataplane,
// serving HTTPS on a loopback port as configured.
func startDaemon(t *testing.T) *daemon {
	t.Helper()
	return startDaemonWith(t, nil)
}

// startDaemonWith is startDaemon with the plane's options changed by set.
func startDaemonWith(t *testing.T, set func(*mgmt.Options)) *daemon {
	t.Helper()
	d := &daemon{t: t, dir: t.TempDir()}
	d.data = filepath.Join(d.dir, "data")
	port := freePort(t)
	doc := fmt.Sprintf(`{
  "uplink": "port0",
  "replicas": [ {"name": "a", "interface": "port1"}, {"name": "b", "interface": "port2"} ],
  "services": [ {"address": "198.18.0.10", "ports": [7000]} ],
  "management": {"listen": "127.0.0.1:%d"}
}`, port)
	cfg := filepath.Join(d.dir, "config.json")
	os.WriteFile(cfg, []byte(doc), 0o600)
	t.Setenv("NOTIFY_SOCKET", "")
	o := mgmt.Options{ConfigPath: cfg, DataDir: d.data, Version: "cli-test",
		NewEngine: func(c engine.Config) (mgmt.Engine, error) {
			f := &fakeEngine{cfg: c, admin: map[string]string{}}
			d.mu.Lock()
			d.engines = append(d.engines, f)
			d.mu.Unlock()
			return f, nil
		}}
	if set != nil {
		set(&o)
	}
	p, err := mgmt.Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	d.plane = p
	d.url = fmt.Sprintf("https://127.0.0.1:%d", port)
	return d
}

// cli runs ftbridge with the daemon's data directory (as on the box) and
// returns its exit code and output.
func (d *daemon) cli(args ...string) (int, string, string) {
	d.t.Helper()
	var out, errb bytes.Buffer
	stdout, stderr = &out, &errb
	defer func() { stdout, stderr = os.Stdout, os.Stderr }()
	d.t.Setenv("FTBRIDGE_TOKEN", "")
	d.t.Setenv("FTBRIDGE_PASSWORD", "")
	code := dispatch(append([]string{"--url", d.url, "--data-dir", d.data}, args...))
	return code, out.String(), errb.String()
}

func (d *daemon) ok(args ...string) string {
	d.t.Helper()
	code, out, errs := d.cli(args...)
	if code != 0 {
		d.t.Fatalf("ftbridge %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

func TestCLIStatusAndReplicas(t *testing.T) {
	d := startDaemon(t)
	out := d.ok("status")
	for _, want := range []string{"ftbridge cli-test", "preferred primary: a", "failovers: 2", "port1", "replica"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	out = d.ok("replicas")
	if !strings.Contains(out, "NAME") || !regexpLine(out, "a", "port1", "primary", "up", "enabled") || !regexpLine(out, "b", "port2", "backup") {
		t.Errorf("replicas table:\n%s", out)
	}
	out = d.ok("--json", "replicas")
	var list struct{ Replicas []map[string]any }
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list.Replicas) != 2 {
		t.Errorf("replicas --json: %v\n%s", err, out)
	}
	out = d.ok("replicas", "drain", "b")
	if !regexpLine(out, "b", "drained") {
		t.Errorf("drain:\n%s", out)
	}
	if code, _, errs := d.cli("replicas", "drain", "zz"); code != 1 || !strings.Contains(errs, "not_found") {
		t.Errorf("drain unknown: %d %s", code, errs)
	}
	out = d.ok("connections", "--replica", "b")
	if !strings.Contains(out, "198.18.1.2:40000") || !strings.Contains(out, "1 of 1 connections") {
		t.Errorf("connections:\n%s", out)
	}
	if code, _, _ := d.cli("nosuchcommand"); code != 2 {
		t.Error("unknown command accepted")
	}
}

// regexpLine reports whether one line of out holds all words in order.
func regexpLine(out string, words ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		i := 0
		for _, w := range f {
			if i < len(words) && w == words[i] {
				i++
			}
		}
		if i == len(words) {
			return true
		}
	}
	return false
}

func TestCLITokens(t *testing.T) {
	d := startDaemon(t)
	out := d.ok("token", "create", "ci")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	tok := lines[len(lines)-1]
	if !strings.HasPrefix(tok, "ftb_") {
		t.Fatalf("token create:\n%s", out)
	}
	id := strings.Fields(lines[0])[1]
	if out := d.ok("token", "list"); !regexpLine(out, id, "ci") {
		t.Errorf("token list:\n%s", out)
	}
	// The token works in place of the password...
	if out := d.ok("--data-dir", t.TempDir(), "--cacert", filepath.Join(d.data, "tls", "cert.pem"), "--token", tok, "status"); !strings.Contains(out, "preferred primary") {
		t.Errorf("status with a token:\n%s", out)
	}
	d.ok("token", "revoke", id)
	// ...until revoked.
	code, _, errs := d.cli("--data-dir", t.TempDir(), "--cacert", filepath.Join(d.data, "tls", "cert.pem"), "--token", tok, "status")
	if code != 1 || !strings.Contains(errs, "unauthorized") {
		t.Errorf("revoked token: %d %s", code, errs)
	}
	// No credentials, wrong password: clear errors.
	code, _, errs = d.cli("--data-dir", t.TempDir(), "--insecure", "status")
	if code != 1 || !strings.Contains(errs, "no credentials") {
		t.Errorf("no credentials: %d %s", code, errs)
	}
	pwf := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pwf, []byte("wrong\n"), 0o600)
	code, _, errs = d.cli("--insecure", "--password-file", pwf, "status")
	if code != 1 || !strings.Contains(errs, "unauthorized") {
		t.Errorf("wrong password: %d %s", code, errs)
	}
}

func TestCLIConfig(t *testing.T) {
	d := startDaemon(t)
	doc := d.ok("config", "get")
	if !strings.Contains(doc, `"uplink": "port0"`) {
		t.Fatalf("config get:\n%s", doc)
	}
	file := filepath.Join(t.TempDir(), "new.json")
	os.WriteFile(file, []byte(strings.Replace(doc, "7000", "7001", 1)), 0o600)
	if out := d.ok("config", "validate", file); !strings.Contains(out, "configuration OK") {
		t.Errorf("validate:\n%s", out)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(strings.Replace(doc, `"port2"`, `"port1"`, 1)), 0o600)
	if code, out, _ := d.cli("config", "validate", bad); code != 1 || !strings.Contains(out, "replicas[1].interface") {
		t.Errorf("validate bad: %d %s", code, out)
	}
	if code, _, errs := d.cli("config", "apply", bad); code != 1 || !strings.Contains(errs, "replicas[1].interface") {
		t.Errorf("apply bad: %d %s", code, errs)
	}
	out := d.ok("config", "apply", "--confirm-timeout", "1m", file)
	if !strings.Contains(out, "applied as version 2") || !strings.Contains(out, "dataplane restarted") || !strings.Contains(out, "ftbridge config confirm") {
		t.Errorf("apply:\n%s", out)
	}
	if out := d.ok("status"); !strings.Contains(out, "pending confirmation") {
		t.Errorf("status while pending:\n%s", out)
	}
	d.ok("config", "confirm")
	out = d.ok("config", "history")
	if !regexpLine(out, "2", "api") || !regexpLine(out, "1", "file") {
		t.Errorf("history:\n%s", out)
	}
	if out := d.ok("config", "rollback"); !strings.Contains(out, "now version 3") {
		t.Errorf("rollback:\n%s", out)
	}
	if doc := d.ok("config", "get"); !strings.Contains(doc, "7000") {
		t.Errorf("after rollback:\n%s", doc)
	}
	os.WriteFile(file, []byte(strings.Replace(doc, "7000", "7002", 1)), 0o600)
	if out := d.ok("config", "apply", "--auto-confirm", file); !strings.Contains(out, "confirmed") {
		t.Errorf("auto-confirm:\n%s", out)
	}
	if d.plane.Config.Pending() != nil {
		t.Error("still pending after --auto-confirm")
	}
}

func TestCLIEventsFollow(t *testing.T) {
	d := startDaemon(t)
	done := make(chan struct{})
	var out string
	var code int
	go func() {
		defer close(done)
		code, out, _ = d.cli("events", "--follow", "--count", "1", "--category", "failover")
	}()
	// Publish until the follower has seen one (it subscribes when it
	// connects; earlier events are not replayed without Last-Event-ID).
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			if code != 0 || !strings.Contains(out, "failover replica=b from=a") {
				t.Fatalf("events --follow: %d\n%s", code, out)
			}
			stored := d.ok("events", "--kind", "failover")
			if !strings.Contains(stored, "failover replica=b from=a") {
				t.Errorf("events:\n%s", stored)
			}
			return
		case <-tick.C:
			d.mu.Lock()
			e := d.engines[len(d.engines)-1]
			d.mu.Unlock()
			e.publish(engine.Event{Kind: engine.EventFailover, Replica: "b", From: "a", Time: time.Now()})
		case <-deadline:
			t.Fatal("events --follow saw nothing")
		}
	}
}
