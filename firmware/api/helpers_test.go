package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/ftbridge/ftbridge/dataplane/engine"
	"github.com/ftbridge/ftbridge/firmware/auth"
	"github.com/ftbridge/ftbridge/firmware/config"
	"github.com/ftbridge/ftbridge/firmware/events"
)

// fakeDP is an in-memory dataplane: two replicas, a handful of connections.
type fakeDP struct {
	mu       sync.Mutex
	admin    map[string]string
	pref     string
	conns    []engine.ConnStatus
	counters engine.Counters
	hang     bool
	restarts int
}

func newFakeDP() *fakeDP {
	d := &fakeDP{admin: map[string]string{"a": "enabled", "b": "enabled"}, pref: "a"}
	t0 := time.Date(2025, 1, 1, 10, 0, 0, 0, time.UTC)
	for i := 0; i < 25; i++ {
		prim := "a"
		if i%5 == 4 {
			prim = "b"
		}
		c := engine.ConnStatus{
			Client: fmt.Sprintf("198.18.1.%d:%d", 2+i%3, 40000+i), Service: "198.18.0.10:7000", State: "established", Primary: prim,
			Members: []engine.MemberStatus{{Replica: "a", Live: true, Primary: prim == "a"}, {Replica: "b", Live: true, Primary: prim == "b"}},
			BytesIn: uint64(i), BytesOut: uint64(100 * i), Created: t0.Add(time.Duration(i) * time.Second), Diverged: i == 7,
		}
		if i >= 20 {
			c.Service = "198.18.0.10:80"
			c.Members = c.Members[:1]
			c.Primary = "a"
			c.Members[0].Primary = true
		}
		d.conns = append(d.conns, c)
	}
	d.counters.Failovers.Store(3)
	d.counters.Drops[0].Store(2)
	return d
}

func (d *fakeDP) Snapshot(ctx context.Context, maxConns int) (engine.Snapshot, error) {
	d.mu.Lock()
	hang := d.hang
	d.mu.Unlock()
	if hang {
		<-ctx.Done()
		return engine.Snapshot{}, ctx.Err()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	s := engine.Snapshot{Time: time.Now(), Started: time.Now().Add(-time.Minute), Connections: len(d.conns), Failovers: 3,
		Drops: map[string]uint64{"malformed": 2}, Loops: []int{len(d.conns) - len(d.conns)/2, len(d.conns) / 2}}
	for i, n := range []string{"a", "b"} {
		s.Replicas = append(s.Replicas, engine.ReplicaStatus{Name: n, Interface: fmt.Sprintf("port%d", i+1), Up: d.admin[n] != "disabled",
			Admin: d.admin[n], Carrier: true, Port: true, Preferred: d.pref == n, Services: []string{"198.18.0.10"}, Conns: 20, ProbeRTT: 0.5})
	}
	if maxConns > 0 {
		s.Conns = append(s.Conns, d.conns[:min(maxConns, len(d.conns))]...)
	}
	return s, nil
}

func (d *fakeDP) SetAdmin(ctx context.Context, name string, a engine.Admin) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.admin[name]; !ok {
		return fmt.Errorf("no replica %q", name)
	}
	d.admin[name] = a.String()
	return nil
}

func (d *fakeDP) Promote(ctx context.Context, name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.admin[name] == "disabled" {
		return fmt.Errorf("replica %q is not serving", name)
	}
	d.pref = name
	return nil
}

func (d *fakeDP) Counters() *engine.Counters { return &d.counters }
func (d *fakeDP) Restarts() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.restarts
}

const testDoc = `{
  "uplink": "port0",
  "replicas": [ {"name": "a", "interface": "port1"}, {"name": "b", "interface": "port2"} ],
  "services": [ {"address": "198.18.0.10", "ports": [7000, 80]} ]
}`

// env is a server over a fake dataplane and real stores in a temp dir.
type env struct {
	t        testing.TB
	dir      string
	dp       *fakeDP
	cfg      *config.Store
	events   *events.Store
	auth     *auth.Auth
	srv      *Server
	ts       *httptest.Server
	password string
	reboots  int
	resets   int
	mu       sync.Mutex
	applied  []string
	applyErr error
}

func newEnv(t testing.TB, ui http.Handler) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), dp: newFakeDP()}
	cfgPath := filepath.Join(e.dir, "config.json")
	if err := os.WriteFile(cfgPath, []byte(testDoc), 0o600); err != nil {
		t.Fatal(err)
	}
	var err error
	if e.events, err = events.Open(events.Options{Dir: filepath.Join(e.dir, "events"), MaxEvents: 1000}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.events.Close() })
	if e.cfg, err = config.OpenStore(config.StoreOptions{Path: cfgPath, Dir: filepath.Join(e.dir, "config"), Event: func(kind, detail string) {
		e.events.Add(events.Event{Kind: kind, Detail: detail})
	}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.cfg.Close)
	e.cfg.SetApplier(func(old, new *config.Config) (bool, error) {
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.applyErr != nil {
			return false, e.applyErr
		}
		e.applied = append(e.applied, fmt.Sprint(new.Services[0].Ports))
		return !config.DataplaneEqual(old, new), nil
	})
	if e.auth, err = auth.Open(auth.Options{Dir: e.dir, Cost: bcrypt.MinCost}); err != nil {
		t.Fatal(err)
	}
	pw, err := os.ReadFile(filepath.Join(e.dir, auth.PasswordFile))
	if err != nil {
		t.Fatal(err)
	}
	e.password = strings.TrimSpace(string(pw))
	certs, err := auth.OpenCertStore(filepath.Join(e.dir, "tls"))
	if err != nil {
		t.Fatal(err)
	}
	e.srv = New(Options{
		Dataplane: e.dp, Config: e.cfg, Events: e.events, Auth: e.auth, Certs: certs, UI: ui, Version: "test",
		Reboot:       func() error { e.mu.Lock(); e.reboots++; e.mu.Unlock(); return nil },
		FactoryReset: func() error { e.mu.Lock(); e.resets++; e.mu.Unlock(); return nil },
	})
	e.srv.afterResponse = func(f func()) { f() }
	e.ts = httptest.NewTLSServer(e.srv.Handler())
	t.Cleanup(func() {
		e.srv.Close()
		e.ts.Close()
	})
	return e
}

// req is one request; auth is "basic", "none", "bearer:TOKEN" or
// "session:ID:CSRF".
type req struct {
	method, path, auth, body string
	ctype                    string
	header                   map[string]string
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("answer is not JSON (%v):\n%s", err, r.body)
	}
}

// errCode returns the code of a JSON error body, failing if it is not one.
func (r resp) errCode(t testing.TB) ErrorDetail {
	t.Helper()
	var b ErrorBody
	r.json(t, &b)
	if b.Error.Code == "" || b.Error.Message == "" {
		t.Fatalf("not an error body: %s", r.body)
	}
	return b.Error
}

func (e *env) do(r req) resp {
	e.t.Helper()
	return e.doT(e.t, r)
}

// doT is do reporting failures to t (a fuzz iteration's).
func (e *env) doT(t testing.TB, r req) resp {
	t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr, err := http.NewRequest(r.method, e.ts.URL+r.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if r.body != "" {
		ct := r.ctype
		if ct == "" {
			ct = "application/json"
		}
		hr.Header.Set("Content-Type", ct)
	}
	switch {
	case r.auth == "" || r.auth == "basic":
		hr.SetBasicAuth("admin", e.password)
	case r.auth == "none":
	case strings.HasPrefix(r.auth, "bearer:"):
		hr.Header.Set("Authorization", "Bearer "+strings.TrimPrefix(r.auth, "bearer:"))
	case strings.HasPrefix(r.auth, "session:"):
		parts := strings.SplitN(r.auth, ":", 3)
		hr.AddCookie(&http.Cookie{Name: SessionCookie, Value: parts[1]})
		if parts[2] != "" {
			hr.Header.Set(CSRFHeader, parts[2])
		}
	case strings.HasPrefix(r.auth, "pw:"):
		hr.SetBasicAuth("admin", strings.TrimPrefix(r.auth, "pw:"))
	default:
		hr.Header.Set("Authorization", r.auth)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	res, err := e.ts.Client().Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, header: res.Header, body: data}
}

// must does r and checks the status.
func (e *env) must(r req, status int) resp {
	e.t.Helper()
	res := e.do(r)
	if res.status != status {
		e.t.Fatalf("%s %s: status %d, want %d\n%s", r.method, r.path, res.status, status, res.body)
	}
	return res
}

var errTest = errors.New("test failure")
