package api_test

// The management-plane security audit (issue 8). It runs against the real
// plane (mgmt.Start: real stores, real router, real HTTPS listener, the
// daemon's log function) over a fake dataplane, so that what it checks is
// what the box serves, not a test double of it. It is an external test
// package because mgmt imports api.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/engine"
	"github.com/ftbridge/ftbridge/firmware/api"
	"github.com/ftbridge/ftbridge/firmware/mgmt"
)

// auditEngine is a dataplane that runs until cancelled and knows its
// replicas; enough for every route to reach its handler.
type auditEngine struct {
	cfg engine.Config
	ctr engine.Counters
}

func (f *auditEngine) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (f *auditEngine) Close() error                  { return nil }
func (f *auditEngine) Snapshot(ctx context.Context, maxConns int) (engine.Snapshot, error) {
	s := engine.Snapshot{Time: time.Now(), Started: time.Now()}
	for i, r := range f.cfg.Replicas {
		s.Replicas = append(s.Replicas, engine.ReplicaStatus{Name: r.Name, Interface: r.Interface, Up: true, Admin: "enabled", Preferred: i == 0, Carrier: true, Port: true})
	}
	return s, nil
}
func (f *auditEngine) SetAdmin(ctx context.Context, name string, a engine.Admin) error { return nil }
func (f *auditEngine) Promote(ctx context.Context, name string) error                  { return nil }
func (f *auditEngine) Counters() *engine.Counters                                      { return &f.ctr }
func (f *auditEngine) Subscribe(n int) (<-chan engine.Event, func()) {
	return make(chan engine.Event, n), func() {}
}

const auditDoc = `{
  "uplink": "port0",
  "replicas": [ {"name": "a", "interface": "port1"}, {"name": "b", "interface": "port2"} ],
  "services": [ {"address": "198.18.0.10", "ports": [7000]} ],
  "management": {"listen": "127.0.0.1:PORT"}
}`

// freePort returns a loopback port free a moment ago: the configuration
// refuses port 0, and the plane's listen hook is internal to mgmt.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
}

// exchange is one recorded request and its answer.
type exchange struct {
	what   string
	status int
	header http.Header
	body   []byte
}

type auditEnv struct {
	t       *testing.T
	dir     string
	data    string
	cfgPath string
	doc     string
	p       *mgmt.Plane
	pw      string
	pool    *x509.CertPool
	client  *http.Client

	mu      sync.Mutex
	logs    []string
	reboots int
	seen    []exchange
}

func startAudit(t *testing.T) *auditEnv {
	t.Helper()
	// No systemd here: an inherited NOTIFY_SOCKET must not get our READY.
	t.Setenv("NOTIFY_SOCKET", "")
	t.Setenv("WATCHDOG_USEC", "")
	e := &auditEnv{t: t, dir: t.TempDir()}
	e.data = filepath.Join(e.dir, "data")
	e.cfgPath = filepath.Join(e.dir, "config.json")
	e.doc = strings.Replace(auditDoc, "PORT", freePort(t), 1)
	if err := os.WriteFile(e.cfgPath, []byte(e.doc), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := mgmt.Start(mgmt.Options{
		ConfigPath: e.cfgPath, DataDir: e.data, Version: "audit",
		UI: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<html>dashboard</html>") }),
		Logf: func(f string, a ...any) {
			e.mu.Lock()
			e.logs = append(e.logs, fmt.Sprintf(f, a...))
			e.mu.Unlock()
		},
		NewEngine: func(c engine.Config) (mgmt.Engine, error) { return &auditEngine{cfg: c}, nil },
		Reboot:    func() error { e.mu.Lock(); e.reboots++; e.mu.Unlock(); return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	e.p = p
	t.Cleanup(func() { p.Close() })
	pw, err := os.ReadFile(filepath.Join(e.data, "admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	e.pw = strings.TrimSpace(string(pw))
	pem, err := os.ReadFile(filepath.Join(e.data, "tls", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	e.pool = x509.NewCertPool()
	e.pool.AppendCertsFromPEM(pem)
	e.client = e.clientFrom("")
	return e
}

// clientFrom returns an HTTPS client trusting the box's certificate whose
// connections leave from local address src ("" for the default), so that
// tests can play several client addresses on loopback.
func (e *auditEnv) clientFrom(src string) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext:     d.DialContext,
			TLSClientConfig: &tls.Config{RootCAs: e.pool, ServerName: "localhost"},
		},
		// A redirect would hide the status the route answered.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func (e *auditEnv) url(path string) string { return "https://" + e.p.Addrs()[0] + path }

// call makes one request; set adds credentials. Every answer is recorded
// for the secrets check.
func (e *auditEnv) call(c *http.Client, method, path, body string, set func(*http.Request)) exchange {
	e.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url(path), r)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if set != nil {
		set(req)
	}
	if c == nil {
		c = e.client
	}
	res, err := c.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	x := exchange{what: method + " " + path, status: res.StatusCode, header: res.Header, body: b}
	e.mu.Lock()
	e.seen = append(e.seen, x)
	e.mu.Unlock()
	return x
}

func basic(user, pw string) func(*http.Request) {
	return func(r *http.Request) { r.SetBasicAuth(user, pw) }
}

func bearer(tok string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

func session(id, csrf string) func(*http.Request) {
	return func(r *http.Request) {
		r.AddCookie(&http.Cookie{Name: api.SessionCookie, Value: id})
		if csrf != "" {
			r.Header.Set(api.CSRFHeader, csrf)
		}
	}
}

// errorCode returns the code of a JSON error body, failing if it is not one.
func errorCode(t *testing.T, x exchange) string {
	t.Helper()
	var b api.ErrorBody
	if err := json.Unmarshal(x.body, &b); err != nil || b.Error.Code == "" || b.Error.Message == "" {
		t.Errorf("%s: not a JSON error body (%v): %q", x.what, err, x.body)
		return ""
	}
	return b.Error.Code
}

// login opens a browser session and returns its ID and CSRF token.
func (e *auditEnv) login(c *http.Client, pw string) (id, csrf string) {
	e.t.Helper()
	x := e.call(c, "POST", "/api/v1/auth/login", fmt.Sprintf(`{"username":"admin","password":%q}`, pw), nil)
	if x.status != http.StatusOK {
		e.t.Fatalf("login: %d %s", x.status, x.body)
	}
	var info struct {
		CSRF string `json:"csrf_token"`
	}
	json.Unmarshal(x.body, &info)
	for _, c := range (&http.Response{Header: x.header}).Cookies() {
		if c.Name == api.SessionCookie {
			id = c.Value
		}
	}
	if id == "" || info.CSRF == "" {
		e.t.Fatalf("login gave no session (%q) or CSRF token (%q)", id, info.CSRF)
	}
	return id, info.CSRF
}

// createToken makes an API token and returns its ID and secret.
func (e *auditEnv) createToken(name string) (id, secret string) {
	e.t.Helper()
	x := e.call(nil, "POST", "/api/v1/system/tokens", fmt.Sprintf(`{"name":%q}`, name), basic("admin", e.pw))
	if x.status != http.StatusCreated {
		e.t.Fatalf("create token: %d %s", x.status, x.body)
	}
	var tok struct{ ID, Token string }
	json.Unmarshal(x.body, &tok)
	if tok.ID == "" || !strings.HasPrefix(tok.Token, "ftb_") {
		e.t.Fatalf("create token answered %s", x.body)
	}
	return tok.ID, tok.Token
}

// concrete fills a route template's variables with values that exist, so
// that an authentication failure is not masked by a 404.
func concrete(path string) string {
	return regexp.MustCompile(`\{[^}]+\}`).ReplaceAllStringFunc(path, func(v string) string {
		switch v {
		case "{name}":
			return "a"
		case "{version}":
			return "1"
		}
		return "x"
	})
}

// publicRoutes are the only routes that answer without credentials
// (docs/api.md, "Every route needs credentials except"). /metrics is not
// here: metrics_auth is on by default.
var publicRoutes = map[string]bool{
	"GET /api/v1/health":      true,
	"POST /api/v1/auth/login": true,
}

// TestAuditEveryRouteRefusesBadCredentials walks every route of the real
// router with no credentials, a wrong bearer token, a revoked token, a
// wrong Basic password and an unknown session: each non-public route
// answers 401 with the JSON error body and the Bearer challenge, and none
// of them did anything.
func TestAuditEveryRouteRefusesBadCredentials(t *testing.T) {
	e := startAudit(t)
	revokedID, revoked := e.createToken("soon revoked")
	if x := e.call(nil, "DELETE", "/api/v1/system/tokens/"+revokedID, "", basic("admin", e.pw)); x.status != http.StatusOK && x.status != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", x.status, x.body)
	}
	// The revoked token really worked before: a control with a live one.
	_, live := e.createToken("live")
	if x := e.call(nil, "GET", "/api/v1/status", "", bearer(live)); x.status != http.StatusOK {
		t.Fatalf("a live token is refused: %d", x.status)
	}
	versionBefore := e.p.Config.Current().Version
	tokensBefore := len(e.p.Auth.Tokens())

	creds := []struct {
		name string
		set  func(*http.Request)
	}{
		{"no credentials", nil},
		{"wrong bearer token", bearer("ftb_" + strings.Repeat("A", 43))},
		{"revoked token", bearer(revoked)},
		{"Basic admin:wrong", basic("admin", "wrong")},
		{"unknown session", session("no-such-session", "x")},
		{"unknown scheme", func(r *http.Request) { r.Header.Set("Authorization", "Digest username=admin") }},
	}
	routes := e.p.API.Routes()
	seenPublic := map[string]bool{}
	for _, rt := range routes {
		key := rt.Method + " " + rt.Path
		if rt.Public != publicRoutes[key] {
			t.Errorf("%s: registered public=%v, the audit's list says %v", key, rt.Public, publicRoutes[key])
		}
		if publicRoutes[key] {
			seenPublic[key] = true
			continue
		}
		for _, c := range creds {
			x := e.call(nil, rt.Method, concrete(rt.Path), `{}`, c.set)
			if x.status >= 200 && x.status < 300 {
				t.Errorf("%s with %s: %d, the route answered", key, c.name, x.status)
				continue
			}
			if x.status != http.StatusUnauthorized {
				t.Errorf("%s with %s: %d, want 401: %s", key, c.name, x.status, x.body)
				continue
			}
			if code := errorCode(t, x); code != "unauthorized" {
				t.Errorf("%s with %s: code %q", key, c.name, code)
			}
			if h := x.header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Bearer ") {
				t.Errorf("%s with %s: WWW-Authenticate %q (a Basic challenge makes browsers cache passwords)", key, c.name, h)
			}
		}
		// One wrong password per route: keep the walk under the lockout,
		// which TestAuditBruteForce covers.
		e.p.Auth.Limiter.Succeed("127.0.0.1")
	}
	if len(routes) < 30 {
		t.Errorf("the router lists only %d routes", len(routes))
	}
	for k := range publicRoutes {
		if !seenPublic[k] {
			t.Errorf("public route %s is not registered: the list is stale", k)
		}
	}
	// The public exceptions answer without credentials.
	if x := e.call(nil, "GET", "/api/v1/health", "", nil); x.status != http.StatusOK {
		t.Errorf("health: %d", x.status)
	}
	if x := e.call(nil, "GET", "/", "", nil); x.status != http.StatusOK || !bytes.Contains(x.body, []byte("dashboard")) {
		t.Errorf("the UI at /: %d %q", x.status, x.body)
	}
	// API paths never fall through to the unauthenticated UI.
	if x := e.call(nil, "GET", "/api/v1/no-such-route", "", nil); x.status == http.StatusOK {
		t.Errorf("an unknown API path reached the UI handler")
	}
	// Nothing happened: no reboot, no new version, no token change.
	e.mu.Lock()
	reboots := e.reboots
	e.mu.Unlock()
	if reboots != 0 {
		t.Errorf("%d reboots were triggered without credentials", reboots)
	}
	if v := e.p.Config.Current().Version; v != versionBefore {
		t.Errorf("configuration version %d -> %d without credentials", versionBefore, v)
	}
	if n := len(e.p.Auth.Tokens()); n != tokensBefore {
		t.Errorf("tokens %d -> %d without credentials", tokensBefore, n)
	}
	if _, err := os.Stat(filepath.Join(e.data, "tls", "cert.pem")); err != nil {
		t.Errorf("the certificate is gone: %v", err)
	}
}

// TestAuditCSRF calls every state-changing route with a valid session
// cookie and no or a wrong CSRF token: each is refused with 403 csrf and
// has no effect. The session stays valid, and the right token passes.
func TestAuditCSRF(t *testing.T) {
	e := startAudit(t)
	id, csrf := e.login(nil, e.pw)
	versionBefore := e.p.Config.Current().Version
	unsafe := 0
	for _, rt := range e.p.API.Routes() {
		if rt.Method == "GET" || rt.Public {
			continue
		}
		unsafe++
		key := rt.Method + " " + rt.Path
		for name, tok := range map[string]string{"no token": "", "wrong token": "x" + csrf[1:], "another header's value": id} {
			x := e.call(nil, rt.Method, concrete(rt.Path), `{}`, session(id, tok))
			if x.status != http.StatusForbidden {
				t.Errorf("%s with the cookie and %s: %d, want 403: %s", key, name, x.status, x.body)
				continue
			}
			if code := errorCode(t, x); code != "csrf" {
				t.Errorf("%s with %s: code %q, want csrf", key, name, code)
			}
		}
	}
	if unsafe < 15 {
		t.Errorf("only %d state-changing routes", unsafe)
	}
	e.mu.Lock()
	reboots := e.reboots
	e.mu.Unlock()
	if reboots != 0 || e.p.Config.Current().Version != versionBefore {
		t.Errorf("refused requests had effects: %d reboots, version %d -> %d", reboots, versionBefore, e.p.Config.Current().Version)
	}
	// Controls: the cookie is valid (reads need no CSRF token, and the
	// refused logout above did not end it) and the right token passes.
	if x := e.call(nil, "GET", "/api/v1/auth/session", "", session(id, "")); x.status != http.StatusOK {
		t.Fatalf("session after the CSRF walk: %d", x.status)
	}
	if x := e.call(nil, "POST", "/api/v1/replicas/a/drain", "", session(id, csrf)); x.status != http.StatusOK {
		t.Errorf("drain with the right CSRF token: %d %s", x.status, x.body)
	}
}

// TestAuditBruteForce: wrong passwords from one address lock it out (429
// with Retry-After, even for the right password, by login or Basic); an
// address that did nothing wrong logs in meanwhile.
func TestAuditBruteForce(t *testing.T) {
	e := startAudit(t)
	attacker, other := e.clientFrom("127.0.0.1"), e.clientFrom("127.0.0.2")
	const free = 5 // docs/api.md: locked after 5 consecutive failures
	for i := 1; i <= free; i++ {
		x := e.call(attacker, "POST", "/api/v1/auth/login", fmt.Sprintf(`{"username":"admin","password":"guess-%d"}`, i), nil)
		if x.status != http.StatusUnauthorized {
			t.Fatalf("wrong login %d: %d %s", i, x.status, x.body)
		}
	}
	for name, try := range map[string]func() exchange{
		"login": func() exchange {
			return e.call(attacker, "POST", "/api/v1/auth/login", fmt.Sprintf(`{"username":"admin","password":%q}`, e.pw), nil)
		},
		"basic": func() exchange { return e.call(attacker, "GET", "/api/v1/status", "", basic("admin", e.pw)) },
	} {
		x := try()
		if x.status != http.StatusTooManyRequests {
			t.Errorf("right password by %s while locked out: %d, want 429", name, x.status)
			continue
		}
		if code := errorCode(t, x); code != "locked_out" {
			t.Errorf("%s while locked out: code %q", name, code)
		}
		if x.header.Get("Retry-After") == "" {
			t.Errorf("%s while locked out: no Retry-After", name)
		}
	}
	// Another address is not affected.
	e.login(other, e.pw)
	if x := e.call(other, "GET", "/api/v1/status", "", basic("admin", e.pw)); x.status != http.StatusOK {
		t.Errorf("another address during the lockout: %d", x.status)
	}
	// The lockout is on record.
	x := e.call(other, "GET", "/api/v1/events?kind=locked-out", "", basic("admin", e.pw))
	if !bytes.Contains(x.body, []byte(`"remote": "127.0.0.1"`)) && !bytes.Contains(x.body, []byte(`"remote":"127.0.0.1"`)) {
		t.Errorf("no locked-out event for 127.0.0.1: %s", x.body)
	}
}

// TestAuditTLS connects to the real HTTPS listener: TLS 1.0 and 1.1 are
// refused, 1.2 and 1.3 negotiate, and on 1.2 only ECDHE key exchange with
// an AEAD cipher is accepted, whatever the client offers.
func TestAuditTLS(t *testing.T) {
	e := startAudit(t)
	addr := e.p.Addrs()[0]
	hs := func(c *tls.Config) (tls.ConnectionState, error) {
		c.RootCAs, c.ServerName = e.pool, "localhost"
		d := &net.Dialer{Timeout: 5 * time.Second}
		conn, err := tls.DialWithDialer(d, "tcp", addr, c)
		if err != nil {
			return tls.ConnectionState{}, err
		}
		defer conn.Close()
		return conn.ConnectionState(), nil
	}
	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
		if st, err := hs(&tls.Config{MinVersion: v, MaxVersion: v}); err == nil {
			t.Errorf("%s negotiated (%s)", tls.VersionName(v), tls.CipherSuiteName(st.CipherSuite))
		}
	}
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		st, err := hs(&tls.Config{MinVersion: v, MaxVersion: v})
		if err != nil {
			t.Errorf("%s refused: %v", tls.VersionName(v), err)
		} else if st.Version != v {
			t.Errorf("asked for %s, got %s", tls.VersionName(v), tls.VersionName(st.Version))
		}
	}
	// Offer one TLS 1.2 suite at a time, secure and insecure alike.
	good := regexp.MustCompile(`^TLS_ECDHE_(ECDSA|RSA)_WITH_(AES_(128|256)_GCM_SHA(256|384)|CHACHA20_POLY1305_SHA256)$`)
	accepted := 0
	var all []*tls.CipherSuite
	all = append(all, tls.CipherSuites()...)
	all = append(all, tls.InsecureCipherSuites()...)
	for _, cs := range all {
		if !supports12(cs) {
			continue
		}
		st, err := hs(&tls.Config{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{cs.ID}})
		if err != nil {
			continue
		}
		accepted++
		if !good.MatchString(tls.CipherSuiteName(st.CipherSuite)) {
			t.Errorf("TLS 1.2 accepted %s: not ECDHE with an AEAD cipher", tls.CipherSuiteName(st.CipherSuite))
		}
	}
	if accepted == 0 {
		t.Error("no TLS 1.2 suite was accepted at all")
	}
}

func supports12(cs *tls.CipherSuite) bool {
	for _, v := range cs.SupportedVersions {
		if v == tls.VersionTLS12 {
			return true
		}
	}
	return false
}

// TestAuditSecretsNeverLeak runs a scripted operator session (login,
// token use, wrong logins, a password change, a configuration change,
// logout, revoke) and then looks for every secret of it in every API
// answer, the event log (as served and as stored), /metrics and the
// daemon's log. The only answers allowed to carry a secret are the token
// creation (its secret) and the logins (their own session cookie).
func TestAuditSecretsNeverLeak(t *testing.T) {
	e := startAudit(t)
	generated := e.pw
	sid1, csrf1 := e.login(nil, generated)
	e.call(nil, "GET", "/api/v1/auth/session", "", session(sid1, ""))
	tokID, secret := e.createToken("ci")
	e.mu.Lock()
	creation := len(e.seen) - 1 // the one answer that carries the secret
	e.mu.Unlock()
	for _, p := range []string{"/api/v1/status", "/api/v1/replicas", "/api/v1/events?limit=1000", "/api/v1/system/tokens", "/api/v1/config", "/api/v1/config/history", "/api/v1/system/tls", "/metrics", "/api/v1/auth/session"} {
		if x := e.call(nil, "GET", p, "", bearer(secret)); x.status != http.StatusOK {
			t.Errorf("GET %s with the token: %d", p, x.status)
		}
	}
	// Wrong logins whose attempted passwords are near-misses of the real
	// one: the failure events must not record what was typed.
	e.call(nil, "POST", "/api/v1/auth/login", fmt.Sprintf(`{"username":"admin","password":%q}`, generated+"x"), nil)
	e.call(nil, "GET", "/api/v1/status", "", basic("admin", "x"+generated))
	e.p.Auth.Limiter.Succeed("127.0.0.1")
	doc := strings.Replace(e.doc, "7000", "7001", 1)
	if x := e.call(nil, "PUT", "/api/v1/config?confirm_timeout=0s", doc, session(sid1, csrf1)); x.status != http.StatusOK {
		t.Errorf("config apply: %d %s", x.status, x.body)
	}
	newPW := "audit-" + strings.Repeat("N", 8) + "-pw"
	if x := e.call(nil, "PUT", "/api/v1/system/password", fmt.Sprintf(`{"current":%q,"new":%q}`, generated, newPW), bearer(secret)); x.status != http.StatusOK && x.status != http.StatusNoContent {
		t.Fatalf("password change: %d %s", x.status, x.body)
	}
	if _, err := os.Stat(filepath.Join(e.data, "admin-password")); !os.IsNotExist(err) {
		t.Errorf("admin-password still exists after the change: %v", err)
	}
	sid2, csrf2 := e.login(nil, newPW)
	e.call(nil, "POST", "/api/v1/replicas/b/drain", "", session(sid2, csrf2))
	e.call(nil, "POST", "/api/v1/auth/logout", "", session(sid2, csrf2))
	e.call(nil, "DELETE", "/api/v1/system/tokens/"+tokID, "", basic("admin", newPW))
	final := []exchange{
		e.call(nil, "GET", "/api/v1/events?limit=1000", "", basic("admin", newPW)),
		e.call(nil, "GET", "/metrics", "", basic("admin", newPW)),
		e.call(nil, "GET", "/api/v1/system/tokens", "", basic("admin", newPW)),
	}
	if !bytes.Contains(final[0].body, []byte("token-created")) || !bytes.Contains(final[0].body, []byte("login-failed")) {
		t.Fatalf("the event log lacks the session's events, the check would be hollow: %s", final[0].body)
	}
	// The stored hashes are secrets too: they must stay on disk.
	authJSON, err := os.ReadFile(filepath.Join(e.data, "auth.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		AdminHash string `json:"admin_hash"`
	}
	json.Unmarshal(authJSON, &st)
	secrets := map[string]string{
		"generated password": generated, "new password": newPW, "token secret": secret,
		"token secret body": strings.TrimPrefix(secret, "ftb_"), "session 1": sid1, "session 2": sid2,
		"admin bcrypt hash": st.AdminHash,
	}
	for name, s := range secrets {
		if len(s) < 12 {
			t.Fatalf("%s is too short to search for: %q", name, s)
		}
	}
	check := func(where string, data []byte) {
		for name, s := range secrets {
			if bytes.Contains(data, []byte(s)) {
				t.Errorf("the %s appears in %s", name, where)
			}
		}
	}
	e.mu.Lock()
	seen := append([]exchange(nil), e.seen...)
	logs := strings.Join(e.logs, "\n")
	e.mu.Unlock()
	for i, x := range seen {
		body := x.body
		if i == creation {
			body = bytes.ReplaceAll(body, []byte(secret), nil) // shown once, here
		}
		check(fmt.Sprintf("the body of %s (%d)", x.what, x.status), body)
		h := x.header.Clone()
		if x.what == "POST /api/v1/auth/login" {
			h.Del("Set-Cookie") // the session's own cookie
		}
		var hb bytes.Buffer
		h.Write(&hb)
		check(fmt.Sprintf("the headers of %s", x.what), hb.Bytes())
	}
	check("the daemon's log", []byte(logs))
	if !strings.Contains(logs, "admin-password") {
		t.Errorf("the log does not say where the generated password is:\n%s", logs)
	}
	filepath.WalkDir(filepath.Join(e.data, "events"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(path)
			check("the stored event log "+d.Name(), b)
		}
		return nil
	})
	check("the configuration file", mustRead(t, e.cfgPath))
	filepath.WalkDir(filepath.Join(e.data, "config"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			check("the configuration history "+d.Name(), mustRead(t, path))
		}
		return nil
	})
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAuditDataDirModes walks the data directory after a first start and
// after a session that writes every kind of state (token, password,
// configuration versions, pending change, events): directories are 0700,
// files 0600. The one exception is the public certificate, 0644 inside the
// 0700 tls directory.
func TestAuditDataDirModes(t *testing.T) {
	e := startAudit(t)
	walk := func(when string) {
		n := 0
		err := filepath.WalkDir(e.data, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(e.data, path)
			want := fs.FileMode(0o600)
			switch {
			case d.IsDir():
				want = 0o700
			case rel == filepath.Join("tls", "cert.pem"):
				want = 0o644
			case !fi.Mode().IsRegular():
				t.Errorf("%s: %s is not a regular file (%v)", when, rel, fi.Mode())
				return nil
			}
			n++
			if got := fi.Mode().Perm(); got != want {
				t.Errorf("%s: %s has mode %#o, want %#o", when, rel, got, want)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n < 8 {
			t.Errorf("%s: only %d entries in the data directory", when, n)
		}
	}
	walk("after the first start")
	e.createToken("ci")
	doc := strings.Replace(e.doc, "7000", "7002", 1)
	if x := e.call(nil, "PUT", "/api/v1/config?confirm_timeout=60s", doc, basic("admin", e.pw)); x.status != http.StatusOK {
		t.Fatalf("config apply: %d %s", x.status, x.body)
	}
	if _, err := os.Stat(filepath.Join(e.data, "config", "pending.json")); err != nil {
		t.Errorf("no pending state to check: %v", err)
	}
	if x := e.call(nil, "PUT", "/api/v1/system/password", fmt.Sprintf(`{"current":%q,"new":"another-long-password"}`, e.pw), basic("admin", e.pw)); x.status != http.StatusOK && x.status != http.StatusNoContent {
		t.Fatalf("password change: %d %s", x.status, x.body)
	}
	walk("after a session")
	if fi, err := os.Stat(e.cfgPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the configuration file: %v, %v", fi.Mode(), err)
	}
}
