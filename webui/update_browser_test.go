package webui_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ftbridge/ftbridge/firmware/update"
	"github.com/ftbridge/ftbridge/webui/webuitest"
)

// fakeUpdater plays RAUC: the bundle must arrive whole; it then makes
// slot B the next boot, or fails with err.
type fakeUpdater struct {
	mu   sync.Mutex
	want [32]byte
	err  error
	st   update.Status
	gate chan struct{}
}

func (f *fakeUpdater) Install(ctx context.Context, bundle string, progress func(int, string)) error {
	data, err := os.ReadFile(bundle)
	if err != nil {
		return err
	}
	progress(40, "Checking bundle done.")
	select {
	case <-f.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	if sha256.Sum256(data) != f.want {
		return errors.New("bundle corrupted in transit")
	}
	f.st.Next = update.SlotB
	f.st.Slots[1] = update.SlotStatus{Slot: update.SlotB, Partition: "root-b", State: update.StatePending, Version: "1.3.0", Generation: 2}
	return nil
}

func (f *fakeUpdater) Slots() (update.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.st
	st.Slots = append([]update.SlotStatus(nil), f.st.Slots...)
	return st, nil
}

// TestBrowserFirmwareUpdate uploads a bundle from the system page, follows
// the install's progress, and reboots to the trial after confirming; a
// bundle the installer refuses shows its reason.
func TestBrowserFirmwareUpdate(t *testing.T) {
	if webuitest.FindChromium() == "" {
		t.Skip("needs Chromium for browser tests (Debian: apt-get install chromium; or set FTB_CHROMIUM)")
	}
	u := &fakeUpdater{gate: make(chan struct{}), st: update.Status{Booted: update.SlotA, Next: update.SlotA, Slots: []update.SlotStatus{
		{Slot: update.SlotA, Partition: "root-a", Booted: true, State: update.StateCommitted, Version: "1.2.3-test", Generation: 1},
		{Slot: update.SlotB, Partition: "root-b", State: update.StateEmpty},
	}}}
	var mu sync.Mutex
	reboots := 0
	dp := newFakeDP("a", "b")
	app := webuitest.Start(t, webuitest.Options{Dataplane: dp, Config: labDoc, Password: operatorPassword, Version: "1.2.3-test", Updater: u,
		Reboot: func() error { mu.Lock(); reboots++; mu.Unlock(); return nil }})
	dp.ev = app.Events
	b := webuitest.NewBrowser(t, webuitest.Laptop)
	t.Cleanup(b.CheckProblems)

	bundle := filepath.Join(t.TempDir(), "ftbridge-1.3.0.raucb")
	data := make([]byte, 3<<20)
	for i := range data {
		data[i] = byte(i*13 + i>>11)
	}
	os.WriteFile(bundle, data, 0o644)
	u.want = sha256.Sum256(data)

	b.Login(app.URL, operatorPassword)
	b.Click(`nav a[href="#/system"]`)
	b.WaitText(`[data-testid="slots"]`, "committed", short)
	b.WaitText(`[data-testid="slots"]`, "empty", short)
	b.Do(chromedp.SetUploadFiles(chromedp.CSS(`[data-testid="bundle-file"]`), []string{bundle}))
	b.Click(`[data-testid="update-form"] button[type="submit"]`)
	b.WaitText(`dialog.confirm`, "ftbridge-1.3.0.raucb", short)
	b.Click(`[data-testid="confirm-ok"]`)
	b.WaitText(`[data-testid="update-state"]`, "Installing: 40% (Checking bundle done.)", short)
	b.Screenshot("firmware-installing")
	close(u.gate)
	b.WaitText(`[data-testid="update-state"]`, "Installed into slot B", short)
	b.WaitText(`[data-testid="slots"]`, "installed, boots next on trial", short)
	b.WaitText(`[data-testid="slots"]`, "1.3.0", short)
	b.Screenshot("firmware-installed")
	// The reboot asks first; cancelling does nothing.
	b.Click(`[data-testid="reboot-trial"]`)
	b.WaitText(`dialog.confirm`, "on trial", short)
	b.Click(`dialog.confirm .btn:not(.danger)`)
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	if reboots != 0 {
		t.Fatalf("rebooted without confirmation (%d)", reboots)
	}
	mu.Unlock()
	b.Click(`[data-testid="reboot-trial"]`)
	b.Click(`[data-testid="confirm-ok"]`)
	b.WaitText(`main`, "Rebooting into the new firmware", short)
	// The API reboots just after its answer.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		mu.Lock()
		n := reboots
		mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reboots %d after confirming", n)
		}
	}

	// A bundle the installer refuses: its reason on the page.
	u.mu.Lock()
	u.err = errors.New("rauc install failed: signature verification failed")
	u.mu.Unlock()
	b.Navigate(app.URL + "/#/system")
	b.WaitText(`[data-testid="slots"]`, "committed", short)
	b.Do(chromedp.SetUploadFiles(chromedp.CSS(`[data-testid="bundle-file"]`), []string{bundle}))
	b.Click(`[data-testid="update-form"] button[type="submit"]`)
	b.Click(`[data-testid="confirm-ok"]`)
	b.WaitText(`[data-testid="update-state"]`, "signature verification failed", short)
	b.Screenshot("firmware-failed")
}
