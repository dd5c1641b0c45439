package update

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func slotStates(st Status) string {
	var parts []string
	for _, s := range st.Slots {
		p := string(s.Slot) + ":" + s.State
		if s.Version != "" {
			p += ":" + s.Version
		}
		if s.TriesLeft != nil {
			p += ":tries" + string(rune('0'+*s.TriesLeft))
		}
		if s.Booted {
			p += ":booted"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, " ")
}

// TestStatusThroughAnUpdate follows Status through install, trial, commit
// and a failed trial, with the simulated boot loader of the backend tests.
func TestStatusThroughAnUpdate(t *testing.T) {
	sys, fs, cmdline := newSys(t, SlotA)
	if _, err := sys.Status(); err == nil {
		t.Fatal("Status without an ESP succeeded")
	}
	k, i, _ := fs.mountAndFind(t, SlotA)
	if _, err := sys.ESP.InstallSlot(SlotA, k, i, "v1", false); err != nil {
		t.Fatal(err)
	}
	bootOnce(t, sys, cmdline)
	step := func(what string, booted, next Slot, trial bool, want string) {
		t.Helper()
		st, err := sys.Status()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if st.Booted != booted || st.Next != next || st.Trial != trial || slotStates(st) != want {
			t.Fatalf("%s: got booted %s next %s trial %v %q; want %s %s %v %q", what, st.Booted, st.Next, st.Trial, slotStates(st), booted, next, trial, want)
		}
	}
	step("fresh image", SlotA, SlotA, false, "A:committed:v1:booted B:empty")

	backend(t, sys, "set-state", "B", "bad")
	backend(t, sys, "set-primary", "B")
	step("installed into B", SlotA, SlotB, false, "A:committed:v1:booted B:pending:v2:tries1")

	bootOnce(t, sys, cmdline)
	// The trial used B's last try: a reboot before the commit goes back
	// to A, and Status says so.
	step("trial boot of B", SlotB, SlotA, true, "A:committed:v1 B:trial:v2:tries0:booted")

	backend(t, sys, "set-state", "B", "good")
	step("B committed", SlotB, SlotB, false, "A:committed:v1 B:committed:v2:booted")

	fs.build[SlotA] = "v3"
	backend(t, sys, "set-state", "A", "bad")
	step("A being written", SlotB, SlotB, false, "A:bad:v1:tries0 B:committed:v2:booted")
	backend(t, sys, "set-primary", "A")
	bootOnce(t, sys, cmdline)
	bootOnce(t, sys, cmdline) // the trial failed: back on B
	step("failed trial of A", SlotB, SlotB, false, "A:bad:v3:tries0 B:committed:v2:booted")
}

func TestEntryVersion(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"ok":       "title ftbridge 8b63878-dirty (slot B)\nversion 0002\n",
		"other":    "title Debian\n",
		"no title": "linux /x\n",
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		os.WriteFile(p, []byte(body), 0o644)
		want := map[string]string{"ok": "8b63878-dirty"}[name]
		if got := entryVersion(p); got != want {
			t.Errorf("%s: version %q, want %q", name, got, want)
		}
	}
	if got := entryVersion(filepath.Join(dir, "missing")); got != "" {
		t.Errorf("missing file: %q", got)
	}
}

// fakeRauc writes a script standing in for the rauc command line.
func fakeRauc(t *testing.T, script string) *Rauc {
	t.Helper()
	p := filepath.Join(t.TempDir(), "rauc")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	return &Rauc{Command: p}
}

func TestRaucInstall(t *testing.T) {
	// What rauc 1.8 prints for a good install through the service.
	ok := fakeRauc(t, `[ "$1" = install ] || exit 9
echo installing
echo "  0% Installing"
echo " 20% Checking bundle done."
echo " 80% Copying image to rootfs.1 done."
echo "100% Installing done."
echo idle
echo "Installing $2 succeeded"
`)
	var got []string
	err := ok.Install(context.Background(), "/data/b.raucb", func(p int, s string) {
		got = append(got, strings.TrimSpace(string(rune('0'+p/20)))+" "+s)
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "0 Installing|1 Checking bundle done.|4 Copying image to rootfs.1 done.|5 Installing done."
	if strings.Join(got, "|") != want {
		t.Fatalf("progress %q, want %q", strings.Join(got, "|"), want)
	}

	bad := fakeRauc(t, `echo installing
echo "  0% Installing"
echo " 40% Checking bundle failed."
echo "LastError: Failed to check bundle signature: signature verification failed: certificate verify failed" >&2
echo "Installing $2 failed" >&2
exit 1
`)
	err = bad.Install(context.Background(), "/data/b.raucb", nil)
	if err == nil || !strings.Contains(err.Error(), "signature verification failed") {
		t.Fatalf("bad signature: err %v", err)
	}

	quiet := fakeRauc(t, "echo 'rauc: some other failure' >&2; exit 3\n")
	if err := quiet.Install(context.Background(), "/x", nil); err == nil || !strings.Contains(err.Error(), "some other failure") {
		t.Fatalf("no LastError: err %v", err)
	}
	if err := (&Rauc{Command: filepath.Join(t.TempDir(), "nope")}).Install(context.Background(), "/x", nil); err == nil || !strings.Contains(err.Error(), "starting rauc") {
		t.Fatalf("missing rauc: err %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := fakeRauc(t, "sleep 5\n").Install(ctx, "/x", nil); err == nil {
		t.Fatal("cancelled install succeeded")
	}
}
