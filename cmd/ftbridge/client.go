package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// globals are the flags before the subcommand.
var globals struct {
	url, token, user, passwordFile, cacert, dataDir string
	insecure, json                                  bool
	// client, when set, replaces the HTTP client (tests).
	client *http.Client
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func newGlobalFlags() *flag.FlagSet {
	fs := flag.NewFlagSet("ftbridge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&globals.url, "url", envOr("FTBRIDGE_URL", "https://127.0.0.1:8443"), "the appliance's API `URL` (FTBRIDGE_URL)")
	fs.StringVar(&globals.token, "token", os.Getenv("FTBRIDGE_TOKEN"), "API `token` (FTBRIDGE_TOKEN)")
	fs.StringVar(&globals.user, "user", "admin", "user `name` for HTTP Basic")
	fs.StringVar(&globals.passwordFile, "password-file", "", "read the password from `FILE` (else FTBRIDGE_PASSWORD, else DATA/admin-password)")
	fs.StringVar(&globals.cacert, "cacert", "", "trust the certificate in `FILE` (else DATA/tls/cert.pem when readable)")
	fs.StringVar(&globals.dataDir, "data-dir", "/var/lib/ftbridge", "the appliance's data `DIR`, when run on the box")
	fs.BoolVar(&globals.insecure, "insecure", false, "do not verify the server's certificate")
	fs.BoolVar(&globals.json, "json", false, "print JSON instead of tables")
	return fs
}

// apiError is an error answer of the API.
type apiError struct {
	Status  int
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field"`
}

func (e *apiError) Error() string {
	if e.Field != "" && !strings.Contains(e.Message, e.Field) {
		return fmt.Sprintf("%s (%s): %s", e.Code, e.Field, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// client talks to the API.
type client struct {
	base string
	hc   *http.Client
	auth func(*http.Request)
}

func newClient() (*client, error) {
	c := &client{base: strings.TrimRight(globals.url, "/")}
	if globals.client != nil {
		c.hc = globals.client
	} else {
		tc := &tls.Config{InsecureSkipVerify: globals.insecure}
		ca := globals.cacert
		if ca == "" {
			if p := filepath.Join(globals.dataDir, "tls", "cert.pem"); readable(p) {
				ca = p
			}
		}
		if ca != "" && !globals.insecure {
			pem, err := os.ReadFile(ca)
			if err != nil {
				return nil, err
			}
			pool, _ := x509.SystemCertPool()
			if pool == nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("%s: no certificate", ca)
			}
			tc.RootCAs = pool
		}
		c.hc = &http.Client{Transport: &http.Transport{TLSClientConfig: tc, Proxy: http.ProxyFromEnvironment}}
	}
	switch {
	case globals.token != "":
		tok := globals.token
		c.auth = func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	default:
		pw, err := password()
		if err != nil {
			return nil, err
		}
		user := globals.user
		c.auth = func(r *http.Request) { r.SetBasicAuth(user, pw) }
	}
	return c, nil
}

func readable(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

func password() (string, error) {
	if globals.passwordFile != "" {
		b, err := os.ReadFile(globals.passwordFile)
		return strings.TrimSpace(string(b)), err
	}
	if pw := os.Getenv("FTBRIDGE_PASSWORD"); pw != "" {
		return pw, nil
	}
	if b, err := os.ReadFile(filepath.Join(globals.dataDir, "admin-password")); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	return "", fmt.Errorf("no credentials: use --token (or FTBRIDGE_TOKEN), --password-file or FTBRIDGE_PASSWORD")
}

// request sends a request and returns the response; error answers become
// *apiError.
func (c *client) request(method, path string, body []byte, timeout time.Duration) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	c.auth(req)
	hc := *c.hc
	hc.Timeout = timeout
	res, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	if res.StatusCode >= 400 {
		return nil, errorAnswer(method, path, res)
	}
	return res, nil
}

// errorAnswer reads an error answer: the API's JSON error as *apiError,
// anything else (a proxy's page) as text.
func errorAnswer(method, path string, res *http.Response) error {
	defer res.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	var eb struct{ Error apiError }
	if json.Unmarshal(data, &eb) != nil || eb.Error.Code == "" {
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, res.StatusCode, strings.TrimSpace(string(data)))
	}
	eb.Error.Status = res.StatusCode
	return &eb.Error
}

// call sends a JSON request and decodes the JSON answer into out (or
// returns it raw when out is nil).
func (c *client) call(method, path string, in any, out any) ([]byte, error) {
	var body []byte
	switch v := in.(type) {
	case nil:
	case []byte:
		body = v
	default:
		var err error
		if body, err = json.Marshal(v); err != nil {
			return nil, err
		}
	}
	res, err := c.request(method, path, body, 30*time.Second)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return data, fmt.Errorf("%s %s: bad answer: %v", method, path, err)
		}
	}
	return data, nil
}

// fail prints an error and returns exit code 1.
func fail(err error) int {
	fmt.Fprintf(stderr, "ftbridge: %v\n", err)
	return 1
}

// printJSON prints an API answer as it came (indented).
func printJSON(data []byte) {
	var buf bytes.Buffer
	if json.Indent(&buf, data, "", "  ") != nil {
		stdout.Write(data)
		return
	}
	buf.WriteByte('\n')
	stdout.Write(bytes.TrimRight(buf.Bytes(), "\n"))
	fmt.Fprintln(stdout)
}

// subFlags is a flag set for a subcommand; --json is accepted there too.
func subFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("ftbridge "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&globals.json, "json", globals.json, "print JSON instead of tables")
	return fs
}

// requestSSE opens the event stream, resuming after event id last.
func (c *client) requestSSE(path, last string) (*http.Response, error) {
	req, err := http.NewRequest("GET", c.base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if last != "" {
		req.Header.Set("Last-Event-ID", last)
	}
	c.auth(req)
	res, err := c.hc.Do(req) // no timeout: the stream is long-lived
	if err != nil {
		return nil, err
	}
	if res.StatusCode >= 400 {
		defer res.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		var eb struct{ Error apiError }
		if json.Unmarshal(data, &eb) != nil || eb.Error.Code == "" {
			return nil, fmt.Errorf("event stream: HTTP %d", res.StatusCode)
		}
		eb.Error.Status = res.StatusCode
		return nil, &eb.Error
	}
	return res, nil
}

// cloneFresh returns a client that opens new connections, so that a
// request proves the server is reachable now.
func cloneFresh(hc *http.Client) *http.Client {
	cp := *hc
	if t, ok := hc.Transport.(*http.Transport); ok {
		cp.Transport = t.Clone()
	}
	return &cp
}
