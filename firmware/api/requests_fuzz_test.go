package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ftbridge/ftbridge/firmware/auth"
)

// fuzzRoute is one route FuzzRequests drives: arg goes into the path
// (escaped) or, for a query route, is read as a query string.
type fuzzRoute struct {
	method, path string // path may hold {arg}
	query        bool   // arg is the query string
	body         bool   // the fuzzed body is sent
}

var fuzzRoutes = []fuzzRoute{
	{method: "POST", path: "/api/v1/auth/login", body: true},
	{method: "PUT", path: "/api/v1/system/password", body: true},
	{method: "POST", path: "/api/v1/system/tokens", body: true},
	{method: "DELETE", path: "/api/v1/system/tokens/{arg}"},
	{method: "POST", path: "/api/v1/system/factory-reset", body: true},
	{method: "POST", path: "/api/v1/replicas/{arg}/drain", body: true},
	{method: "POST", path: "/api/v1/replicas/{arg}/disable", body: true},
	{method: "POST", path: "/api/v1/replicas/{arg}/enable", body: true},
	{method: "POST", path: "/api/v1/replicas/{arg}/promote", body: true},
	{method: "POST", path: "/api/v1/replicas/{arg}/rejoin", body: true},
	{method: "GET", path: "/api/v1/replicas/{arg}"},
	{method: "GET", path: "/api/v1/connections", query: true},
	{method: "GET", path: "/api/v1/connections/{arg}"},
	{method: "GET", path: "/api/v1/events", query: true},
	{method: "POST", path: "/api/v1/config/validate", body: true},
	{method: "POST", path: "/api/v1/config/rollback", body: true},
	{method: "GET", path: "/api/v1/config/history/{arg}"},
	{method: "POST", path: "/api/v1/config/confirm", body: true},
	{method: "PUT", path: "/api/v1/system/tls", body: true},
	{method: "POST", path: "/api/v1/auth/logout", body: true},
}

// FuzzRequests sends fuzzed requests to the API's JSON routes other than
// PUT /config (FuzzConfigPut has that one): login, password change, token
// creation and revocation, factory reset, replica actions, connection and
// event queries, config validation, rollback, history and confirmation,
// TLS upload and logout, with a fuzzed path parameter or query and a
// fuzzed body. The request goes through the real router and authentication
// (an API token, so that failed password attempts cannot lock the fuzzer
// out; the lockout clock moves an hour per input, so that one input's
// failures do not decide the next one's answer). In arg and body "$PW" is
// replaced by the current admin password and "$CERT"/"$KEY" by a valid
// certificate and key, so the fuzzer reaches the success paths too.
//
// For every input: no panic, no 5xx, every answer JSON (but the router's
// redirect of a path that is not clean, such as an empty name between two
// slashes), every error a JSON error body with a code and a message, and
// the API token still works afterwards. Per route, what the answer claims must be true:
//
//   - login 200: the body named admin and the current password, and the
//     session cookie and CSRF token it returns authenticate;
//   - password 200: the new password verifies (and the old one no longer
//     does, when they differ) and is 12 to 72 bytes;
//   - token 201: the secret authenticates as a token named as asked, and
//     once revoked it no longer does;
//   - factory reset 202: the body asked for it with the exact confirmation;
//   - replica actions 200: the replica exists and drain, disable and enable
//     left it in that admin state;
//   - connections and events 200: no more entries than the limit, events
//     in order and after "after";
//   - TLS 200: GET /system/tls now shows that certificate; TLS 4xx: the
//     certificate in use is unchanged.
func FuzzRequests(f *testing.F) {
	for _, s := range []struct {
		op        uint8
		arg, body string
	}{
		{0, "", `{"username":"admin","password":"$PW"}`},
		{0, "", `{"username":"admin","password":"wrong"}`},
		{0, "", `{"username":"admin","password":"$PW","extra":1}`},
		{1, "", `{"current":"$PW","new":"a-new-password-1"}`},
		{1, "", `{"current":"$PW","new":"short"}`},
		{2, "", `{"name":"ci runner"}`},
		{2, "", `{"name":"\u0007bell"}`},
		{3, "AbCdEfGhIjKl", ""},
		{4, "", `{"confirm":"factory-reset"}`},
		{4, "", `{"confirm":"FACTORY-RESET"}`},
		{5, "a", ""},
		{6, "b", "{}"},
		{7, "b", ""},
		{8, "b", ""},
		{9, "a", ""},
		{10, "nope", ""},
		{11, "limit=5&offset=3&diverged=true&client=198.18.1.2&service=198.18.0.10:7000&primary=a&replica=b&state=established", ""},
		{11, "limit=0", ""},
		{11, "limit=5&offset=3&primary=a&replica=b&diverged=false", ""},
		{1, "", `{"current":"wrong-password","new":"a-new-password-2"}`},
		{12, "198.18.1.2:40000_198.18.0.10:7000", ""},
		{12, "198.18.1.3:40001->198.18.0.10:7000", ""},
		{13, "kind=failover,login&category=auth&since=2025-01-01T00:00:00Z&until=2030-01-01T00:00:00.5%2B01:00&after=2&limit=3&replica=a", ""},
		{13, "since=yesterday", ""},
		{14, "", testDoc},
		{14, "", `{"uplink": 7}`},
		{15, "", `{"version": 1}`},
		{15, "", `{"version": 1, "confirm_timeout": "90s"}`},
		{15, "", `{"version": -1}`},
		{16, "1", ""},
		{16, "99999999999999999999", ""},
		{17, "", ""},
		{18, "", `{"cert_pem":"$CERT","key_pem":"$KEY"}`},
		{18, "", `{"cert_pem":"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n","key_pem":""}`},
		{19, "", ""},
	} {
		f.Add(s.op, s.arg, s.body)
	}
	e := newEnv(f, nil)
	_, secret, err := e.auth.CreateToken("fuzz harness")
	if err != nil {
		f.Fatal(err)
	}
	certPEM, keyPEM, err := auth.SelfSigned("fuzz.example")
	if err != nil {
		f.Fatal(err)
	}
	jsonText := func(s string) string {
		b, _ := json.Marshal(s)
		return string(b[1 : len(b)-1])
	}
	var clock atomic.Int64
	e.auth.Limiter.SetClock(func() time.Time { return time.Now().Add(time.Duration(clock.Load())) })
	h := e.srv.Handler()

	// do sends one request; hdr adds headers (Authorization defaults to the
	// harness token).
	do := func(t *testing.T, method, target, body string, hdr map[string]string) *httptest.ResponseRecorder {
		t.Helper()
		var r *http.Request
		if body != "" {
			r = httptest.NewRequest(method, target, strings.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
		} else {
			r = httptest.NewRequest(method, target, nil)
		}
		r.Header.Set("Authorization", "Bearer "+secret)
		for k, v := range hdr {
			if v == "" {
				r.Header.Del(k)
			} else {
				r.Header.Set(k, v)
			}
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	sessionOK := func(t *testing.T, hdr map[string]string) (sessionInfo, bool) {
		t.Helper()
		w := do(t, "GET", "/api/v1/auth/session", "", hdr)
		var info sessionInfo
		return info, w.Code == 200 && json.Unmarshal(w.Body.Bytes(), &info) == nil
	}
	tlsInfo := func(t *testing.T) auth.CertInfo {
		t.Helper()
		var info auth.CertInfo
		if w := do(t, "GET", "/api/v1/system/tls", "", nil); w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &info) != nil {
			t.Fatalf("GET /system/tls: %d %s", w.Code, w.Body)
		}
		return info
	}

	f.Fuzz(func(t *testing.T, op uint8, arg, body string) {
		if len(arg) > 4096 || len(body) > 64<<10 {
			return
		}
		clock.Add(int64(time.Hour))
		rt := fuzzRoutes[int(op)%len(fuzzRoutes)]
		pw := e.password
		expand := func(s string) string {
			return strings.NewReplacer("$PW", pw, "$CERT", jsonText(string(certPEM)), "$KEY", jsonText(string(keyPEM))).Replace(s)
		}
		arg, body = expand(arg), expand(body)
		target := strings.ReplaceAll(rt.path, "{arg}", url.PathEscape(arg))
		if rt.query {
			q, _ := url.ParseQuery(arg)
			target += "?" + q.Encode()
		}
		if !rt.body {
			body = ""
		}
		var tlsBefore auth.CertInfo
		if rt.path == "/api/v1/system/tls" {
			tlsBefore = tlsInfo(t)
		}

		w := do(t, rt.method, target, body, nil)
		res := w.Result()
		if w.Code >= 500 {
			t.Fatalf("%s %s %q: status %d: %s", rt.method, target, body, w.Code, w.Body)
		}
		u, err := url.Parse(target)
		if err != nil {
			t.Fatal(err)
		}
		if p := u.Path; w.Code == http.StatusMovedPermanently && path.Clean(p) != p {
			// gorilla/mux answers a path that is not clean ("//", "/./")
			// with a bodiless redirect to the clean one: known, reported
			// (docs/fuzzing.md, open findings), and not a JSON decoding
			// matter.
			want := path.Clean(p)
			if strings.HasSuffix(p, "/") && want != "/" {
				want += "/" // mux keeps a trailing slash
			}
			loc, err := url.Parse(res.Header.Get("Location"))
			if err != nil || loc.Path != want {
				t.Fatalf("%s %s: redirect to %q", rt.method, target, res.Header.Get("Location"))
			}
			return
		}
		if ct := res.Header.Get("Content-Type"); ct != contentTypeJSONUTF8 {
			t.Fatalf("%s %s: Content-Type %q", rt.method, target, ct)
		}
		if w.Code >= 400 {
			var eb ErrorBody
			if err := json.Unmarshal(w.Body.Bytes(), &eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
				t.Fatalf("%s %s: status %d without an error body: %s", rt.method, target, w.Code, w.Body)
			}
		} else if !json.Valid(w.Body.Bytes()) {
			t.Fatalf("%s %s: status %d, answer not JSON: %s", rt.method, target, w.Code, w.Body)
		}

		switch rt.path {
		case "/api/v1/auth/login":
			if w.Code != 200 {
				break
			}
			var req loginRequest
			json.Unmarshal([]byte(body), &req)
			if req.Username != auth.AdminUser || req.Password != pw {
				t.Fatalf("login accepted %q", body)
			}
			var info sessionInfo
			json.Unmarshal(w.Body.Bytes(), &info)
			var cookie string
			for _, c := range res.Cookies() {
				if c.Name == SessionCookie {
					cookie = c.Value
				}
			}
			if got, ok := sessionOK(t, map[string]string{"Authorization": "", "Cookie": SessionCookie + "=" + cookie}); !ok || got.Method != MethodSession || got.CSRFToken != info.CSRFToken {
				t.Fatalf("the session from a login does not authenticate: %+v", got)
			}
		case "/api/v1/system/password":
			if w.Code != 200 {
				break
			}
			var req passwordRequest
			json.Unmarshal([]byte(body), &req)
			if len(req.New) < auth.MinPasswordLength || len(req.New) > 72 || !e.auth.CheckPassword(auth.AdminUser, req.New) ||
				req.New != pw && e.auth.CheckPassword(auth.AdminUser, pw) {
				t.Fatalf("password change %q answered 200 but the passwords do not follow", body)
			}
			e.password = req.New
		case "/api/v1/system/tokens":
			if w.Code != 201 {
				break
			}
			var req tokenRequest
			json.Unmarshal([]byte(body), &req)
			var tc struct {
				ID     string `json:"id"`
				Name   string `json:"name"`
				Secret string `json:"token"`
			}
			json.Unmarshal(w.Body.Bytes(), &tc)
			bearer := map[string]string{"Authorization": "Bearer " + tc.Secret}
			if got, ok := sessionOK(t, bearer); tc.Name != req.Name || !strings.HasPrefix(tc.Secret, auth.TokenPrefix) || !ok || got.Method != MethodToken {
				t.Fatalf("created token %+v for %q does not authenticate", tc, body)
			}
			if d := do(t, "DELETE", "/api/v1/system/tokens/"+url.PathEscape(tc.ID), "", nil); d.Code != 200 {
				t.Fatalf("revoking the new token: %d %s", d.Code, d.Body)
			}
			if _, ok := sessionOK(t, bearer); ok {
				t.Fatal("a revoked token still authenticates")
			}
		case "/api/v1/system/factory-reset":
			if w.Code != 202 {
				break
			}
			var req factoryResetRequest
			if json.Unmarshal([]byte(body), &req); req.Confirm != "factory-reset" {
				t.Fatalf("factory reset accepted %q", body)
			}
		case "/api/v1/replicas/{arg}/drain", "/api/v1/replicas/{arg}/disable", "/api/v1/replicas/{arg}/enable",
			"/api/v1/replicas/{arg}/promote", "/api/v1/replicas/{arg}/rejoin", "/api/v1/replicas/{arg}":
			if w.Code != 200 {
				break
			}
			var rep Replica
			json.Unmarshal(w.Body.Bytes(), &rep)
			if arg != "a" && arg != "b" || rep.Name != arg {
				t.Fatalf("%s %s answered 200 for replica %q: %s", rt.method, target, arg, w.Body)
			}
			want := map[string]string{"drain": "drained", "disable": "disabled", "enable": "enabled"}[rt.path[strings.LastIndexByte(rt.path, '/')+1:]]
			if want != "" && rep.Admin != want {
				t.Fatalf("%s left replica %s %q", target, arg, rep.Admin)
			}
		case "/api/v1/connections":
			if w.Code != 200 {
				break
			}
			var page struct {
				Total, Offset, Limit int
				Connections          []Connection
			}
			json.Unmarshal(w.Body.Bytes(), &page)
			if len(page.Connections) > page.Limit || len(page.Connections) > 0 && page.Offset+len(page.Connections) > page.Total {
				t.Fatalf("%s: page of %d (offset %d, limit %d, total %d)", target, len(page.Connections), page.Offset, page.Limit, page.Total)
			}
		case "/api/v1/events":
			if w.Code != 200 {
				break
			}
			var evs struct {
				Events []struct{ Seq uint64 }
			}
			json.Unmarshal(w.Body.Bytes(), &evs)
			q, _ := url.ParseQuery(arg)
			limit := 100
			if v := q.Get("limit"); v != "" {
				json.Unmarshal([]byte(v), &limit)
			}
			var after uint64
			if v := q.Get("after"); v != "" {
				json.Unmarshal([]byte(v), &after)
			}
			for i, ev := range evs.Events {
				if ev.Seq <= after || i > 0 && ev.Seq <= evs.Events[i-1].Seq {
					t.Fatalf("%s: events out of order or not after %d: %+v", target, after, evs.Events)
				}
			}
			if len(evs.Events) > limit {
				t.Fatalf("%s: %d events for limit %d", target, len(evs.Events), limit)
			}
		case "/api/v1/system/tls":
			now := tlsInfo(t)
			switch {
			case w.Code == 200:
				var got auth.CertInfo
				json.Unmarshal(w.Body.Bytes(), &got)
				if got.SHA256 != now.SHA256 || now.SHA256 == "" {
					t.Fatalf("installed %s, serving %s", got.SHA256, now.SHA256)
				}
			case now.SHA256 != tlsBefore.SHA256:
				t.Fatalf("a refused certificate (%d) replaced the one in use", w.Code)
			}
		}
		if _, ok := sessionOK(t, nil); !ok {
			t.Fatalf("the API token stopped working after %s %s %q", rt.method, target, body)
		}
	})
}
