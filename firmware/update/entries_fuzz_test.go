package update

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ftbridge/ftbridge/firmware/internal/fuzzdir"
)

// FuzzParseEntryName checks the loader entry name parser on any file name
// the ESP may hold: a name it accepts is an ftbridge entry of slot A or B
// with a non-negative generation and a counter that is either absent or
// non-negative, whose id starts the name, and which survives a round trip
// through the name the update code writes for it (fileName), so that
// renaming an entry (MarkGood, MarkBad) never loses or changes it.
func FuzzParseEntryName(f *testing.F) {
	for _, s := range []string{
		"ftbridge-0001-A.conf", "ftbridge-0002-B+3.conf", "ftbridge-0002-B+0-1.conf", "ftbridge-0010-A+2-1.conf",
		"ftbridge-123456789-A+03-007.conf", "ftbridge-0001-C.conf", "ftbridge-1-A.conf", "ftbridge-0001-A.conf.new",
		"debian-6.1.0-10.conf", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		e, ok := ParseEntryName(name)
		if !ok {
			if e != (Entry{}) {
				t.Fatalf("rejected %q but returned %+v", name, e)
			}
			return
		}
		if !e.Slot.Valid() || e.Gen < 0 || e.File != name || !strings.HasPrefix(name, e.ID) ||
			e.TriesLeft < NoCounting || e.TriesDone < 0 || e.Good() && e.TriesDone != 0 {
			t.Fatalf("ParseEntryName(%q) = %+v", name, e)
		}
		again, ok := ParseEntryName(fileName(e.ID, e.TriesLeft, e.TriesDone))
		again.File = e.File
		if !ok || again != e {
			t.Fatalf("%q: %+v does not survive fileName: %+v, %v", name, e, again, ok)
		}
	})
}

// FuzzESP runs sequences of update operations on an ESP that starts with
// fuzzed loader entries (names one a line, as a previous firmware, a power
// cut or a hand edit may have left them), and checks after each step what
// the A/B scheme promises:
//
//   - InstallSlot(s) returns the entry it wrote, which parses, has a
//     generation above every other entry's, is the only entry of s left,
//     is s's newest and is what boots next; the other slot's entries stay;
//   - MarkGood(s) leaves s's newest entry committed, MarkBad(s) leaves s
//     "bad" and, when the other slot has a bootable entry, the next boot
//     goes there; neither touches the other slot's entries;
//   - a boot (systemd-boot's counting: a counted entry's tries left go
//     down by one and tries done up by one) never makes a slot bad while it
//     has tries left;
//   - no temporary (.new) file is left behind, and every file a step adds
//     to loader/entries parses as an entry.
//
// Operations (one byte each, at most 24): 0-1 install A/B on trial, 2-3
// install A/B committed, 4-5 MarkGood A/B, 6-7 MarkBad A/B, 8 boot the
// default entry.
func FuzzESP(f *testing.F) {
	f.Add("ftbridge-0001-A.conf", []byte{1, 8, 5})                                          // update to B, boot, commit
	f.Add("ftbridge-0001-A.conf", []byte{1, 8, 8, 7})                                       // B fails its trial
	f.Add("ftbridge-0001-A.conf\nftbridge-0002-B+1.conf", []byte{8, 6, 0, 4})               // pending B boots
	f.Add("ftbridge-0003-A+0-2.conf\nftbridge-0002-B.conf\nREADME.txt", []byte{0, 8, 8, 8}) // a bad A
	f.Add("ftbridge-0007-B+2-1.conf\nftbridge-0007-B.conf\nftbridge-0007-A+1.conf", []byte{7, 5, 3, 2})
	f.Add("", []byte{2, 1, 8, 5, 0, 8, 6})
	f.Fuzz(func(t *testing.T, names string, ops []byte) {
		if len(ops) > 24 || len(names) > 4096 {
			return
		}
		dir := fuzzdir.New(t, "update")
		esp := &ESP{Dir: filepath.Join(dir, "esp"), Cmdline: "console=ttyS0", Tries: 3}
		if err := os.MkdirAll(esp.entriesDir(), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, n := range strings.Split(names, "\n") {
			if n == "" || n == "." || n == ".." || len(n) > 200 || strings.ContainsAny(n, "/\x00") {
				continue
			}
			if err := os.WriteFile(filepath.Join(esp.entriesDir(), n), []byte("title x\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		kernel, initrd := filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initrd.img")
		for _, p := range []string{kernel, initrd} {
			if err := os.WriteFile(p, []byte(p), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		entries := func() []Entry {
			t.Helper()
			es, err := esp.Entries()
			if err != nil {
				t.Fatal(err)
			}
			return es
		}
		ofSlot := func(es []Entry, s Slot) []string {
			var out []string
			for _, e := range es {
				if e.Slot == s {
					out = append(out, e.File)
				}
			}
			slices.Sort(out)
			return out
		}
		listing := func() []string {
			t.Helper()
			des, err := os.ReadDir(esp.entriesDir())
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, de := range des {
				out = append(out, de.Name())
			}
			return out
		}
		for step, op := range ops {
			before := entries()
			files := listing()
			s := SlotA
			if op%2 == 1 {
				s = SlotB
			}
			o := s.Other()
			fail := func(format string, args ...any) {
				t.Helper()
				t.Fatalf("step %d (op %d, slot %s), entries before %v: %s", step, op, s, before, fmt.Sprintf(format, args...))
			}
			switch op % 9 {
			case 0, 1, 2, 3:
				e, err := esp.InstallSlot(s, kernel, initrd, "v9", op < 2)
				top := 0
				for _, b := range before {
					top = max(top, b.Gen)
				}
				if top >= maxGen {
					// No generation left: it must refuse, and
					// change nothing.
					if err == nil {
						fail("InstallSlot above generation %d succeeded: %+v", top, e)
					}
					if after := listing(); !slices.Equal(after, files) {
						fail("a refused install changed the ESP: %v -> %v", files, after)
					}
					continue
				}
				if err != nil {
					fail("InstallSlot: %v", err)
				}
				parsed, ok := ParseEntryName(e.File)
				if !ok || parsed != e || e.Slot != s {
					fail("InstallSlot returned %+v, which does not parse back (%+v, %v)", e, parsed, ok)
				}
				for _, b := range before {
					if b.Gen >= e.Gen {
						fail("new entry %s not above %s", e.File, b.File)
					}
				}
				after := entries()
				if got := ofSlot(after, s); !slices.Equal(got, []string{e.File}) {
					fail("slot %s has entries %v after installing %s", s, got, e.File)
				}
				if n, ok, _ := esp.Newest(s); !ok || n != e {
					fail("Newest(%s) = %+v, %v; want %+v", s, n, ok, e)
				}
				if d, err := esp.Default(); err != nil || d != e {
					fail("the next boot is %+v (%v), not the new entry %+v", d, err, e)
				}
				if !slices.Equal(ofSlot(after, o), ofSlot(before, o)) {
					fail("slot %s's entries changed: %v -> %v", o, ofSlot(before, o), ofSlot(after, o))
				}
			case 4, 5:
				_, had, _ := esp.Newest(s)
				err := esp.MarkGood(s)
				if had != (err == nil) {
					fail("MarkGood with an entry %v: %v", had, err)
				}
				if had {
					if n, ok, _ := esp.Newest(s); !ok || !n.Good() {
						fail("after MarkGood the newest entry is %+v", n)
					}
				}
				if after := entries(); !slices.Equal(ofSlot(after, o), ofSlot(before, o)) {
					fail("MarkGood(%s) changed slot %s: %v -> %v", s, o, ofSlot(before, o), ofSlot(after, o))
				}
			case 6, 7:
				if err := esp.MarkBad(s); err != nil {
					fail("MarkBad: %v", err)
				}
				if st, err := esp.State(s); err != nil || st != "bad" {
					fail("after MarkBad the state is %q, %v", st, err)
				}
				after := entries()
				if !slices.Equal(ofSlot(after, o), ofSlot(before, o)) {
					fail("MarkBad(%s) changed slot %s: %v -> %v", s, o, ofSlot(before, o), ofSlot(after, o))
				}
				if st, _ := esp.State(o); st == "good" {
					if d, err := esp.Default(); err != nil || d.Slot != o {
						fail("slot %s is bad and %s good, but the next boot is %+v (%v)", s, o, d, err)
					}
				}
			case 8:
				d, err := esp.Default()
				if err != nil || d.Good() || d.Bad() {
					break // nothing counted to boot
				}
				bootedState, _ := esp.State(d.Slot)
				next := fileName(d.ID, d.TriesLeft-1, d.TriesDone+1)
				if err := os.Rename(filepath.Join(esp.entriesDir(), d.File), filepath.Join(esp.entriesDir(), next)); err != nil {
					t.Fatal(err)
				}
				if st, _ := esp.State(d.Slot); d.TriesLeft > 1 && st != bootedState {
					fail("a boot with %d tries left turned slot %s %q", d.TriesLeft, d.Slot, st)
				}
			}
			for _, n := range listing() {
				if strings.HasSuffix(n, ".new") {
					fail("temporary file %s left on the ESP", n)
				}
				if _, ok := ParseEntryName(n); !ok && !slices.Contains(files, n) {
					fail("wrote %s, which is not a loader entry name the update code reads", n)
				}
			}
		}
	})
}
