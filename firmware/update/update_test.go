package update

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseEntryName(t *testing.T) {
	cases := []struct {
		name string
		ok   bool
		want Entry
	}{
		{"ftbridge-0001-A.conf", true, Entry{ID: "ftbridge-0001-A", Gen: 1, Slot: SlotA, TriesLeft: NoCounting}},
		{"ftbridge-0002-B+3.conf", true, Entry{ID: "ftbridge-0002-B", Gen: 2, Slot: SlotB, TriesLeft: 3}},
		{"ftbridge-0002-B+0-1.conf", true, Entry{ID: "ftbridge-0002-B", Gen: 2, Slot: SlotB, TriesLeft: 0, TriesDone: 1}},
		{"ftbridge-0010-A+2-1.conf", true, Entry{ID: "ftbridge-0010-A", Gen: 10, Slot: SlotA, TriesLeft: 2, TriesDone: 1}},
		{"ftbridge-0001-C.conf", false, Entry{}},
		{"ftbridge-1-A.conf", false, Entry{}},
		{"other-0001-A.conf", false, Entry{}},
		{"ftbridge-0001-A.conf.new", false, Entry{}},
	}
	for _, c := range cases {
		e, ok := ParseEntryName(c.name)
		c.want.File = c.name
		if ok != c.ok || (ok && e != c.want) {
			t.Errorf("ParseEntryName(%q) = %+v, %v; want %+v, %v", c.name, e, ok, c.want, c.ok)
		}
		if ok && fileName(e.ID, e.TriesLeft, e.TriesDone) != c.name {
			t.Errorf("fileName round trip of %q gives %q", c.name, fileName(e.ID, e.TriesLeft, e.TriesDone))
		}
	}
}

// fakeSlots builds a directory per slot holding a kernel and initramfs
// whose contents name the slot and a build, so tests can tell which was
// copied.
type fakeSlots struct {
	t     *testing.T
	root  string
	build map[Slot]string
	mnt   int
}

func (f *fakeSlots) mount(s Slot) (string, func() error, error) {
	dir := filepath.Join(f.root, "slot-"+string(s))
	os.RemoveAll(dir)
	for _, p := range []string{"boot", "etc"} {
		if err := os.MkdirAll(filepath.Join(dir, p), 0o755); err != nil {
			return "", nil, err
		}
	}
	b := f.build[s]
	files := map[string]string{
		"boot/vmlinuz-6.1.0-9-amd64":     "old kernel",
		"boot/vmlinuz-6.1.0-10-amd64":    "kernel " + string(s) + " " + b,
		"boot/initrd.img-6.1.0-10-amd64": "initrd " + string(s) + " " + b,
		"boot/initrd.img-6.1.0-9-amd64":  "old initrd",
		"etc/ftbridge-release":           b + "\n",
	}
	for p, c := range files {
		if err := os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644); err != nil {
			return "", nil, err
		}
	}
	f.mnt++
	return dir, func() error { f.mnt--; return nil }, nil
}

func newSys(t *testing.T, booted Slot) (*System, *fakeSlots, *string) {
	t.Helper()
	root := t.TempDir()
	fs := &fakeSlots{t: t, root: root, build: map[Slot]string{SlotA: "v1", SlotB: "v2"}}
	cmdline := "BOOT_IMAGE=/x root=PARTLABEL=root-a rauc.slot=" + string(booted) + " quiet"
	sys := &System{
		ESP:       &ESP{Dir: filepath.Join(root, "esp"), Cmdline: "console=ttyS0,115200n8", Tries: 1},
		Cmdline:   func() (string, error) { return cmdline, nil },
		MountSlot: fs.mount,
		EventLog:  filepath.Join(root, "data", "events", "update.jsonl"),
		Now:       func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) },
	}
	return sys, fs, &cmdline
}

func entryFiles(t *testing.T, p *ESP) []string {
	t.Helper()
	es, err := p.Entries()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.File)
	}
	return out
}

// bootOnce simulates systemd-boot choosing the default entry and counting
// the attempt, as the firmware does before starting the kernel. It returns
// the slot booted.
func bootOnce(t *testing.T, sys *System, cmdline *string) Slot {
	t.Helper()
	e, err := sys.ESP.Default()
	if err != nil {
		t.Fatal(err)
	}
	if !e.Good() && !e.Bad() {
		if err := sys.ESP.rename(e, fileName(e.ID, e.TriesLeft-1, e.TriesDone+1)); err != nil {
			t.Fatal(err)
		}
	}
	*cmdline = sys.ESP.Options(e.Slot)
	return e.Slot
}

func backend(t *testing.T, sys *System, args ...string) (string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	rc := sys.BackendMain(args, &out, &errb)
	if rc != 0 {
		t.Logf("backend %v: %s", args, errb.String())
	}
	return strings.TrimSpace(out.String()), rc
}

func TestUpdateCommitAndRollback(t *testing.T) {
	sys, fs, cmdline := newSys(t, SlotA)
	// Image build: slot A committed.
	k, i, _ := fs.mountAndFind(t, SlotA)
	if _, err := sys.ESP.InstallSlot(SlotA, k, i, "v1", false); err != nil {
		t.Fatal(err)
	}
	if got := bootOnce(t, sys, cmdline); got != SlotA {
		t.Fatalf("first boot from %s", got)
	}
	if out, _ := backend(t, sys, "get-current"); out != "A" {
		t.Fatalf("get-current = %q", out)
	}
	if out, _ := backend(t, sys, "get-state", "B"); out != "bad" {
		t.Fatalf("empty slot B state = %q, want bad", out)
	}

	// RAUC installs v2 into B: marks it bad, writes it, makes it primary.
	if _, rc := backend(t, sys, "set-state", "B", "bad"); rc != 0 {
		t.Fatal("set-state B bad failed")
	}
	if _, rc := backend(t, sys, "set-primary", "B"); rc != 0 {
		t.Fatal("set-primary B failed")
	}
	if fs.mnt != 0 {
		t.Fatalf("slot left mounted (%d)", fs.mnt)
	}
	if got := entryFiles(t, sys.ESP); !reflect.DeepEqual(got, []string{"ftbridge-0002-B+1.conf", "ftbridge-0001-A.conf"}) {
		t.Fatalf("entries after install: %v", got)
	}
	kb, _ := os.ReadFile(filepath.Join(sys.ESP.Dir, "ftbridge", "B", "vmlinuz"))
	if string(kb) != "kernel B v2" {
		t.Fatalf("slot B kernel on the ESP is %q (the newest kernel of the slot must be copied)", kb)
	}
	entry, _ := os.ReadFile(filepath.Join(sys.ESP.Dir, "loader", "entries", "ftbridge-0002-B+1.conf"))
	for _, want := range []string{"linux /ftbridge/B/vmlinuz\n", "initrd /ftbridge/B/initrd.img\n", "root=PARTLABEL=root-b ", "rauc.slot=B ", "console=ttyS0", "title ftbridge v2 (slot B)"} {
		if !strings.Contains(string(entry), want) {
			t.Errorf("entry lacks %q:\n%s", want, entry)
		}
	}
	if out, _ := backend(t, sys, "get-primary"); out != "B" {
		t.Fatalf("get-primary after install = %q", out)
	}

	// Trial boot of B; healthy: bless.
	if got := bootOnce(t, sys, cmdline); got != SlotB {
		t.Fatalf("trial boot from %s", got)
	}
	if got := entryFiles(t, sys.ESP); got[len(got)-1] != "ftbridge-0002-B+0-1.conf" {
		t.Fatalf("counter not taken: %v", got)
	}
	if _, rc := backend(t, sys, "set-state", "B", "good"); rc != 0 {
		t.Fatal("mark good failed")
	}
	ev, err := sys.CheckBoot()
	if err != nil || ev == nil || ev.Kind != "update.committed" || ev.Slot != SlotB || ev.Gen != 2 {
		t.Fatalf("CheckBoot after commit = %+v, %v", ev, err)
	}
	if got := bootOnce(t, sys, cmdline); got != SlotB {
		t.Fatalf("committed slot B not kept: booted %s", got)
	}
	if ev, err := sys.CheckBoot(); ev != nil || err != nil {
		t.Fatalf("event recorded twice: %+v %v", ev, err)
	}

	// A bad update into A: the trial boot never becomes healthy.
	fs.build[SlotA] = "v3-broken"
	backend(t, sys, "set-state", "A", "bad")
	if _, rc := backend(t, sys, "set-primary", "A"); rc != 0 {
		t.Fatal("set-primary A failed")
	}
	if got := bootOnce(t, sys, cmdline); got != SlotA {
		t.Fatalf("trial of A not booted: %s", got)
	}
	// No blessing; the watchdog or health check reboots.
	if got := bootOnce(t, sys, cmdline); got != SlotB {
		t.Fatalf("after a failed trial booted %s, want B (rollback)", got)
	}
	if out, _ := backend(t, sys, "get-state", "A"); out != "bad" {
		t.Fatalf("failed slot state = %q", out)
	}
	ev, err = sys.CheckBoot()
	if err != nil || ev == nil || ev.Kind != "update.rollback" || ev.Slot != SlotA || ev.Gen != 3 {
		t.Fatalf("CheckBoot after rollback = %+v, %v", ev, err)
	}
	if !strings.Contains(ev.Message, "rolled back to slot B") {
		t.Errorf("message %q", ev.Message)
	}
	raw, err := os.ReadFile(sys.EventLog)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(lines) != 2 {
		t.Fatalf("event log has %d lines:\n%s", len(lines), raw)
	}
	var last Event
	if err := json.Unmarshal([]byte(lines[1]), &last); err != nil || last.Kind != "update.rollback" || last.Time != "2026-01-02T03:04:05Z" {
		t.Fatalf("last event %+v %v", last, err)
	}
	if ev, _ := sys.CheckBoot(); ev != nil {
		t.Fatalf("rollback recorded twice: %+v", ev)
	}
	// Still B after more boots.
	for n := 0; n < 3; n++ {
		if got := bootOnce(t, sys, cmdline); got != SlotB {
			t.Fatalf("boot %d from %s", n, got)
		}
	}
}

func (f *fakeSlots) mountAndFind(t *testing.T, s Slot) (string, string, func() error) {
	t.Helper()
	dir, un, err := f.mount(s)
	if err != nil {
		t.Fatal(err)
	}
	defer un()
	k, i, err := findKernel(dir)
	if err != nil {
		t.Fatal(err)
	}
	return k, i, un
}

func TestMarkActiveBootedCommits(t *testing.T) {
	sys, fs, cmdline := newSys(t, SlotA)
	k, i, _ := fs.mountAndFind(t, SlotA)
	sys.ESP.InstallSlot(SlotA, k, i, "v1", false)
	backend(t, sys, "set-primary", "B")
	bootOnce(t, sys, cmdline)
	// `rauc status mark-active booted` while on B's trial commits B rather
	// than reinstalling it from itself.
	if _, rc := backend(t, sys, "set-primary", "B"); rc != 0 {
		t.Fatal("set-primary booted slot failed")
	}
	if got := entryFiles(t, sys.ESP); !reflect.DeepEqual(got, []string{"ftbridge-0002-B.conf", "ftbridge-0001-A.conf"}) {
		t.Fatalf("entries: %v", got)
	}
}

func TestBackendErrors(t *testing.T) {
	sys, _, _ := newSys(t, SlotA)
	for _, args := range [][]string{nil, {"frobnicate"}, {"get-state"}, {"get-state", "C"}, {"set-state", "A"}, {"set-state", "A", "meh"}, {"get-primary"}} {
		if _, rc := backend(t, sys, args...); rc == 0 {
			t.Errorf("backend %v succeeded", args)
		}
	}
	sys.Cmdline = func() (string, error) { return "quiet", nil }
	if _, err := sys.Current(); err == nil {
		t.Error("Current without rauc.slot succeeded")
	}
	sys.Cmdline = func() (string, error) { return "rauc.slot=Z", nil }
	if _, err := sys.Current(); err == nil {
		t.Error("Current with rauc.slot=Z succeeded")
	}
}

func TestInstallSlotReplacesOnlyThatSlot(t *testing.T) {
	sys, fs, _ := newSys(t, SlotA)
	k, i, _ := fs.mountAndFind(t, SlotA)
	sys.ESP.Tries = 3
	for n := 0; n < 3; n++ {
		if _, err := sys.ESP.InstallSlot(SlotA, k, i, "v1", n > 0); err != nil {
			t.Fatal(err)
		}
	}
	kb, ib, _ := fs.mountAndFind(t, SlotB)
	sys.ESP.InstallSlot(SlotB, kb, ib, "v2", true)
	if got := entryFiles(t, sys.ESP); !reflect.DeepEqual(got, []string{"ftbridge-0004-B+3.conf", "ftbridge-0003-A+3.conf"}) {
		t.Fatalf("entries: %v", got)
	}
	leftovers, _ := filepath.Glob(filepath.Join(sys.ESP.Dir, "*", "*", "*.new"))
	if len(leftovers) != 0 {
		t.Fatalf("temporary files left: %v", leftovers)
	}
}

func TestVersionLess(t *testing.T) {
	ordered := []string{"vmlinuz-6.1.0-9-amd64", "vmlinuz-6.1.0-10-amd64", "vmlinuz-6.1.0-10-amd64x", "vmlinuz-6.12.1-1-amd64"}
	for i := range ordered {
		for j := range ordered {
			if got := versionLess(ordered[i], ordered[j]); got != (i < j) {
				t.Errorf("versionLess(%q, %q) = %v", ordered[i], ordered[j], got)
			}
		}
	}
}

func TestSlotWithoutInitramfs(t *testing.T) {
	sys, fs, _ := newSys(t, SlotA)
	k, i, _ := fs.mountAndFind(t, SlotA)
	sys.ESP.InstallSlot(SlotA, k, i, "v1", false)
	// A Buildroot root: a kernel, no initramfs.
	sys.MountSlot = func(s Slot) (string, func() error, error) {
		dir := filepath.Join(t.TempDir(), "br")
		os.MkdirAll(filepath.Join(dir, "boot"), 0o755)
		os.WriteFile(filepath.Join(dir, "boot", "vmlinuz-buildroot"), []byte("br kernel"), 0o644)
		return dir, func() error { return nil }, nil
	}
	e, err := sys.Activate(SlotB)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := os.ReadFile(filepath.Join(sys.ESP.Dir, "loader", "entries", e.File))
	if strings.Contains(string(body), "initrd") || !strings.Contains(string(body), "linux /ftbridge/B/vmlinuz\noptions root=PARTLABEL=root-b") {
		t.Fatalf("entry without initramfs:\n%s", body)
	}
}
