package integration_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ftbridge/ftbridge/integration/labsvc"
	"github.com/ftbridge/ftbridge/webui/webuitest"
)

// uiDaemon is an ftbridged that serves the dashboard, built once.
var uiDaemon struct {
	once sync.Once
	path string
	note string
	err  error
}

// ftbridgedWithUI returns an ftbridged binary that serves the web
// dashboard. If cmd/ftbridged imports the webui package itself, that is the
// one TestMain built; until it does, the same package is built with one
// file laid over it by the go tool's -overlay (nothing in the tree
// changes), so that this test exercises the daemon as it will ship.
func ftbridgedWithUI(t *testing.T) string {
	t.Helper()
	uiDaemon.once.Do(func() {
		files, _ := filepath.Glob("../cmd/ftbridged/*.go")
		for _, f := range files {
			if b, err := os.ReadFile(f); err == nil && strings.Contains(string(b), `"github.com/ftbridge/ftbridge/webui"`) {
				uiDaemon.path = bins.ftbridged
				return
			}
		}
		uiDaemon.note = "cmd/ftbridged does not register the dashboard yet: built with an overlay that does"
		dir := bins.dir
		src := filepath.Join(dir, "webui_register.go")
		err := os.WriteFile(src, []byte("package main\n\nimport \"github.com/ftbridge/ftbridge/webui\"\n\nfunc init() { uiHandler = webui.Handler() }\n"), 0o644)
		if err != nil {
			uiDaemon.err = err
			return
		}
		abs, _ := filepath.Abs("../cmd/ftbridged/zz_webui_register_overlay.go")
		ov, _ := json.Marshal(map[string]any{"Replace": map[string]string{abs: src}})
		ovPath := filepath.Join(dir, "overlay.json")
		if err := os.WriteFile(ovPath, ov, 0o644); err != nil {
			uiDaemon.err = err
			return
		}
		out := filepath.Join(dir, "ftbridged-ui")
		cmd := exec.Command("go", "build", "-overlay", ovPath, "-o", out, "../cmd/ftbridged")
		if b, err := cmd.CombinedOutput(); err != nil {
			uiDaemon.err = fmt.Errorf("go build with the dashboard: %v\n%s", err, b)
			return
		}
		uiDaemon.path = out
	})
	if uiDaemon.err != nil {
		t.Fatal(uiDaemon.err)
	}
	if uiDaemon.note != "" {
		t.Log(uiDaemon.note)
	}
	return uiDaemon.path
}

// forward accepts on a loopback port of the test's namespace and splices
// each connection to addr inside ns: the browser runs here, the daemon's
// HTTPS listener is in the box namespace.
func forward(t *testing.T, b *bridgeLab, ns, addr string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d, err := b.Dial(ns, "tcp", addr, 5*time.Second)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			open = append(open, c, d)
			mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(d, c); d.(*net.TCPConn).CloseWrite() }()
			go func() { defer wg.Done(); io.Copy(c, d); c.(*net.TCPConn).CloseWrite() }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "https://" + ln.Addr().String()
}

// TestWebUILiveFailover runs ftbridged with its management plane and the
// dashboard in a netns lab, opens the dashboard in headless Chromium, and
// pulls the primary's cable under a live connection: the failover event
// and the role change must appear without a reload. Then a replica is
// drained from the dashboard and the dataplane is checked to have done it.
func TestWebUILiveFailover(t *testing.T) {
	needLab(t)
	if webuitest.FindChromium() == "" {
		t.Skip("needs Chromium for browser tests (Debian: apt-get install chromium)")
	}
	daemon := ftbridgedWithUI(t)
	b := newBridgeLab(t, labOptions{replicas: 2})
	if err := b.daemon.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	b.daemon.Wait()
	data := filepath.Join(b.Dir(), "data")
	// An operator-chosen first password: the dashboard then does not ask
	// to change it (the generated one is tested with the fake dataplane).
	const password = "webui lab password"
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "admin-password"), []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := b.Start(b.BoxNS, daemon, "--config", b.cfgPath, "--data-dir", data, "-quiet-conns")
	if err != nil {
		t.Fatal(err)
	}
	b.daemon = p
	b.waitLog(15*time.Second, "running:", "management API")
	url := forward(t, b, b.BoxNS, "127.0.0.1:8443")
	b.waitHealthy(7000, "a", "b")

	br := webuitest.NewBrowser(t, webuitest.Laptop)
	t.Cleanup(br.CheckProblems)
	br.Login(url, password)
	const wait = 20 * time.Second
	card := func(name, inner string) string { return fmt.Sprintf(`[data-replica=%q] %s`, name, inner) }
	br.WaitText(card("a", `[data-testid="role"]`), "primary", wait)
	br.WaitText(card("b", `[data-testid="role"]`), "backup", wait)
	br.WaitText(card("a", `[data-testid="health"]`), "healthy", wait)
	br.WaitText(card("b", `[data-testid="health"]`), "healthy", wait)
	br.WaitText(`[data-testid="redundancy"]`, "Intact", wait)
	br.Wait("event stream", `document.querySelector('[data-testid="conn-state"].live')`, wait)

	c := b.dial(7000)
	if last, _, err := labsvc.Incr(c, 5); err != nil || last != 5 {
		t.Fatalf("incr %d %v", last, err)
	}
	br.WaitText(`[data-testid="traffic"]`, "1 conn.", wait)
	time.Sleep(2500 * time.Millisecond) // a chart sample with the connection
	br.Screenshot("lab-before-failover")
	br.Eval(`window.__noReload = true`, nil)

	// Cable pulled on the primary's port.
	start := time.Now()
	if err := b.SetLink(b.BoxNS, b.ReplicaPorts[0], false); err != nil {
		t.Fatal(err)
	}
	if last, _, err := labsvc.Incr(c, 5); err != nil || last != 10 {
		t.Fatalf("incr across the failover %d %v\nlog:\n%s", last, err, tail(p.Log(), 30))
	}
	br.WaitText(card("b", `[data-testid="role"]`), "primary", wait)
	br.WaitText(card("a", `[data-testid="health"]`), "down", wait)
	br.WaitText(`[data-testid="failovers"]`, "a → b", wait)
	br.WaitText(`[data-testid="redundancy"]`, "Degraded", wait)
	t.Logf("failover on the dashboard %v after the cable was pulled", time.Since(start).Round(time.Millisecond))
	var kept bool
	br.Eval(`window.__noReload === true`, &kept)
	if !kept {
		t.Fatal("the dashboard reloaded")
	}
	br.Screenshot("lab-failover-overview")
	br.Click(`nav a[href="#/events"]`)
	br.WaitText(`[data-testid="timeline"]`, "Failover a → b", wait)
	br.WaitText(`[data-testid="timeline"]`, "Replica a is down", wait)
	br.Screenshot("lab-failover-events")

	// Cable back: a recovers; the timeline follows live.
	const ups = `[...document.querySelectorAll('[data-testid="timeline"] > li[data-kind="replica-up"]')].filter(li => li.textContent.includes('Replica a is up')).length`
	var before int
	br.Eval(ups, &before)
	if err := b.SetLink(b.BoxNS, b.ReplicaPorts[0], true); err != nil {
		t.Fatal(err)
	}
	br.Wait("replica a up again on the timeline", fmt.Sprintf("%s > %d", ups, before), 20*time.Second)

	// Drain b from the dashboard; the dataplane says it is drained.
	br.Click(`nav a[href="#/overview"]`)
	br.WaitText(card("a", `[data-testid="health"]`), "healthy", wait)
	br.Click(card("b", `button[data-action="drain"]`))
	br.Click(`[data-testid="confirm-ok"]`)
	br.WaitText(card("b", `[data-testid="admin"]`), "drained", wait)
	var rep struct{ Admin string }
	apiGetVia(t, url, password, "/api/v1/replicas/b", &rep)
	if rep.Admin != "drained" {
		t.Fatalf("replica b: admin %q after the drain", rep.Admin)
	}
	br.Screenshot("lab-drained")
	labsvc.Quit(c)
	p.Signal(syscall.SIGTERM)
	b.waitLog(10*time.Second, "stopped")
}

// apiGetVia reads an API route with Basic authentication, trusting any
// certificate (the lab daemon's is self-signed).
func apiGetVia(t *testing.T, base, password, path string, out any) {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig.InsecureSkipVerify = true
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+path, nil)
	req.SetBasicAuth("admin", password)
	res, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("GET %s: %s", path, res.Status)
	}
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}
