package webuitest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// FindChromium returns the browser binary: $FTB_CHROMIUM, else chromium,
// chromium-browser or google-chrome on PATH; "" when there is none.
func FindChromium() string {
	if p := os.Getenv("FTB_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Browser is one headless Chromium tab.
type Browser struct {
	t   testing.TB
	ctx context.Context

	mu       sync.Mutex
	problems []string // uncaught exceptions, console errors, CSP refusals
}

// Phone and Laptop are viewport sizes for NewBrowser.
var (
	Laptop = [2]int{1280, 860}
	Phone  = [2]int{390, 844}
)

// NewBrowser starts headless Chromium with a fresh profile and opens a tab
// of the given viewport size. It skips the test when there is no
// Chromium. The browser stops when the test ends.
func NewBrowser(t testing.TB, size [2]int) *Browser {
	t.Helper()
	path := FindChromium()
	if path == "" {
		t.Skip("needs Chromium for browser tests (Debian: apt-get install chromium; or set FTB_CHROMIUM)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(size[0], size[1]),
		// The test server's certificate is self-signed, as the
		// appliance's is on first start.
		chromedp.Flag("ignore-certificate-errors", true),
		// Keep Chromium off the network: the defaults already turn off
		// background networking and sync.
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("lang", "en-US"),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	b := &Browser{t: t, ctx: ctx}
	t.Cleanup(func() {
		cancel()
		acancel()
	})
	// Start the browser now, so that a broken install fails here.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(int64(size[0]), int64(size[1]))); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			b.console(m)
		}
	}()
	return b
}

// console records what a test must not see: exceptions, console.error,
// and browser errors other than failed requests (an API answering 401 or
// 404 is a normal part of the dashboard's life; a CSP refusal is not).
func (b *Browser) console(m chromedp.ConsoleMessage) {
	if m.Type != chromedp.ConsoleException && m.Type != chromedp.ConsoleError {
		return
	}
	text := m.String()
	if strings.Contains(text, "Failed to load resource") {
		return
	}
	b.mu.Lock()
	b.problems = append(b.problems, fmt.Sprintf("%s %s:%d: %s", m.Type, m.URL, m.Line+1, text))
	b.mu.Unlock()
}

// Problems returns the errors the page reported so far.
func (b *Browser) Problems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.problems...)
}

// CheckProblems fails the test if the page reported errors.
func (b *Browser) CheckProblems() {
	b.t.Helper()
	if p := b.Problems(); len(p) > 0 {
		b.t.Errorf("the page reported errors:\n\t%s", strings.Join(p, "\n\t"))
	}
}

// Ctx is the tab's chromedp context, for actions the helpers lack.
func (b *Browser) Ctx() context.Context { return b.ctx }

// Do runs actions, failing the test on error.
func (b *Browser) Do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// Eval evaluates a JavaScript expression and decodes its JSON value into
// out (which may be nil).
func (b *Browser) Eval(expr string, out any) {
	b.t.Helper()
	if err := b.eval(expr, out); err != nil {
		b.t.Fatalf("evaluating %s: %v", expr, err)
	}
}

func (b *Browser) eval(expr string, out any) error {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(raw, out)
}

// Wait polls a JavaScript expression until it is true, or fails the test
// after timeout with what describe (another expression) says then.
func (b *Browser) Wait(what, expr string, timeout time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for {
		var ok bool
		err := b.eval(fmt.Sprintf("Boolean(%s)", expr), &ok)
		if err == nil && ok {
			return
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			var body string
			b.eval(`document.querySelector("main") ? document.querySelector("main").innerText.slice(0, 2000) : document.body.innerText.slice(0, 2000)`, &body)
			shot := b.Screenshot("failed-" + sanitize(b.t.Name()))
			b.t.Fatalf("waited %v for %s (%s); last error %v; screenshot %s; page text:\n%s", timeout, what, expr, last, shot, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitText waits until the element that sel selects contains text.
func (b *Browser) WaitText(sel, text string, timeout time.Duration) {
	b.t.Helper()
	b.Wait(fmt.Sprintf("%q in %s", text, sel), fmt.Sprintf("(document.querySelector(%s)?.textContent || '').includes(%s)", jsString(sel), jsString(text)), timeout)
}

// Click clicks the element that sel selects (a CSS selector), with the
// mouse, as a person would.
func (b *Browser) Click(sel string) {
	b.t.Helper()
	b.Do(chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
}

// Type types text into the element that sel selects, key by key.
func (b *Browser) Type(sel, text string) {
	b.t.Helper()
	b.Do(chromedp.SendKeys(chromedp.CSS(sel), text, chromedp.NodeVisible))
}

// SetInput replaces an input's value and fires the input event the page
// listens to (typing would append to what is there).
func (b *Browser) SetInput(sel, value string) {
	b.t.Helper()
	b.Eval(fmt.Sprintf(`(() => {
		const el = document.querySelector(%s);
		if (!el) throw new Error("no element " + %s);
		el.focus();
		const proto = el instanceof HTMLSelectElement ? HTMLSelectElement.prototype : el instanceof HTMLTextAreaElement ? HTMLTextAreaElement.prototype : HTMLInputElement.prototype;
		Object.getOwnPropertyDescriptor(proto, "value").set.call(el, %s);
		el.dispatchEvent(new Event(el instanceof HTMLSelectElement ? "change" : "input", { bubbles: true }));
		return true;
	})()`, jsString(sel), jsString(sel), jsString(value)), nil)
}

// Navigate opens a URL and waits for the dashboard's root element.
func (b *Browser) Navigate(url string) {
	b.t.Helper()
	b.Do(chromedp.Navigate(url))
	b.Wait("the app's root", `document.getElementById("app")`, 10*time.Second)
}

// Login opens the dashboard, logs in with the password and waits for the
// logged-in page (or the forced password change).
func (b *Browser) Login(url, password string) {
	b.t.Helper()
	b.Navigate(url)
	b.Wait("the login form", `document.querySelector('[data-testid="login-form"]')`, 10*time.Second)
	b.Type(`input[name="password"]`, password)
	b.Click(`[data-testid="login-form"] button[type="submit"]`)
	b.Wait("the page after login", `document.querySelector('main[data-page]') || document.querySelector('[data-testid="password-form"]')`, 10*time.Second)
}

// DarkMode makes the page see prefers-color-scheme: dark (or light).
func (b *Browser) DarkMode(dark bool) {
	b.t.Helper()
	v := "light"
	if dark {
		v = "dark"
	}
	b.Do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: v}},
		})
		return err
	}))
}

// Screenshot saves a PNG of the whole page as artifacts/webui/NAME.png and
// returns its path ("" if it could not be saved, which is only logged:
// screenshots are evidence, not the test).
func (b *Browser) Screenshot(name string) string {
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	// From the top, where the sticky bar is in a full-page capture.
	b.eval(`(window.scrollTo(0, 0), true)`, nil)
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	dir := ArtifactsDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	path := filepath.Join(dir, sanitize(name)+".png")
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	b.t.Logf("screenshot: %s", path)
	return path
}

// ArtifactsDir is $FTB_ARTIFACTS, else artifacts/webui at the root of the
// repository (found from the working directory by its go.mod).
func ArtifactsDir() string {
	if d := os.Getenv("FTB_ARTIFACTS"); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		return filepath.Join(os.TempDir(), "ftbridge-artifacts", "webui")
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, "artifacts", "webui")
		}
		if filepath.Dir(d) == d {
			return filepath.Join(dir, "artifacts", "webui")
		}
	}
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, s)
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// UnnamedControls lists the visible controls (links, buttons, inputs,
// selects) that have no accessible name: a screen reader would announce
// them as "button" and nothing more.
func (b *Browser) UnnamedControls() []string {
	b.t.Helper()
	var out []string
	b.Eval(`[...document.querySelectorAll('a[href], button, input, select, textarea, summary')]
		.filter(el => el.getClientRects().length > 0 && el.type !== 'hidden')
		.filter(el => !((el.getAttribute('aria-label') || (el.labels && el.labels[0] && el.labels[0].textContent) || el.textContent || el.title || '').trim()))
		.map(el => el.outerHTML.slice(0, 160))`, &out)
	return out
}

// TabStops presses Tab n times from the top of the page and returns what
// had the focus each time: its accessible text, cut short.
func (b *Browser) TabStops(n int) []string {
	b.t.Helper()
	b.Eval(`(document.activeElement && document.activeElement.blur(), window.scrollTo(0, 0), true)`, nil)
	var out []string
	for i := 0; i < n; i++ {
		b.Do(chromedp.KeyEvent("\t"))
		var s string
		b.Eval(`(() => { const el = document.activeElement; if (!el || el === document.body) return ""; return (el.tagName + " " + (el.getAttribute("aria-label") || el.textContent || el.value || "")).trim().replace(/\s+/g, " ").slice(0, 60); })()`, &s)
		out = append(out, s)
	}
	return out
}
