package webui_test

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/ftbridge/ftbridge/webui"
)

func decodeJSON(res *http.Response, out any) error { return json.NewDecoder(res.Body).Decode(out) }

func get(t *testing.T, h http.Handler, method, path string, hdr map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	var r io.Reader = res.Body
	if res.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestHandlerServesTheApp checks the index, that every asset it names is
// served with the right type, and the security headers.
func TestHandlerServesTheApp(t *testing.T) {
	h := webui.Handler()
	res := get(t, h, "GET", "/", nil)
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("/: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	csp := res.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe") {
		t.Errorf("CSP allows unsafe sources: %q", csp)
	}
	if res.Header.Get("X-Frame-Options") != "DENY" || res.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("headers %v", res.Header)
	}
	index := body(t, res)
	refs := regexp.MustCompile(`(?:src|href)="(/[^"]*)"`).FindAllStringSubmatch(index, -1)
	if len(refs) < 3 {
		t.Fatalf("index names %d files:\n%s", len(refs), index)
	}
	types := map[string]string{".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
	for _, m := range refs {
		res := get(t, h, "GET", m[1], nil)
		if res.StatusCode != 200 {
			t.Errorf("%s: %d", m[1], res.StatusCode)
			continue
		}
		for ext, ct := range types {
			if strings.HasSuffix(m[1], ext) && !strings.HasPrefix(res.Header.Get("Content-Type"), ct) {
				t.Errorf("%s: Content-Type %q", m[1], res.Header.Get("Content-Type"))
			}
		}
		if b := body(t, res); len(b) == 0 {
			t.Errorf("%s is empty", m[1])
		}
	}
	// No outside fetch at run time: the code names no other origin.
	js := body(t, get(t, h, "GET", "/assets/app.js", nil))
	for _, bad := range regexp.MustCompile(`(?:fetch|import|src=|href=)\(?\s*["'\x60]https?://`).FindAllString(js, -1) {
		t.Errorf("app.js loads from another origin: %s", bad)
	}
	lic := body(t, get(t, h, "GET", "/licenses.txt", nil))
	for _, lib := range []string{"preact", "htm", "uplot", "MIT License", "Apache License"} {
		if !strings.Contains(lic, lib) {
			t.Errorf("licenses.txt lacks %q", lib)
		}
	}
}

func TestHandlerCachingAndCompression(t *testing.T) {
	h := webui.Handler()
	plain := get(t, h, "GET", "/assets/app.js", nil)
	if plain.Header.Get("Content-Encoding") != "" || plain.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("headers %v", plain.Header)
	}
	full := body(t, plain)
	gz := get(t, h, "GET", "/assets/app.js", map[string]string{"Accept-Encoding": "br, gzip;q=0.8"})
	if gz.Header.Get("Content-Encoding") != "gzip" || gz.Header.Get("Vary") != "Accept-Encoding" {
		t.Fatalf("no gzip: %v", gz.Header)
	}
	raw, _ := io.ReadAll(gz.Body)
	if len(raw) == 0 || len(raw) >= len(full)/2 {
		t.Errorf("gzip length %d of %d", len(raw), len(full))
	}
	zr, err := gzip.NewReader(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if unzipped, _ := io.ReadAll(zr); string(unzipped) != full {
		t.Error("gzip body differs")
	}
	if res := get(t, h, "GET", "/assets/app.js", map[string]string{"Accept-Encoding": "gzip;q=0"}); res.Header.Get("Content-Encoding") != "" {
		t.Error("gzip sent although refused")
	}
	if plain.Header.Get("ETag") == "" || plain.Header.Get("ETag") == gz.Header.Get("ETag") {
		t.Errorf("ETags %q %q", plain.Header.Get("ETag"), gz.Header.Get("ETag"))
	}
	if res := get(t, h, "GET", "/assets/app.js", map[string]string{"If-None-Match": plain.Header.Get("ETag")}); res.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %d", res.StatusCode)
	}
	if res := get(t, h, "HEAD", "/", nil); res.StatusCode != 200 || body(t, res) != "" {
		t.Errorf("HEAD: %d", res.StatusCode)
	}
}

func TestHandlerRefuses(t *testing.T) {
	h := webui.Handler()
	for _, p := range []string{"/nope", "/assets/", "/assets/../index.html", "/dist/index.html", "/index.html/"} {
		if res := get(t, h, "GET", p, nil); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d", p, res.StatusCode)
		}
	}
	if res := get(t, h, "POST", "/", nil); res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /: %d %v", res.StatusCode, res.Header)
	}
}

// TestFrontendUnit runs the front-end's unit tests (webui/test/*.test.js)
// with Node's built-in test runner.
func TestFrontendUnit(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("needs Node.js (node) for the front-end unit tests")
	}
	cmd := exec.Command(node, "--test", "test/")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`# pass [1-9]`).Match(out) || !strings.Contains(string(out), "# fail 0") {
		t.Fatalf("unexpected node --test output:\n%s", out)
	}
	t.Logf("%s", regexp.MustCompile(`# (tests|pass|fail) \d+`).FindAll(out, -1))
}

// TestDistUpToDate checks that the committed dist/ is what the sources
// build to, when the build tools are installed (cd webui && npm ci).
func TestDistUpToDate(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("needs Node.js to rebuild the front-end")
	}
	if _, err := os.Stat("node_modules/esbuild"); err != nil {
		t.Skip("needs the front-end's build tools: cd webui && npm ci")
	}
	out, err := exec.Command(node, "build.mjs", "--check").CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}
