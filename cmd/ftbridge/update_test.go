package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ftbridge/ftbridge/firmware/api"
	"github.com/ftbridge/ftbridge/firmware/mgmt"
	"github.com/ftbridge/ftbridge/firmware/update"
)

// fakeUpdater plays RAUC for the CLI: it checks the bundle arrived whole
// and makes slot B the next boot.
type fakeUpdater struct {
	mu      sync.Mutex
	want    [32]byte
	err     error
	st      update.Status
	reboots int
}

func (f *fakeUpdater) Install(ctx context.Context, bundle string, progress func(int, string)) error {
	data, err := os.ReadFile(bundle)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	if sha256.Sum256(data) != f.want {
		return errors.New("bundle corrupted in transit")
	}
	progress(20, "Checking bundle done.")
	time.Sleep(50 * time.Millisecond)
	progress(100, "Installing done.")
	f.st.Next = update.SlotB
	f.st.Slots[1] = update.SlotStatus{Slot: update.SlotB, Partition: "root-b", State: update.StatePending, Version: "v2", Generation: 2}
	return nil
}

func (f *fakeUpdater) Slots() (update.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.st
	st.Slots = append([]update.SlotStatus(nil), f.st.Slots...)
	return st, nil
}

func TestCLIUpdate(t *testing.T) {
	u := &fakeUpdater{st: update.Status{Booted: update.SlotA, Next: update.SlotA, Slots: []update.SlotStatus{
		{Slot: update.SlotA, Partition: "root-a", Booted: true, State: update.StateCommitted, Version: "v1", Generation: 1},
		{Slot: update.SlotB, Partition: "root-b", State: update.StateEmpty},
	}}}
	d := startDaemonWith(t, func(o *mgmt.Options) {
		o.Updater = u
		o.Reboot = func() error { u.mu.Lock(); u.reboots++; u.mu.Unlock(); return nil }
	})
	pollEvery = 20 * time.Millisecond

	out := d.ok("slots")
	if !regexpLine(out, "A", "committed", "v1", "yes", "yes", "root-a") || !regexpLine(out, "B", "empty", "-", "-", "-", "root-b") {
		t.Fatalf("slots before:\n%s", out)
	}
	if out := d.ok("update", "status"); !strings.Contains(out, "state: idle") {
		t.Fatalf("status before:\n%s", out)
	}

	bundle := filepath.Join(d.dir, "update.raucb")
	data := make([]byte, 5<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	os.WriteFile(bundle, data, 0o644)
	u.want = sha256.Sum256(data)
	code, out, errs := d.cli("update", "install", bundle, "--reboot")
	if code != 0 {
		t.Fatalf("install: exit %d\n%s%s", code, out, errs)
	}
	if !strings.Contains(out, "state: installed") || !strings.Contains(out, "installed into slot B") || !strings.Contains(errs, "rebooting into the new firmware") {
		t.Fatalf("install output:\n%s\n%s", out, errs)
	}
	if !strings.Contains(errs, "uploaded 5242880 bytes") {
		t.Errorf("no upload line:\n%s", errs)
	}
	time.Sleep(300 * time.Millisecond) // the API reboots just after answering
	u.mu.Lock()
	reboots := u.reboots
	u.mu.Unlock()
	if reboots != 1 {
		t.Fatalf("reboots %d", reboots)
	}
	out = d.ok("--json", "slots")
	var st update.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Next != "B" || st.Slots[1].State != "pending" {
		t.Fatalf("slots --json after: %v\n%s", err, out)
	}
	out = d.ok("update", "status", "--json")
	var us api.UpdateState
	if err := json.Unmarshal([]byte(out), &us); err != nil || us.State != "installed" || !us.RebootRequired {
		t.Fatalf("status --json after: %v\n%s", err, out)
	}

	// A bundle RAUC refuses: exit 1 with RAUC's reason, no reboot.
	u.mu.Lock()
	u.err = errors.New("rauc install failed: signature verification failed")
	u.mu.Unlock()
	code, out, errs = d.cli("update", "install", bundle, "--reboot")
	if code != 1 || !strings.Contains(out, "error: rauc install failed: signature verification failed") || !strings.Contains(errs, "not installed") {
		t.Fatalf("bad bundle: exit %d\n%s%s", code, out, errs)
	}
	u.mu.Lock()
	reboots = u.reboots
	u.mu.Unlock()
	if reboots != 1 {
		t.Fatalf("rebooted after a failed install (%d)", reboots)
	}

	// Usage errors and files that are no bundles.
	if code, _, _ := d.cli("update", "install"); code != 2 {
		t.Errorf("install without a file: %d", code)
	}
	if code, _, errs := d.cli("update", "install", filepath.Join(d.dir, "missing")); code != 1 || !strings.Contains(errs, "no such file") {
		t.Errorf("missing file: %d %s", code, errs)
	}
	empty := filepath.Join(d.dir, "empty")
	os.WriteFile(empty, nil, 0o644)
	if code, _, errs := d.cli("update", "install", empty); code != 1 || !strings.Contains(errs, "not a bundle") {
		t.Errorf("empty file: %d %s", code, errs)
	}
	if code, _, _ := d.cli("update", "frobnicate"); code != 2 {
		t.Errorf("unknown action: %d", code)
	}
}

// TestCLIUpdateUnavailable: without RAUC (a development machine) the
// commands say so instead of failing obscurely.
func TestCLIUpdateUnavailable(t *testing.T) {
	if _, err := os.Stat("/etc/rauc/system.conf"); err == nil {
		t.Skip("this machine has RAUC set up: the daemon would use it")
	}
	d := startDaemon(t)
	bundle := filepath.Join(d.dir, "b.raucb")
	os.WriteFile(bundle, []byte("bundle"), 0o644)
	if code, _, errs := d.cli("update", "install", bundle); code != 1 || !strings.Contains(errs, "unavailable") {
		t.Fatalf("install without RAUC: %d %s", code, errs)
	}
	if code, _, errs := d.cli("slots"); code != 1 || !strings.Contains(errs, "no RAUC") {
		t.Fatalf("slots without RAUC: %d %s", code, errs)
	}
}
