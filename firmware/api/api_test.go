package api

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/ftbridge/ftbridge/firmware/events"
)

// fillPath replaces path variables with plausible values.
func fillPath(p string) string {
	return regexp.MustCompile(`\{[^}]+\}`).ReplaceAllStringFunc(p, func(v string) string {
		switch v {
		case "{version}":
			return "1"
		case "{name}":
			return "a"
		}
		return "x"
	})
}

// TestEveryRouteNeedsAuth walks the router: every route but the public
// ones answers 401 with a JSON error without credentials, and with wrong
// ones.
func TestEveryRouteNeedsAuth(t *testing.T) {
	e := newEnv(t, http.NotFoundHandler())
	public := map[string]bool{"GET /api/v1/health": true, "POST /api/v1/auth/login": true}
	n := 0
	err := e.srv.router.Walk(func(route *mux.Route, router *mux.Router, ancestors []*mux.Route) error {
		tmpl, err := route.GetPathTemplate()
		if err != nil {
			return nil
		}
		methods, err := route.GetMethods()
		if err != nil {
			return nil // the UI's catch-all
		}
		for _, m := range methods {
			key := m + " " + tmpl
			n++
			for _, a := range []string{"none", "pw:wrong-password", "bearer:ftb_nope", "session:nosuchsession:x", "Digest abc"} {
				res := e.do(req{method: m, path: fillPath(tmpl), auth: a, body: `{}`})
				if public[key] {
					// Login answers 401 for the wrong password in {};
					// health must answer.
					if key == "GET /api/v1/health" && res.status != http.StatusOK {
						t.Errorf("%s: status %d", key, res.status)
					}
					continue
				}
				if res.status != http.StatusUnauthorized {
					t.Errorf("%s with %s: status %d, want 401", key, a, res.status)
					continue
				}
				res.errCode(t)
				if !strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("%s: WWW-Authenticate %q", key, res.header.Get("WWW-Authenticate"))
				}
			}
			// Reset the lockout the wrong passwords built up.
			e.auth.Limiter.Succeed("127.0.0.1")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != len(e.srv.Routes()) || n < 30 {
		t.Errorf("walked %d routes, registered %d", n, len(e.srv.Routes()))
	}
	// The static UI is public; unknown API paths are JSON 404s, not the UI.
	if res := e.do(req{method: "GET", path: "/", auth: "none"}); res.status != http.StatusNotFound || strings.Contains(string(res.body), "error") {
		t.Errorf("UI: %d %s", res.status, res.body)
	}
	res := e.must(req{method: "GET", path: "/api/v1/nope", auth: "none"}, http.StatusNotFound)
	if res.errCode(t).Code != codeNotFound {
		t.Error("unknown API path")
	}
	res = e.must(req{method: "DELETE", path: "/api/v1/status", auth: "none"}, http.StatusMethodNotAllowed)
	res.errCode(t)
}

// TestOpenAPIMatchesRouter checks that every route is in the OpenAPI
// document and every documented operation is a route.
func TestOpenAPIMatchesRouter(t *testing.T) {
	e := newEnv(t, nil)
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	res := e.must(req{method: "GET", path: "/api/v1/openapi.json"}, 200)
	res.json(t, &doc)
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	var documented, routed []string
	for p, ops := range doc.Paths {
		for m := range ops {
			documented = append(documented, strings.ToUpper(m)+" "+p)
		}
	}
	for _, r := range e.srv.Routes() {
		routed = append(routed, r.Method+" "+r.Path)
	}
	sort.Strings(documented)
	sort.Strings(routed)
	if strings.Join(documented, "\n") != strings.Join(routed, "\n") {
		t.Errorf("OpenAPI and router differ:\ndocumented:\n%s\n\nrouted:\n%s", strings.Join(documented, "\n"), strings.Join(routed, "\n"))
	}
	// Public operations are marked so in the document.
	for _, r := range e.srv.Routes() {
		var op struct {
			Security *[]any `json:"security"`
		}
		json.Unmarshal(doc.Paths[r.Path][strings.ToLower(r.Method)], &op)
		if r.Public != (op.Security != nil && len(*op.Security) == 0) {
			t.Errorf("%s %s: public %v but the document says otherwise", r.Method, r.Path, r.Public)
		}
	}
}

func TestHealthAndHeaders(t *testing.T) {
	e := newEnv(t, nil)
	res := e.must(req{method: "GET", path: "/api/v1/health", auth: "none"}, 200)
	if !strings.Contains(string(res.body), `"ok"`) || res.header.Get("X-Content-Type-Options") != "nosniff" ||
		res.header.Get("Strict-Transport-Security") == "" || !strings.HasPrefix(res.header.Get("Content-Type"), "application/json") {
		t.Errorf("health: %v %s", res.header, res.body)
	}
}

func TestBasicTokenAndRevoke(t *testing.T) {
	e := newEnv(t, nil)
	e.must(req{method: "GET", path: "/api/v1/status"}, 200)
	var created TokenCreated
	e.must(req{method: "POST", path: "/api/v1/system/tokens", body: `{"name": "ci"}`}, 201).json(t, &created)
	if !strings.HasPrefix(created.Secret, "ftb_") || created.ID == "" {
		t.Fatalf("created %+v", created)
	}
	tok := "bearer:" + created.Secret
	var who sessionInfo
	e.must(req{method: "GET", path: "/api/v1/auth/session", auth: tok}, 200).json(t, &who)
	if who.Method != MethodToken || who.Username != "admin" {
		t.Errorf("session info %+v", who)
	}
	// Token writes need no CSRF header.
	e.must(req{method: "POST", path: "/api/v1/replicas/b/drain", auth: tok}, 200)
	var list struct{ Tokens []map[string]any }
	e.must(req{method: "GET", path: "/api/v1/system/tokens", auth: tok}, 200).json(t, &list)
	if len(list.Tokens) != 1 || list.Tokens[0]["name"] != "ci" || list.Tokens[0]["token"] != nil {
		t.Errorf("token list %+v", list)
	}
	e.must(req{method: "DELETE", path: "/api/v1/system/tokens/" + created.ID}, 200)
	e.must(req{method: "GET", path: "/api/v1/status", auth: tok}, 401)
	e.must(req{method: "DELETE", path: "/api/v1/system/tokens/" + created.ID}, 404)
	e.must(req{method: "POST", path: "/api/v1/system/tokens", body: `{"name": ""}`}, 400)
	if evs := e.events.Query(events.Query{Kinds: []string{"token-created", "token-revoked"}}); len(evs) != 2 {
		t.Errorf("token events %+v", evs)
	}
}

func TestLockout(t *testing.T) {
	e := newEnv(t, nil)
	now := time.Now()
	e.auth.Limiter.SetClock(func() time.Time { return now })
	for i := 0; i < 4; i++ {
		e.must(req{method: "GET", path: "/api/v1/status", auth: "pw:bad"}, 401)
	}
	e.must(req{method: "POST", path: "/api/v1/auth/login", auth: "none", body: `{"username": "admin", "password": "bad"}`}, 401)
	// Locked out now, even with the right password, on both paths.
	res := e.must(req{method: "GET", path: "/api/v1/status"}, 429)
	if res.errCode(t).Code != codeLockedOut || res.header.Get("Retry-After") != "30" {
		t.Errorf("lockout answer %v %s", res.header, res.body)
	}
	e.must(req{method: "POST", path: "/api/v1/auth/login", auth: "none", body: fmt.Sprintf(`{"username": "admin", "password": %q}`, e.password)}, 429)
	if evs := e.events.Query(events.Query{Kinds: []string{"locked-out"}}); len(evs) != 1 || evs[0].Remote != "127.0.0.1" {
		t.Errorf("locked-out events %+v", evs)
	}
	if evs := e.events.Query(events.Query{Kinds: []string{"login-failed"}}); len(evs) != 5 {
		t.Errorf("%d login-failed events", len(evs))
	}
	now = now.Add(31 * time.Second)
	e.must(req{method: "GET", path: "/api/v1/status"}, 200)
	// The success reset the count: four more failures do not lock.
	for i := 0; i < 4; i++ {
		e.must(req{method: "GET", path: "/api/v1/status", auth: "pw:bad"}, 401)
	}
	e.must(req{method: "GET", path: "/api/v1/status"}, 200)
}

func login(t *testing.T, e *env) sessionInfo {
	t.Helper()
	res := e.must(req{method: "POST", path: "/api/v1/auth/login", auth: "none", body: fmt.Sprintf(`{"username": "admin", "password": %q}`, e.password)}, 200)
	var info sessionInfo
	res.json(t, &info)
	var cookie *http.Cookie
	for _, c := range (&http.Response{Header: res.header}).Cookies() {
		if c.Name == SessionCookie {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || !cookie.Secure || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != "/" {
		t.Fatalf("session cookie %+v", cookie)
	}
	if info.CSRFToken == "" || info.CSRFToken == cookie.Value {
		t.Fatalf("csrf token %q", info.CSRFToken)
	}
	info.Method = cookie.Value // carry the cookie value along
	return info
}

func TestSessionAndCSRF(t *testing.T) {
	e := newEnv(t, nil)
	info := login(t, e)
	sess := "session:" + info.Method + ":"
	withCSRF := sess + info.CSRFToken
	e.must(req{method: "GET", path: "/api/v1/replicas", auth: sess}, 200)
	// Unsafe methods need the CSRF header, and the right one.
	e.must(req{method: "POST", path: "/api/v1/replicas/b/drain", auth: sess}, 403).errCode(t)
	e.must(req{method: "POST", path: "/api/v1/replicas/b/drain", auth: sess + "wrong"}, 403)
	e.must(req{method: "POST", path: "/api/v1/replicas/b/drain", auth: withCSRF}, 200)
	if e.dp.admin["b"] != "drained" {
		t.Error("drain not applied")
	}
	var who sessionInfo
	e.must(req{method: "GET", path: "/api/v1/auth/session", auth: sess}, 200).json(t, &who)
	if who.CSRFToken != info.CSRFToken || who.Method != MethodSession {
		t.Errorf("session info %+v", who)
	}
	e.must(req{method: "POST", path: "/api/v1/auth/logout", auth: withCSRF}, 200)
	e.must(req{method: "GET", path: "/api/v1/replicas", auth: sess}, 401)
	// A bad login body is a 400, not a crash.
	e.must(req{method: "POST", path: "/api/v1/auth/login", auth: "none", body: `{"user": 1}`}, 400)
	e.must(req{method: "POST", path: "/api/v1/auth/login", auth: "none", body: `{"username": "admin", "password": "x"}`, ctype: "text/plain"}, 415)
}

func TestReplicas(t *testing.T) {
	e := newEnv(t, nil)
	var list struct{ Replicas []map[string]any }
	e.must(req{method: "GET", path: "/api/v1/replicas"}, 200).json(t, &list)
	if len(list.Replicas) != 2 {
		t.Fatalf("replicas %+v", list)
	}
	a := list.Replicas[0]
	if a["name"] != "a" || a["interface"] != "port1" || a["role"] != "primary" || a["health"] != "up" || a["admin"] != "enabled" {
		t.Errorf("replica a: %+v", a)
	}
	if list.Replicas[1]["role"] != "backup" {
		t.Errorf("replica b: %+v", list.Replicas[1])
	}
	var one Replica
	e.must(req{method: "GET", path: "/api/v1/replicas/b"}, 200).json(t, &one)
	if one.Name != "b" {
		t.Errorf("one %+v", one)
	}
	e.must(req{method: "GET", path: "/api/v1/replicas/zz"}, 404).errCode(t)
	e.must(req{method: "POST", path: "/api/v1/replicas/zz/disable"}, 404)
	// An empty name is a JSON 404 too, not a redirect to another route.
	e.must(req{method: "POST", path: "/api/v1/replicas//disable"}, 404).errCode(t)
	e.must(req{method: "POST", path: "/api/v1/replicas/b/disable"}, 200).json(t, &one)
	if one.Admin != "disabled" || one.Health != "down" {
		t.Errorf("after disable %+v", one)
	}
	e.must(req{method: "POST", path: "/api/v1/replicas/b/promote"}, 409).errCode(t)
	e.must(req{method: "POST", path: "/api/v1/replicas/b/enable"}, 200)
	e.must(req{method: "POST", path: "/api/v1/replicas/b/promote"}, 200).json(t, &one)
	if one.Role != "primary" {
		t.Errorf("after promote %+v", one)
	}
	if evs := e.events.Query(events.Query{Kinds: []string{"operator-action"}}); len(evs) != 3 || evs[2].Detail != "promote" || evs[2].User != "admin" {
		t.Errorf("operator events %+v", evs)
	}
	// A hung dataplane is a 503 within the bound, not a hung request.
	e.dp.mu.Lock()
	e.dp.hang = true
	e.dp.mu.Unlock()
	start := time.Now()
	e.must(req{method: "GET", path: "/api/v1/replicas"}, 503).errCode(t)
	if d := time.Since(start); d > 2*snapshotTimeout {
		t.Errorf("hung dataplane answered after %v", d)
	}
}

func TestConnections(t *testing.T) {
	e := newEnv(t, nil)
	type page struct {
		Total, Offset, Limit int
		Connections          []Connection
	}
	get := func(q string) page {
		var p page
		e.must(req{method: "GET", path: "/api/v1/connections" + q}, 200).json(t, &p)
		return p
	}
	if p := get(""); p.Total != 25 || len(p.Connections) != 25 || p.Limit != 100 {
		t.Errorf("all: %d/%d", len(p.Connections), p.Total)
	}
	if p := get("?limit=10&offset=20"); p.Total != 25 || len(p.Connections) != 5 || p.Connections[0].BytesIn != 20 {
		t.Errorf("page: %+v", p)
	}
	if p := get("?offset=100"); len(p.Connections) != 0 || p.Connections == nil {
		t.Errorf("past the end: %+v", p)
	}
	for q, want := range map[string]int{
		"?primary=b": 4, "?service=198.18.0.10:80": 5, "?service=198.18.0.10": 25, "?client=198.18.1.2": 9,
		"?diverged=true": 1, "?replica=b": 20, "?state=established&primary=a&service=198.18.0.10:7000": 16, "?state=closed": 0,
	} {
		if p := get(q); p.Total != want {
			t.Errorf("%s: %d, want %d", q, p.Total, want)
		}
	}
	for _, q := range []string{"?limit=0", "?limit=1001", "?offset=-1", "?diverged=maybe", "?limit=x"} {
		e.must(req{method: "GET", path: "/api/v1/connections" + q}, 400).errCode(t)
	}
	first := get("?limit=1").Connections[0]
	var one Connection
	e.must(req{method: "GET", path: "/api/v1/connections/" + first.ID}, 200).json(t, &one)
	if one.Client != first.Client || len(one.Members) != 2 {
		t.Errorf("one: %+v", one)
	}
	e.must(req{method: "GET", path: "/api/v1/connections/" + url.PathEscape(first.Client+"->"+first.Service)}, 200)
	e.must(req{method: "GET", path: "/api/v1/connections/198.18.9.9:1_198.18.0.10:7000"}, 404)
	e.must(req{method: "GET", path: "/api/v1/connections/garbage"}, 404)
}

func TestStatus(t *testing.T) {
	e := newEnv(t, nil)
	var st Status
	e.must(req{method: "GET", path: "/api/v1/status"}, 200).json(t, &st)
	if st.Version != "test" || len(st.Ports) != 3 || st.Ports[0].Role != "uplink" || st.Ports[0].Name != "port0" ||
		st.Roles.Preferred != "a" || st.Connections != 25 || st.Failovers != 3 || st.Config.Version != 1 || !st.Dataplane.Running {
		t.Errorf("status %+v", st)
	}
}

func TestEventHistory(t *testing.T) {
	e := newEnv(t, nil)
	t0 := time.Date(2025, 1, 1, 10, 0, 0, 0, time.UTC)
	e.events.Add(events.Event{Kind: "replica-down", Replica: "a", Time: t0})
	e.events.Add(events.Event{Kind: "failover", Replica: "b", From: "a", Time: t0.Add(time.Second)})
	e.events.Add(events.Event{Kind: "replica-up", Replica: "a", Time: t0.Add(2 * time.Second)})
	get := func(q string) []events.Event {
		var out struct{ Events []events.Event }
		e.must(req{method: "GET", path: "/api/v1/events" + q}, 200).json(t, &out)
		return out.Events
	}
	if evs := get("?kind=failover"); len(evs) != 1 || evs[0].From != "a" {
		t.Errorf("kind: %+v", evs)
	}
	if evs := get("?category=health&replica=a"); len(evs) != 2 {
		t.Errorf("category: %+v", evs)
	}
	if evs := get("?since=2025-01-01T10:00:01Z&until=2025-01-01T10:00:01Z"); len(evs) != 1 {
		t.Errorf("time: %+v", evs)
	}
	if evs := get("?limit=1&category=health"); len(evs) != 1 || evs[0].Kind != "replica-up" {
		t.Errorf("limit keeps the newest: %+v", evs)
	}
	for _, q := range []string{"?since=yesterday", "?after=-1", "?limit=0"} {
		e.must(req{method: "GET", path: "/api/v1/events" + q}, 400).errCode(t)
	}
}

// sseReader reads events from a stream.
type sseReader struct {
	t  *testing.T
	sc *bufio.Scanner
	ch chan sseEvent
}

type sseEvent struct {
	id, kind string
	ev       events.Event
}

func openStream(t *testing.T, e *env, path, auth string, hdr map[string]string) (*sseReader, func()) {
	t.Helper()
	r, _ := http.NewRequest("GET", e.ts.URL+path, nil)
	switch {
	case auth == "":
		r.SetBasicAuth("admin", e.password)
	default:
		r.Header.Set("Authorization", "Bearer "+auth)
	}
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	res, err := e.ts.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	s := &sseReader{t: t, sc: bufio.NewScanner(res.Body), ch: make(chan sseEvent, 100)}
	go func() {
		defer close(s.ch)
		var cur sseEvent
		for s.sc.Scan() {
			line := s.sc.Text()
			switch {
			case strings.HasPrefix(line, "id: "):
				cur.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				cur.kind = line[7:]
			case strings.HasPrefix(line, "data: "):
				json.Unmarshal([]byte(line[6:]), &cur.ev)
			case line == "" && cur.id != "":
				s.ch <- cur
				cur = sseEvent{}
			}
		}
	}()
	return s, func() { res.Body.Close() }
}

func (s *sseReader) next(timeout time.Duration) (sseEvent, bool) {
	select {
	case ev, ok := <-s.ch:
		return ev, ok
	case <-time.After(timeout):
		s.t.Fatal("no event on the stream")
		return sseEvent{}, false
	}
}

func TestEventStream(t *testing.T) {
	e := newEnv(t, nil)
	e.srv.sseKeepalive = 50 * time.Millisecond
	first, _ := e.events.Add(events.Event{Kind: "replica-down", Replica: "a"})
	s, stop := openStream(t, e, "/api/v1/events/stream?category=failover,connection", "", nil)
	defer stop()
	time.Sleep(50 * time.Millisecond)                            // the subscription is set up before the first byte is sent; this just lets keep-alives flow
	e.events.Add(events.Event{Kind: "replica-up", Replica: "a"}) // filtered out
	e.events.Add(events.Event{Kind: "failover", Replica: "b", From: "a", Conn: "c->s"})
	e.events.Add(events.Event{Kind: "conn-established", Conn: "c->s"}) // live only
	ev, _ := s.next(5 * time.Second)
	if ev.kind != "failover" || ev.ev.From != "a" || ev.id != fmt.Sprint(ev.ev.Seq) {
		t.Errorf("first streamed event %+v", ev)
	}
	if ev, _ := s.next(5 * time.Second); ev.kind != "conn-established" {
		t.Errorf("second streamed event %+v", ev)
	}
	// Reconnecting with Last-Event-ID replays what was missed.
	s2, stop2 := openStream(t, e, "/api/v1/events/stream", "", map[string]string{"Last-Event-ID": fmt.Sprint(first.Seq)})
	defer stop2()
	if ev, _ := s2.next(5 * time.Second); ev.kind != "replica-up" {
		t.Errorf("replayed %+v", ev)
	}
	if ev, _ := s2.next(5 * time.Second); ev.kind != "failover" {
		t.Errorf("replayed %+v", ev)
	}
	e.must(req{method: "GET", path: "/api/v1/events/stream", header: map[string]string{"Last-Event-ID": "x"}}, 400)
}

// TestStreamEndsOnRevoke: revoking the token of an open stream ends it.
func TestStreamEndsOnRevoke(t *testing.T) {
	e := newEnv(t, nil)
	e.srv.sseKeepalive = 20 * time.Millisecond
	tok, secret, err := e.auth.CreateToken("watch")
	if err != nil {
		t.Fatal(err)
	}
	s, stop := openStream(t, e, "/api/v1/events/stream", secret, nil)
	defer stop()
	e.events.Add(events.Event{Kind: "failover"})
	s.next(5 * time.Second)
	e.auth.RevokeToken(tok.ID)
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-s.ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("stream still open after the token was revoked")
		}
	}
}
