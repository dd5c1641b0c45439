package mgmt

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/engine"
	"github.com/ftbridge/ftbridge/firmware/events"
)

// fakeEngine runs until cancelled and answers snapshots from its config.
type fakeEngine struct {
	cfg    engine.Config
	ctl    chan func()
	mu     sync.Mutex
	subs   []chan engine.Event
	ctr    engine.Counters
	closed bool
}

func (f *fakeEngine) Run(ctx context.Context) error {
	f.publish(engine.Event{Kind: engine.EventStarted})
	for {
		select {
		case <-ctx.Done():
			f.publish(engine.Event{Kind: engine.EventStopped})
			return nil
		case fn := <-f.ctl:
			fn()
		}
	}
}

func (f *fakeEngine) publish(ev engine.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ev.Time = time.Now()
	for _, ch := range f.subs {
		select {
		case ch <- ev:
		default:
		}
	}
}

func (f *fakeEngine) Close() error { f.closed = true; return nil }

func (f *fakeEngine) do(ctx context.Context, fn func()) error {
	done := make(chan struct{})
	select {
	case f.ctl <- func() { fn(); close(done) }:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *fakeEngine) Snapshot(ctx context.Context, maxConns int) (engine.Snapshot, error) {
	var s engine.Snapshot
	err := f.do(ctx, func() {
		for i, r := range f.cfg.Replicas {
			s.Replicas = append(s.Replicas, engine.ReplicaStatus{Name: r.Name, Interface: r.Interface, Up: true, Admin: "enabled", Preferred: i == 0})
		}
	})
	return s, err
}

func (f *fakeEngine) SetAdmin(ctx context.Context, name string, a engine.Admin) error {
	return f.do(ctx, func() {})
}
func (f *fakeEngine) Promote(ctx context.Context, name string) error { return f.do(ctx, func() {}) }
func (f *fakeEngine) Counters() *engine.Counters                     { return &f.ctr }
func (f *fakeEngine) Subscribe(n int) (<-chan engine.Event, func()) {
	ch := make(chan engine.Event, n)
	f.mu.Lock()
	f.subs = append(f.subs, ch)
	f.mu.Unlock()
	return ch, func() {}
}

const doc = `{
  "uplink": "port0",
  "replicas": [ {"name": "a", "interface": "port1"}, {"name": "b", "interface": "port2"} ],
  "services": [ {"address": "198.18.0.10", "ports": [7000]} ]
}`

type planeEnv struct {
	t       *testing.T
	p       *Plane
	dir     string
	mu      sync.Mutex
	engines []*fakeEngine
	failNew error
	notify  chan string
	client  *http.Client
	pw      string
}

func startPlane(t *testing.T, document string) *planeEnv {
	t.Helper()
	e := &planeEnv{t: t, dir: t.TempDir()}
	// A fake systemd.
	sock := filepath.Join(e.dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "100000")
	t.Setenv("WATCHDOG_PID", fmt.Sprint(os.Getpid()))
	e.notify = make(chan string, 1000)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			e.notify <- string(buf[:n])
		}
	}()
	cfgPath := filepath.Join(e.dir, "config.json")
	os.WriteFile(cfgPath, []byte(document), 0o600)
	var logMu sync.Mutex
	var logs []string
	p, err := Start(Options{
		ConfigPath: cfgPath, DataDir: filepath.Join(e.dir, "data"), Version: "test",
		Logf: func(f string, a ...any) { logMu.Lock(); logs = append(logs, fmt.Sprintf(f, a...)); logMu.Unlock() },
		NewEngine: func(c engine.Config) (Engine, error) {
			e.mu.Lock()
			defer e.mu.Unlock()
			if e.failNew != nil {
				err := e.failNew
				e.failNew = nil
				return nil, err
			}
			f := &fakeEngine{cfg: c, ctl: make(chan func())}
			e.engines = append(e.engines, f)
			return f, nil
		},
		Reboot: func() error { return nil },
		listen: func(network, addr string) (net.Listener, error) {
			// Every configured address becomes a free loopback port.
			return net.Listen(network, "127.0.0.1:0")
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.p = p
	t.Cleanup(func() { p.Close() })
	t.Cleanup(func() {
		if t.Failed() {
			logMu.Lock()
			t.Logf("log:\n%s", strings.Join(logs, "\n"))
			logMu.Unlock()
		}
	})
	pw, err := os.ReadFile(filepath.Join(e.dir, "data", "admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	e.pw = strings.TrimSpace(string(pw))
	// Trust the generated certificate, as the CLI on the box does.
	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(filepath.Join(e.dir, "data", "tls", "cert.pem"))
	pool.AppendCertsFromPEM(pem)
	e.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}}}
	return e
}

func (e *planeEnv) call(method, path, body string, auth bool) (int, string) {
	e.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, "https://"+e.p.Addrs()[0]+path, r)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth {
		req.SetBasicAuth("admin", e.pw)
	}
	res, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func (e *planeEnv) waitNotify(want string) {
	e.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case m := <-e.notify:
			if m == want {
				return
			}
		case <-deadline:
			e.t.Fatalf("no %q from the daemon", want)
		}
	}
}

func TestStartServesAPI(t *testing.T) {
	e := startPlane(t, doc)
	e.waitNotify("READY=1")
	e.waitNotify("WATCHDOG=1")
	fi, err := os.Stat(filepath.Join(e.dir, "data", "admin-password"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin-password %v %v", fi, err)
	}
	if code, _ := e.call("GET", "/api/v1/replicas", "", false); code != 401 {
		t.Errorf("unauthenticated: %d", code)
	}
	code, body := e.call("GET", "/api/v1/replicas", "", true)
	var list struct{ Replicas []map[string]any }
	json.Unmarshal([]byte(body), &list)
	if code != 200 || len(list.Replicas) != 2 || list.Replicas[0]["role"] != "primary" || list.Replicas[0]["health"] != "up" {
		t.Fatalf("replicas: %d %s", code, body)
	}
	// Dataplane events reach the event log.
	e.engines[0].publish(engine.Event{Kind: engine.EventFailover, Replica: "b", From: "a", Conn: "c->s", Reason: "probe"})
	deadline := time.Now().Add(5 * time.Second)
	for len(e.p.Events.Query(events.Query{Kinds: []string{"failover"}})) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("failover event not recorded")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if evs := e.p.Events.Query(events.Query{Kinds: []string{"daemon-started", "started"}}); len(evs) != 2 {
		t.Errorf("start events %+v", evs)
	}
}

func TestApplyRestartsOnlyForDataplaneChanges(t *testing.T) {
	e := startPlane(t, doc)
	mgmtOnly := strings.Replace(doc, `"uplink"`, `"management": {"session_timeout": "1h"}, "uplink"`, 1)
	code, body := e.call("PUT", "/api/v1/config?confirm_timeout=0s", mgmtOnly, true)
	if code != 200 || !strings.Contains(body, `"dataplane_restarted": false`) || len(e.engines) != 1 {
		t.Fatalf("management-only change: %d %s, %d engines", code, body, len(e.engines))
	}
	dpChange := strings.Replace(mgmtOnly, "[7000]", "[7000, 80]", 1)
	code, body = e.call("PUT", "/api/v1/config?confirm_timeout=0s", dpChange, true)
	if code != 200 || !strings.Contains(body, `"dataplane_restarted": true`) || len(e.engines) != 2 {
		t.Fatalf("dataplane change: %d %s, %d engines", code, body, len(e.engines))
	}
	if !e.engines[0].closed || fmt.Sprint(e.engines[1].cfg.Services[0].Ports) != "[7000 80]" || e.p.DP.Restarts() != 1 {
		t.Errorf("engine swap: old closed %v, new ports %v", e.engines[0].closed, e.engines[1].cfg.Services[0].Ports)
	}
	// A new engine that cannot start: the old configuration comes back.
	e.mu.Lock()
	e.failNew = errors.New("no such interface port9")
	e.mu.Unlock()
	bad := strings.Replace(dpChange, `"port2"`, `"port9"`, 1)
	code, body = e.call("PUT", "/api/v1/config?confirm_timeout=0s", bad, true)
	if code != 500 || !strings.Contains(body, "port9") {
		t.Fatalf("failing apply: %d %s", code, body)
	}
	if code, _ := e.call("GET", "/api/v1/replicas/b", "", true); code != 200 {
		t.Errorf("dataplane not back after a failed apply: %d", code)
	}
	if v := e.p.Config.Current(); fmt.Sprint(v.Config.Replicas[1].Interface) != "port2" {
		t.Errorf("current config %+v", v.Config.Replicas)
	}
}

func TestListenChangeAndRollback(t *testing.T) {
	e := startPlane(t, doc)
	old := e.p.Addrs()[0]
	moved := strings.Replace(doc, `"uplink"`, `"management": {"listen": "127.0.0.1:9999", "http_listen": "127.0.0.1:9998"}, "uplink"`, 1)
	code, body := e.call("PUT", "/api/v1/config?confirm_timeout=300ms", moved, true)
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	addrs := e.p.Addrs()
	if len(addrs) != 2 || addrs[0] == old {
		t.Fatalf("listeners after the change: %v (was %s)", addrs, old)
	}
	// Plain HTTP on loopback serves the API too.
	res, err := http.Get("http://" + addrs[1] + "/api/v1/health")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("plain HTTP: %v", err)
	}
	res.Body.Close()
	// Not confirmed: the previous listeners come back by themselves.
	deadline := time.Now().Add(5 * time.Second)
	for len(e.p.Addrs()) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("no rollback; listeners %v", e.p.Addrs())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, _ := e.call("GET", "/api/v1/status", "", true); code != 200 {
		t.Errorf("status after rollback: %d", code)
	}
}

func TestFactoryReset(t *testing.T) {
	e := startPlane(t, doc)
	code, _ := e.call("POST", "/api/v1/system/factory-reset", `{"confirm": "factory-reset"}`, true)
	if code != 202 {
		t.Fatalf("factory reset: %d", code)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := os.Stat(filepath.Join(e.dir, "data", "auth.json"))
		if os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("auth.json survived a factory reset")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
