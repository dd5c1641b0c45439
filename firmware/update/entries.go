package update

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Slot names a root slot: "A" or "B".
type Slot string

// The two slots.
const (
	SlotA Slot = "A"
	SlotB Slot = "B"
)

// Other returns the slot that is not s.
func (s Slot) Other() Slot {
	if s == SlotA {
		return SlotB
	}
	return SlotA
}

// Valid reports whether s is A or B.
func (s Slot) Valid() bool { return s == SlotA || s == SlotB }

// Label returns the GPT partition label of the slot's root ("root-a").
func (s Slot) Label() string { return "root-" + strings.ToLower(string(s)) }

// NoCounting is the TriesLeft of an entry without a boot counter: a
// committed ("good") entry.
const NoCounting = -1

// Entry is one ftbridge loader entry on the ESP.
type Entry struct {
	// ID is the entry id as systemd-boot sees it: the file name without
	// the boot counter and ".conf" ("ftbridge-0002-B").
	ID string
	// Gen is the generation number; higher boots first.
	Gen int
	// Slot is the root slot the entry boots.
	Slot Slot
	// TriesLeft is the boot counter's remaining tries, or NoCounting.
	TriesLeft int
	// TriesDone is the number of boots already counted.
	TriesDone int
	// File is the entry's file name in loader/entries.
	File string
}

// Good reports whether the entry is committed (no boot counter).
func (e Entry) Good() bool { return e.TriesLeft == NoCounting }

// Bad reports whether the entry has used up its tries.
func (e Entry) Bad() bool { return e.TriesLeft == 0 }

// maxGen is the highest generation an entry name can carry (nine digits).
const maxGen = 999_999_999

var entryRE = regexp.MustCompile(`^ftbridge-([0-9]{4,9})-([AB])(?:\+([0-9]+)(?:-([0-9]+))?)?\.conf$`)

// ParseEntryName parses a loader entry file name. It reports false for
// files that are not ftbridge entries.
func ParseEntryName(name string) (Entry, bool) {
	m := entryRE.FindStringSubmatch(name)
	if m == nil {
		return Entry{}, false
	}
	gen, err := strconv.Atoi(m[1])
	if err != nil {
		return Entry{}, false
	}
	e := Entry{ID: "ftbridge-" + m[1] + "-" + m[2], Gen: gen, Slot: Slot(m[2]), TriesLeft: NoCounting, File: name}
	if m[3] != "" {
		e.TriesLeft, _ = strconv.Atoi(m[3])
		if m[4] != "" {
			e.TriesDone, _ = strconv.Atoi(m[4])
		}
	}
	return e, true
}

// fileName returns the entry file name for id with the given counter.
func fileName(id string, triesLeft, triesDone int) string {
	switch {
	case triesLeft == NoCounting:
		return id + ".conf"
	case triesDone == 0:
		return fmt.Sprintf("%s+%d.conf", id, triesLeft)
	default:
		return fmt.Sprintf("%s+%d-%d.conf", id, triesLeft, triesDone)
	}
}

// sortBoot orders entries as systemd-boot does for ours (no sort-key):
// entries with no tries left last, then by id in descending version order,
// then more tries left first.
func sortBoot(es []Entry) {
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i], es[j]
		if a.Bad() != b.Bad() {
			return !a.Bad()
		}
		if a.Gen != b.Gen {
			return a.Gen > b.Gen
		}
		if a.Slot != b.Slot {
			return a.Slot > b.Slot
		}
		return a.TriesLeft > b.TriesLeft
	})
}

// ESP is the EFI system partition as the update code sees it.
type ESP struct {
	// Dir is where the ESP is mounted (/efi on the appliance).
	Dir string
	// Cmdline is the board's kernel command line, without root= and the
	// slot; InstallSlot appends those.
	Cmdline string
	// Tries is the boot counter a new entry starts with. Zero means 1.
	Tries int
}

func (p *ESP) entriesDir() string { return filepath.Join(p.Dir, "loader", "entries") }

// Entries returns the ftbridge entries in the order systemd-boot tries
// them.
func (p *ESP) Entries() ([]Entry, error) {
	ents, err := os.ReadDir(p.entriesDir())
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, d := range ents {
		if e, ok := ParseEntryName(d.Name()); ok && d.Type().IsRegular() {
			out = append(out, e)
		}
	}
	sortBoot(out)
	return out, nil
}

// Default returns the entry systemd-boot boots when nothing overrides it.
func (p *ESP) Default() (Entry, error) {
	es, err := p.Entries()
	if err != nil {
		return Entry{}, err
	}
	if len(es) == 0 {
		return Entry{}, errors.New("no ftbridge boot entries on the ESP")
	}
	return es[0], nil
}

// Newest returns the newest entry for slot s.
func (p *ESP) Newest(s Slot) (Entry, bool, error) {
	es, err := p.Entries()
	if err != nil {
		return Entry{}, false, err
	}
	var best Entry
	found := false
	for _, e := range es {
		if e.Slot == s && (!found || e.Gen > best.Gen) {
			best, found = e, true
		}
	}
	return best, found, nil
}

// Options returns the kernel command line of an entry booting slot s.
func (p *ESP) Options(s Slot) string {
	return strings.TrimSpace(fmt.Sprintf("root=PARTLABEL=%s rootfstype=squashfs ro rauc.slot=%s %s", s.Label(), s, p.Cmdline))
}

// InstallSlot copies slot s's kernel and initramfs (if initrd is not
// empty) to the ESP and writes a
// new entry for it with a generation above every existing one. With trial
// set, the entry carries a boot counter (Tries) and must be blessed by a
// healthy boot; otherwise it is committed at once (image build). Older
// entries of the same slot are removed; the other slot's entries stay, since
// they are the way back.
func (p *ESP) InstallSlot(s Slot, kernel, initrd, version string, trial bool) (Entry, error) {
	if !s.Valid() {
		return Entry{}, fmt.Errorf("invalid slot %q", s)
	}
	if err := os.MkdirAll(p.entriesDir(), 0o755); err != nil {
		return Entry{}, err
	}
	es, err := p.Entries()
	if err != nil {
		return Entry{}, err
	}
	gen := 1
	for _, e := range es {
		if e.Gen >= gen {
			gen = e.Gen + 1
		}
	}
	if gen > maxGen {
		// Only a damaged or hand-edited ESP gets here; an entry named
		// past the width ParseEntryName reads would be invisible to
		// MarkGood and MarkBad while systemd-boot might still boot it.
		return Entry{}, fmt.Errorf("ESP: no generation above %d left (damaged entry names?)", maxGen)
	}
	// Remove the slot's old entries first: their kernel is about to be
	// overwritten, so they must never be booted again.
	for _, e := range es {
		if e.Slot == s {
			if err := os.Remove(filepath.Join(p.entriesDir(), e.File)); err != nil {
				return Entry{}, err
			}
		}
	}
	dir := filepath.Join(p.Dir, "ftbridge", string(s))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Entry{}, err
	}
	files := [][2]string{{kernel, "vmlinuz"}}
	initLine := ""
	if initrd != "" {
		files = append(files, [2]string{initrd, "initrd.img"})
		initLine = fmt.Sprintf("initrd /ftbridge/%s/initrd.img\n", s)
	} else if err := os.Remove(filepath.Join(dir, "initrd.img")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return Entry{}, err
	}
	for _, f := range files {
		if err := copyFile(f[0], filepath.Join(dir, f[1])); err != nil {
			return Entry{}, err
		}
	}
	id := fmt.Sprintf("ftbridge-%04d-%s", gen, s)
	left := NoCounting
	if trial {
		left = p.Tries
		if left <= 0 {
			left = 1
		}
	}
	body := fmt.Sprintf("title ftbridge %s (slot %s)\nversion %04d\nlinux /ftbridge/%s/vmlinuz\n%soptions %s\n",
		version, s, gen, s, initLine, p.Options(s))
	name := fileName(id, left, 0)
	if err := writeSync(filepath.Join(p.entriesDir(), name), []byte(body)); err != nil {
		return Entry{}, err
	}
	e, _ := ParseEntryName(name)
	return e, nil
}

// MarkGood commits the newest entry of slot s: its boot counter is removed.
func (p *ESP) MarkGood(s Slot) error {
	e, ok, err := p.Newest(s)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("slot %s has no boot entry", s)
	}
	if e.Good() {
		return nil
	}
	return p.rename(e, fileName(e.ID, NoCounting, 0))
}

// MarkBad makes every entry of slot s unbootable (no tries left), so
// systemd-boot falls back to the other slot.
func (p *ESP) MarkBad(s Slot) error {
	es, err := p.Entries()
	if err != nil {
		return err
	}
	for _, e := range es {
		if e.Slot == s && !e.Bad() {
			if err := p.rename(e, fileName(e.ID, 0, e.TriesDone+1)); err != nil {
				return err
			}
		}
	}
	return nil
}

// State returns "good" for a slot whose newest entry is committed or still
// on trial, and "bad" for one with no entry or no tries left.
func (p *ESP) State(s Slot) (string, error) {
	e, ok, err := p.Newest(s)
	if err != nil {
		return "", err
	}
	if !ok || e.Bad() {
		return "bad", nil
	}
	return "good", nil
}

func (p *ESP) rename(e Entry, to string) error {
	if e.File == to {
		return nil
	}
	d := p.entriesDir()
	if err := os.Rename(filepath.Join(d, e.File), filepath.Join(d, to)); err != nil {
		return err
	}
	return syncDir(d)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".new"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return err
	}
	return syncDir(filepath.Dir(dst))
}

// writeSync writes a file through a temporary name so that a power cut
// leaves either no entry or a whole one: a half-written entry could be
// booted.
func writeSync(path string, data []byte) error {
	tmp := path + ".new"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	// FAT may refuse fsync on a directory; the data is still written.
	_ = d.Sync()
	return nil
}
