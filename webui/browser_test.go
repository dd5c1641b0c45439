package webui_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ftbridge/ftbridge/firmware/config"
	"github.com/ftbridge/ftbridge/webui/webuitest"
)

// The tests below drive the dashboard in headless Chromium against the
// real firmware/api handlers over a fake dataplane. Each saves
// screenshots under artifacts/webui/.

const labDoc = `{
  "uplink": "port0",
  "replicas": [ {"name": "a", "interface": "port1"}, {"name": "b", "interface": "port2"} ],
  "services": [ {"address": "198.18.0.10", "ports": [7000, 80]} ],
  "health": {"interval": "20ms", "fail_after": 3}
}`

// operatorPassword is a password an operator chose: it does not have the
// generated form, so the dashboard does not ask to change it.
const operatorPassword = "correct horse battery staple"

type rig struct {
	app *webuitest.Appliance
	dp  *fakeDP
	b   *webuitest.Browser
}

func newRig(t *testing.T, password string, size [2]int) *rig {
	t.Helper()
	if webuitest.FindChromium() == "" {
		t.Skip("needs Chromium for browser tests (Debian: apt-get install chromium; or set FTB_CHROMIUM)")
	}
	dp := newFakeDP("a", "b")
	app := webuitest.Start(t, webuitest.Options{Dataplane: dp, Config: labDoc, Password: password, Version: "1.2.3-test"})
	dp.ev = app.Events
	b := webuitest.NewBrowser(t, size)
	t.Cleanup(b.CheckProblems)
	return &rig{app: app, dp: dp, b: b}
}

// short bounds each wait: generous, since a wait that succeeds costs
// only its own time and CI machines are busy.
const short = 20 * time.Second

// replicaSel selects inside replica name's card.
func replicaSel(name, inner string) string {
	return fmt.Sprintf(`[data-replica=%q] %s`, name, inner)
}

func TestBrowserFirstLoginForcesPasswordChange(t *testing.T) {
	r := newRig(t, "", webuitest.Laptop)
	b := r.b
	b.Navigate(r.app.URL)
	b.Wait("login form", `document.querySelector('[data-testid="login-form"]')`, short)
	b.Screenshot("login")

	// A wrong password is refused with a message.
	b.Type(`input[name="password"]`, "not the password")
	b.Click(`[data-testid="login-form"] button[type="submit"]`)
	b.WaitText(`[data-testid="login-error"]`, "Wrong user name or password", short)

	// The generated password logs in, but only to the forced change.
	b.SetInput(`input[name="password"]`, "")
	b.Login(r.app.URL, r.app.Password)
	b.Wait("forced change", `document.querySelector('[data-testid="password-form"]') && !document.querySelector('main[data-page]')`, short)
	b.Screenshot("first-login-change-password")

	// The generated password is filled in from the login.
	var current string
	b.Eval(`document.querySelector('input[name="current"]').value`, &current)
	if current != r.app.Password {
		t.Errorf("current password field holds %q", current)
	}
	// Too short: refused in the page, nothing sent.
	b.Type(`input[name="next"]`, "short")
	b.Type(`input[name="repeat"]`, "short")
	b.Click(`[data-testid="password-form"] button[type="submit"]`)
	b.WaitText(`#pw-next-err`, "At least 12", short)

	const newPW = "a much better pass phrase"
	b.SetInput(`input[name="next"]`, newPW)
	b.SetInput(`input[name="repeat"]`, newPW)
	b.Click(`[data-testid="password-form"] button[type="submit"]`)
	b.Wait("overview after the change", `document.querySelector('main[data-page="overview"]')`, short)
	if !r.app.Auth.CheckPassword("admin", newPW) {
		t.Error("the new password does not work")
	}
	if r.app.Auth.CheckPassword("admin", r.app.Password) {
		t.Error("the generated password still works")
	}
	// A reload keeps the session and does not ask again.
	b.Navigate(r.app.URL)
	b.Wait("overview after reload", `document.querySelector('main[data-page="overview"]')`, short)
}

func TestBrowserOverviewBothReplicasHealthy(t *testing.T) {
	r := newRig(t, operatorPassword, webuitest.Laptop)
	b := r.b
	b.Login(r.app.URL, operatorPassword)
	b.Wait("overview", `document.querySelector('main[data-page="overview"]')`, short)
	b.WaitText(replicaSel("a", `[data-testid="role"]`), "primary", short)
	b.WaitText(replicaSel("b", `[data-testid="role"]`), "backup", short)
	b.WaitText(replicaSel("a", `[data-testid="health"]`), "healthy", short)
	b.WaitText(replicaSel("b", `[data-testid="health"]`), "healthy", short)
	b.WaitText(`[data-testid="redundancy"]`, "Intact", short)
	b.WaitText(`[data-testid="serving"]`, "a", short)
	b.WaitText(`[data-testid="no-alarms"]`, "No alarms", short)
	// The charts fill with samples.
	b.Wait("chart canvases", `document.querySelectorAll('.chart canvas').length === 2`, short)
	time.Sleep(4500 * time.Millisecond)
	b.Screenshot("overview-light")

	b.DarkMode(true)
	b.Wait("dark theme", `document.documentElement.dataset.theme === "dark"`, short)
	var bg string
	b.Eval(`getComputedStyle(document.body).backgroundColor`, &bg)
	if bg == "rgb(246, 247, 249)" {
		t.Errorf("dark mode: background still %s", bg)
	}
	time.Sleep(300 * time.Millisecond)
	b.Screenshot("overview-dark")
}

func TestBrowserPhoneLayout(t *testing.T) {
	r := newRig(t, operatorPassword, webuitest.Phone)
	b := r.b
	b.Login(r.app.URL, operatorPassword)
	b.WaitText(replicaSel("b", `[data-testid="role"]`), "backup", short)
	time.Sleep(2500 * time.Millisecond)
	// Nothing wider than the screen but the tables' own scrolling boxes.
	var overflow int
	b.Eval(`document.documentElement.scrollWidth - window.innerWidth`, &overflow)
	if overflow > 0 {
		t.Errorf("the page is %d px wider than the phone's screen", overflow)
	}
	b.Screenshot("phone-overview")
	b.Click(`nav a[href="#/events"]`)
	b.Wait("events page", `document.querySelector('main[data-page="events"]')`, short)
	b.Eval(`document.documentElement.scrollWidth - window.innerWidth`, &overflow)
	if overflow > 0 {
		t.Errorf("events page: %d px wider than the screen", overflow)
	}
	b.Screenshot("phone-events")
}

func TestBrowserLiveFailover(t *testing.T) {
	r := newRig(t, operatorPassword, webuitest.Laptop)
	b := r.b
	b.Login(r.app.URL, operatorPassword)
	b.WaitText(replicaSel("a", `[data-testid="role"]`), "primary", short)
	b.Wait("event stream", `document.querySelector('[data-testid="conn-state"].live')`, short)
	// Mark the document: a reload would lose the mark.
	b.Eval(`window.__noReload = true`, nil)

	start := time.Now()
	r.dp.fail("a", "probe timeout")
	b.WaitText(replicaSel("b", `[data-testid="role"]`), "primary", 10*time.Second)
	b.WaitText(replicaSel("a", `[data-testid="health"]`), "down", 10*time.Second)
	b.WaitText(`[data-testid="failovers"]`, "a → b", 10*time.Second)
	b.WaitText(`[data-testid="redundancy"]`, "Degraded", 10*time.Second)
	b.WaitText(`[data-alarm="redundancy"]`, "only b is healthy", 10*time.Second)
	t.Logf("failover visible after %v", time.Since(start).Round(time.Millisecond))
	var kept bool
	b.Eval(`window.__noReload === true`, &kept)
	if !kept {
		t.Error("the page reloaded")
	}
	// 60 connections moved, detection estimated from the health settings
	// (3 × 20 ms) since this fake measures nothing.
	b.WaitText(`[data-testid="failovers"] tbody tr`, "60", short)
	b.WaitText(`[data-testid="failovers"] tbody tr`, "≈ 60 ms", short)
	b.Screenshot("failover-overview")

	b.Click(`nav a[href="#/events"]`)
	b.WaitText(`[data-testid="timeline"]`, "Failover a → b", short)
	b.WaitText(`[data-testid="timeline"]`, "Replica a is down (probe timeout)", short)
	// The 60 failovers are one row, which opens to list them.
	b.WaitText(`[data-testid="timeline"] > li[data-kind="failover"]`, "60 × Failover a → b (replica-down)", short)
	b.Click(`[data-testid="timeline"] > li[data-kind="failover"] summary`)
	b.Wait("the list", `document.querySelectorAll('[data-testid="timeline"] > li[data-kind="failover"] .ev-group li').length === 60`, short)
	// Live on this page too: a recovery appears at the top.
	r.dp.recover("a")
	b.WaitText(`[data-testid="timeline"] > li:first-child`, "Replica a is up", 10*time.Second)
	b.Screenshot("failover-events")
}

func TestBrowserReplicaActions(t *testing.T) {
	r := newRig(t, operatorPassword, webuitest.Laptop)
	b := r.b
	b.Login(r.app.URL, operatorPassword)
	b.WaitText(replicaSel("b", `[data-testid="role"]`), "backup", short)

	// Drain b, cancelling first: nothing happens.
	b.Click(replicaSel("b", `button[data-action="drain"]`))
	b.Wait("confirmation", `document.querySelector('dialog.confirm[open]')`, short)
	b.WaitText(`dialog.confirm`, "keeps its", short)
	b.Screenshot("drain-confirm")
	b.Click(`dialog.confirm .btn:not(.primary)`)
	b.Wait("dialog closed", `!document.querySelector('dialog.confirm[open]')`, short)
	if admin := r.admin(t, "b"); admin != "enabled" {
		t.Fatalf("after cancel: admin %q", admin)
	}
	b.Click(replicaSel("b", `button[data-action="drain"]`))
	b.Click(`[data-testid="confirm-ok"]`)
	b.WaitText(replicaSel("b", `[data-testid="admin"]`), "drained", short)
	if admin := r.admin(t, "b"); admin != "drained" {
		t.Fatalf("after drain: admin %q", admin)
	}
	b.WaitText(`[data-alarm="admin-b"]`, "drained", short)
	b.Screenshot("drained")

	// Enable again, then promote b: it becomes the primary.
	b.Click(replicaSel("b", `button[data-action="enable"]`))
	b.Click(`[data-testid="confirm-ok"]`)
	b.Wait("b enabled", fmt.Sprintf(`!document.querySelector(%q)`, replicaSel("b", `[data-testid="admin"]`)), short)
	b.Click(replicaSel("b", `button[data-action="promote"]`))
	b.Click(`[data-testid="confirm-ok"]`)
	b.WaitText(replicaSel("b", `[data-testid="role"]`), "primary", short)
	b.WaitText(replicaSel("a", `[data-testid="role"]`), "backup", short)

	// Disable a with the keyboard only: focus the button, Enter, Enter.
	b.Eval(fmt.Sprintf(`document.querySelector(%q).focus()`, replicaSel("a", `button[data-action="disable"]`)), nil)
	b.Type(replicaSel("a", `button[data-action="disable"]`), "\r")
	b.Wait("confirmation", `document.querySelector('dialog.confirm[open]')`, short)
	b.Eval(`document.querySelector('[data-testid="confirm-ok"]').focus()`, nil)
	b.Type(`[data-testid="confirm-ok"]`, "\r")
	b.WaitText(replicaSel("a", `[data-testid="admin"]`), "disabled", short)
	b.WaitText(`[data-testid="redundancy"]`, "Degraded", short)

	// The operator's actions are in the event log.
	b.Click(`nav a[href="#/events"]`)
	b.WaitText(`[data-testid="timeline"]`, "admin ran drain on replica b", short)
	b.WaitText(`[data-testid="timeline"]`, "admin ran promote on replica b", short)
}

// admin returns a replica's admin state through the API.
func (r *rig) admin(t *testing.T, name string) string {
	t.Helper()
	var rep struct {
		Admin string `json:"admin"`
	}
	apiGet(t, r.app, "/api/v1/replicas/"+name, &rep)
	return rep.Admin
}

func TestBrowserInvalidConfigShowsFieldError(t *testing.T) {
	r := newRig(t, operatorPassword, webuitest.Laptop)
	b := r.b
	b.Login(r.app.URL, operatorPassword)
	b.Click(`nav a[href="#/config"]`)
	b.Wait("config form", `document.querySelector('[data-testid="config-form"] [data-field="uplink"]')`, short)

	// A duplicate port: the API names services[0].ports[1], shown at the
	// ports input.
	b.SetInput(`[data-field="services[0].ports"]`, "7000, 7000")
	b.Click(`[data-testid="review"]`)
	b.WaitText(`#f-services-0-ports-err`, "duplicate port 7000", short)
	var invalid, focused string
	b.Eval(`document.querySelector('[data-field="services[0].ports"]').getAttribute('aria-invalid')`, &invalid)
	b.Eval(`document.activeElement.dataset.field`, &focused)
	if invalid != "true" || focused != "services[0].ports" {
		t.Errorf("aria-invalid %q, focus on %q", invalid, focused)
	}
	var review bool
	if b.Eval(`!!document.querySelector('[data-testid="review-panel"]')`, &review); review {
		t.Error("an invalid document reached the review")
	}
	b.Screenshot("config-invalid-ports")

	// Fixing it clears the error; a probe interval out of range is next.
	b.SetInput(`[data-field="services[0].ports"]`, "7000, 80")
	b.Wait("error cleared", `!document.querySelector('#f-services-0-ports-err')`, short)
	b.SetInput(`[data-field="health.interval"]`, "20s")
	b.Click(`[data-testid="review"]`)
	b.WaitText(`#f-health-interval-err`, "outside the allowed range", short)
	b.SetInput(`[data-field="health.interval"]`, "20ms")
	// A replica without an interface.
	b.Click(`fieldset:nth-of-type(2) > button`)
	b.SetInput(`[data-field="replicas[2].name"]`, "c")
	b.Click(`[data-testid="review"]`)
	b.Wait("interface error", `document.querySelector('#f-replicas-2-interface-err')`, short)
	b.Screenshot("config-invalid-replica")
	if v := r.app.Config.Current().Version; v != 1 {
		t.Errorf("an invalid document was applied: version %d", v)
	}
}

func TestBrowserSafeApplyAndConfirm(t *testing.T) {
	r := newRig(t, operatorPassword, webuitest.Laptop)
	b := r.b
	b.Login(r.app.URL, operatorPassword)
	b.Click(`nav a[href="#/config"]`)
	b.Wait("config form", `document.querySelector('[data-field="health.interval"]')`, short)
	b.SetInput(`[data-field="health.interval"]`, "50ms")
	b.SetInput(`[data-field="health.rise_after"]`, "8")
	b.Click(`[data-testid="review"]`)
	b.WaitText(`[data-testid="config-diff"]`, "health.interval", short)
	b.WaitText(`[data-testid="config-diff"]`, `"50ms"`, short)
	b.WaitText(`[data-testid="config-diff"]`, "health.rise_after", short)
	b.WaitText(`[data-testid="review-panel"]`, "restart the dataplane", short)
	b.Screenshot("config-diff")
	b.SetInput(`[data-testid="confirm-timeout"]`, "120s")
	b.Click(`[data-testid="apply"]`)

	// The banner counts down on every page.
	b.WaitText(`[data-testid="pending-banner"]`, "version 2", short)
	b.Wait("countdown", `(() => { const n = parseInt(document.querySelector('[data-testid="countdown"]').textContent); return n > 100 && n <= 120; })()`, short)
	p := r.app.Config.Pending()
	if p == nil || p.Version != 2 {
		t.Fatalf("pending %+v", p)
	}
	b.Click(`nav a[href="#/overview"]`)
	b.WaitText(`[data-testid="pending-banner"]`, "rolls back to version 1", short)
	b.WaitText(`[data-alarm="pending"]`, "awaits confirmation", short)
	var first, second int
	b.Eval(`parseInt(document.querySelector('[data-testid="countdown"]').textContent)`, &first)
	time.Sleep(2100 * time.Millisecond)
	b.Eval(`parseInt(document.querySelector('[data-testid="countdown"]').textContent)`, &second)
	if second >= first || second < first-3 {
		t.Errorf("countdown does not count: %d then %d", first, second)
	}
	b.Screenshot("config-pending")
	b.Click(`[data-testid="confirm-config"]`)
	b.Wait("banner gone", `!document.querySelector('[data-testid="pending-banner"]')`, short)
	if p := r.app.Config.Pending(); p != nil {
		t.Fatalf("still pending after confirm: %+v", p)
	}
	cur := r.app.Config.Current()
	if cur.Version != 2 || cur.Config.Health.Interval != config.Duration(50*time.Millisecond) || cur.Config.Health.RiseAfter != 8 {
		t.Fatalf("current %d %+v", cur.Version, cur.Config.Health)
	}
	b.Click(`nav a[href="#/config"]`)
	b.WaitText(`[data-testid="config-history"]`, "current", short)
	b.WaitText(`main`, "Running version 2", short)
	b.Screenshot("config-confirmed")
}

func TestBrowserSafeApplyRollsBack(t *testing.T) {
	r := newRig(t, operatorPassword, webuitest.Laptop)
	b := r.b
	b.Login(r.app.URL, operatorPassword)
	b.Click(`nav a[href="#/config"]`)
	b.Wait("config form", `document.querySelector('[data-field="health.fail_after"]')`, short)
	b.SetInput(`[data-field="health.fail_after"]`, "5")
	b.Click(`[data-testid="review"]`)
	b.WaitText(`[data-testid="config-diff"]`, "health.fail_after", short)
	b.SetInput(`[data-testid="confirm-timeout"]`, "30s")
	b.Click(`[data-testid="apply"]`)
	b.WaitText(`[data-testid="pending-banner"]`, "version 2", short)
	// Roll back at once from the banner.
	b.Click(`[data-testid="pending-banner"] .btn:not(.primary)`)
	b.Click(`[data-testid="confirm-ok"]`)
	b.Wait("banner gone", `!document.querySelector('[data-testid="pending-banner"]')`, short)
	cur := r.app.Config.Current()
	if cur.Version != 3 || cur.Config.Health.FailAfter != 3 {
		t.Fatalf("after rollback: version %d fail_after %d", cur.Version, cur.Config.Health.FailAfter)
	}
	b.WaitText(`main`, "Running version 3", short)
	b.Screenshot("config-rolled-back")
}

func TestBrowserConnections(t *testing.T) {
	r := newRig(t, operatorPassword, webuitest.Laptop)
	b := r.b
	b.Login(r.app.URL, operatorPassword)
	b.Click(`nav a[href="#/connections"]`)
	b.WaitText(`[data-testid="conn-count"]`, "1–25 of 60", short)
	b.Click(`.pager .btn:last-child`)
	b.WaitText(`[data-testid="conn-count"]`, "26–50 of 60", short)
	// Search by service port and diverged flag.
	b.SetInput(`input[name="service"]`, "198.18.0.10:80")
	b.Click(`form.filters button[type="submit"]`)
	b.WaitText(`[data-testid="conn-count"]`, "1–15 of 15", short)
	b.SetInput(`input[name="service"]`, "")
	b.Click(`input[name="diverged"]`)
	b.Click(`form.filters button[type="submit"]`)
	b.WaitText(`[data-testid="conn-count"]`, "1–1 of 1", short)
	b.Click(`[data-testid="conn-table"] tbody button.link`)
	b.WaitText(`[data-testid="conn-detail"]`, "198.18.0.2:40007", short)
	b.WaitText(`[data-testid="conn-detail"]`, "yes", short)
	b.WaitText(`[data-testid="conn-primary"]`, "a", short)
	b.Screenshot("connection-detail")
	// The detail follows a failover.
	r.dp.fail("a", "carrier lost")
	b.WaitText(`[data-testid="conn-primary"]`, "b", short)
}

func TestBrowserEventsFilterAndExport(t *testing.T) {
	r := newRig(t, operatorPassword, webuitest.Laptop)
	b := r.b
	r.dp.fail("a", "carrier lost")
	r.dp.recover("a")
	b.Login(r.app.URL, operatorPassword)
	b.Click(`nav a[href="#/events"]`)
	b.WaitText(`[data-testid="timeline"]`, "Failover a → b", short)
	b.SetInput(`select[name="kind"]`, "replica-up")
	b.Wait("only replica-up", `(() => { const k = [...document.querySelectorAll('[data-testid="timeline"] > li')].map(li => li.dataset.kind); return k.length === 1 && k[0] === "replica-up"; })()`, short)
	b.SetInput(`select[name="kind"]`, "")
	b.SetInput(`select[name="category"]`, "auth")
	b.WaitText(`[data-testid="timeline"]`, "admin logged in", short)
	b.Wait("auth only", `[...document.querySelectorAll('[data-testid="timeline"] > li')].every(li => li.classList.contains('auth'))`, short)
	b.SetInput(`select[name="category"]`, "")
	b.SetInput(`select[name="replica"]`, "b")
	b.Wait("replica b only", `(() => { const t = document.querySelector('[data-testid="timeline"]').textContent; return t.includes('Failover a → b') && !t.includes('Replica a is up'); })()`, short)
	b.Screenshot("events-filtered")

	// Export: capture what the download would save.
	b.Eval(`(() => { window.__dl = []; const orig = URL.createObjectURL; URL.createObjectURL = (blob) => { window.__dl.push(blob); return orig(blob); }; })()`, nil)
	b.Click(`[data-testid="export-csv"]`)
	b.Click(`[data-testid="export-json"]`)
	var csv, js string
	b.Eval(`window.__dl[0].text()`, &csv)
	b.Eval(`window.__dl[1].text()`, &js)
	if !strings.HasPrefix(csv, "seq,time,kind,category,replica,from,conn") || !strings.Contains(csv, ",failover,failover,b,a,") {
		t.Errorf("CSV export:\n%.400s", csv)
	}
	if !strings.HasPrefix(strings.TrimSpace(js), "[") || !strings.Contains(js, `"kind": "failover"`) || strings.Contains(js, `"replica-up"`) {
		t.Errorf("JSON export:\n%.400s", js)
	}
}

func TestBrowserSystemPage(t *testing.T) {
	r := newRig(t, operatorPassword, webuitest.Laptop)
	b := r.b
	b.Login(r.app.URL, operatorPassword)
	b.Click(`nav a[href="#/system"]`)
	b.WaitText(`[data-testid="version"]`, "1.2.3-test", short)
	b.WaitText(`main`, "Up for", short)
	b.WaitText(`main`, "(self-signed)", short)
	b.WaitText(`[data-testid="tokens"]`, "No tokens", short)
	b.Type(`input[placeholder="ci"]`, "ci-runner")
	b.Click(`form.row button[type="submit"]`)
	b.WaitText(`[data-testid="new-token"]`, "ftb_", short)
	var secret string
	b.Eval(`document.querySelector('[data-testid="new-token"] code').textContent`, &secret)
	if _, ok := r.app.Auth.CheckToken(secret); !ok {
		t.Fatalf("the token shown (%q) does not work", secret)
	}
	b.WaitText(`[data-testid="tokens"]`, "ci-runner", short)
	b.Screenshot("system")
	b.Click(`[data-testid="tokens"] button`)
	b.Click(`[data-testid="confirm-ok"]`)
	b.WaitText(`[data-testid="tokens"]`, "No tokens", short)
	if _, ok := r.app.Auth.CheckToken(secret); ok {
		t.Fatal("the revoked token still works")
	}
	// Factory reset needs the word typed.
	b.Click(`.danger-zone .btn:last-child`)
	b.Wait("typed confirmation", `document.querySelector('[data-testid="confirm-ok"]').disabled`, short)
	b.Type(`[data-testid="typed-confirm"]`, "factory-rese")
	var disabled bool
	b.Eval(`document.querySelector('[data-testid="confirm-ok"]').disabled`, &disabled)
	if !disabled {
		t.Error("factory reset enabled before the word was typed in full")
	}
	b.Screenshot("factory-reset-confirm")
	b.Click(`dialog.confirm .btn:not(.danger)`)
}

// apiGet reads an API route with Basic authentication.
func apiGet(t *testing.T, app *webuitest.Appliance, path string, out any) {
	t.Helper()
	req, _ := http.NewRequest("GET", app.URL+path, nil)
	req.SetBasicAuth("admin", app.Password)
	res, err := app.Server.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("GET %s: %s", path, res.Status)
	}
	if err := decodeJSON(res, out); err != nil {
		t.Fatal(err)
	}
}

// TestBrowserKeyboardAndNames walks the overview with the Tab key and
// checks that every control on each page has an accessible name.
func TestBrowserKeyboardAndNames(t *testing.T) {
	r := newRig(t, operatorPassword, webuitest.Laptop)
	b := r.b
	b.Login(r.app.URL, operatorPassword)
	b.WaitText(replicaSel("b", `[data-testid="role"]`), "backup", short)
	stops := b.TabStops(16)
	t.Logf("tab stops: %q", stops)
	if len(stops) == 0 || !strings.Contains(stops[0], "Skip to content") {
		t.Errorf("the first tab stop is %q, want the skip link", stops)
	}
	joined := strings.Join(stops, "|")
	for _, want := range []string{"A Events", "A Configuration", "SELECT Theme", "BUTTON Log out", "BUTTON Drain", "BUTTON Promote"} {
		if !strings.Contains(joined, want) {
			t.Errorf("no tab stop %q in %q", want, stops)
		}
	}
	for _, page := range []string{"overview", "connections", "events", "config", "system"} {
		b.Click(fmt.Sprintf(`nav a[href="#/%s"]`, page))
		b.Wait(page, fmt.Sprintf(`document.querySelector('main[data-page=%q]')`, page), short)
		time.Sleep(700 * time.Millisecond)
		if bad := b.UnnamedControls(); len(bad) > 0 {
			t.Errorf("%s: controls without a name:\n\t%s", page, strings.Join(bad, "\n\t"))
		}
		b.Screenshot("page-" + page)
	}
}
