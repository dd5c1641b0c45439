package update

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// System is the update glue's view of the running appliance. The fields
// that touch the machine default to the real thing in NewSystem; tests
// replace them.
type System struct {
	// ESP is the EFI system partition with the loader entries.
	ESP *ESP
	// Cmdline returns the kernel command line (/proc/cmdline).
	Cmdline func() (string, error)
	// MountSlot mounts slot s's root read-only and returns the mount point
	// and a function that unmounts it.
	MountSlot func(s Slot) (dir string, unmount func() error, err error)
	// EventLog is the file update events are appended to as JSON lines.
	EventLog string
	// Now returns the time stamped on events.
	Now func() time.Time
}

// Current returns the slot the system booted, from rauc.slot= on the
// kernel command line.
func (sys *System) Current() (Slot, error) {
	cl, err := sys.Cmdline()
	if err != nil {
		return "", err
	}
	for _, f := range strings.Fields(cl) {
		if v, ok := strings.CutPrefix(f, "rauc.slot="); ok {
			if s := Slot(v); s.Valid() {
				return s, nil
			}
			return "", fmt.Errorf("kernel command line: invalid rauc.slot=%q", v)
		}
	}
	return "", errors.New("kernel command line has no rauc.slot=")
}

// Activate makes slot s the next boot on trial: it copies the kernel and
// initramfs out of the slot's freshly written root and writes a new entry
// with a boot counter.
func (sys *System) Activate(s Slot) (Entry, error) {
	dir, unmount, err := sys.MountSlot(s)
	if err != nil {
		return Entry{}, fmt.Errorf("mount slot %s: %w", s, err)
	}
	defer unmount()
	kernel, initrd, err := findKernel(dir)
	if err != nil {
		return Entry{}, fmt.Errorf("slot %s: %w", s, err)
	}
	version := "unknown"
	if b, err := os.ReadFile(filepath.Join(dir, "etc", "ftbridge-release")); err == nil {
		version = strings.TrimSpace(string(b))
	}
	return sys.ESP.InstallSlot(s, kernel, initrd, version, true)
}

// findKernel returns the newest kernel and its initramfs in root/boot.
func findKernel(root string) (kernel, initrd string, err error) {
	ks, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	// 6.1.0-10 is newer than 6.1.0-9: compare digit runs as numbers.
	sort.Slice(ks, func(i, j int) bool { return versionLess(ks[i], ks[j]) })
	if len(ks) == 0 {
		return "", "", errors.New("no /boot/vmlinuz-* in the root")
	}
	kernel = ks[len(ks)-1]
	ver := strings.TrimPrefix(filepath.Base(kernel), "vmlinuz-")
	initrd = filepath.Join(root, "boot", "initrd.img-"+ver)
	if _, err := os.Stat(initrd); err != nil {
		// Buildroot kernels have the root's drivers built in and boot
		// without one.
		initrd = ""
	}
	return kernel, initrd, nil
}

// Event is one update event, as appended to the event log.
type Event struct {
	// Time is when the event was recorded (RFC 3339).
	Time string `json:"time"`
	// Kind is "update.rollback" or "update.committed".
	Kind string `json:"kind"`
	// Slot is the slot the event is about.
	Slot Slot `json:"slot"`
	// Gen is the entry generation the event is about.
	Gen int `json:"gen"`
	// Message is a human-readable summary.
	Message string `json:"message"`
}

// CheckBoot looks at the entries after a boot and reports what happened to
// the last update: a newer entry of the other slot with no tries left
// means its trial failed and the boot loader came back here by itself
// (update.rollback); the current slot being the newest and committed means
// an update was committed (update.committed). Each event is recorded once:
// the log is checked for an event with the same kind and generation.
func (sys *System) CheckBoot() (*Event, error) {
	cur, err := sys.Current()
	if err != nil {
		return nil, err
	}
	es, err := sys.ESP.Entries()
	if err != nil {
		return nil, err
	}
	var mine, other *Entry
	for i := range es {
		e := &es[i]
		switch {
		case e.Slot == cur && (mine == nil || e.Gen > mine.Gen):
			mine = e
		case e.Slot != cur && (other == nil || e.Gen > other.Gen):
			other = e
		}
	}
	var ev *Event
	switch {
	case other != nil && other.Bad() && (mine == nil || other.Gen > mine.Gen):
		ev = &Event{Kind: "update.rollback", Slot: other.Slot, Gen: other.Gen,
			Message: fmt.Sprintf("update in slot %s (generation %d) did not become healthy after %d boot(s); rolled back to slot %s", other.Slot, other.Gen, other.TriesDone, cur)}
	case mine != nil && mine.Good() && mine.Gen > 1 && (other == nil || mine.Gen > other.Gen):
		ev = &Event{Kind: "update.committed", Slot: cur, Gen: mine.Gen,
			Message: fmt.Sprintf("update in slot %s (generation %d) is healthy and committed", cur, mine.Gen)}
	default:
		return nil, nil
	}
	seen, err := sys.seen(ev.Kind, ev.Gen)
	if err != nil || seen {
		return nil, err
	}
	ev.Time = sys.Now().UTC().Format(time.RFC3339)
	return ev, sys.record(ev)
}

func (sys *System) seen(kind string, gen int) (bool, error) {
	b, err := os.ReadFile(sys.EventLog)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		var e Event
		if json.Unmarshal([]byte(line), &e) == nil && e.Kind == kind && e.Gen == gen {
			return true, nil
		}
	}
	return false, nil
}

func (sys *System) record(ev *Event) error {
	if err := os.MkdirAll(filepath.Dir(sys.EventLog), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(sys.EventLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(ev)
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// BackendMain runs RAUC's custom boot loader backend protocol (RAUC's
// bootloader=custom, bootloader-custom-backend=): args are the operation and
// its operands, answers go to stdout. It returns the process exit status.
func (sys *System) BackendMain(args []string, stdout, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintf(stderr, "ftbridge rauc backend: %v\n", err)
		return 1
	}
	slotArg := func(i int) (Slot, error) {
		if len(args) <= i {
			return "", fmt.Errorf("%s: missing slot", args[0])
		}
		s := Slot(args[i])
		if !s.Valid() {
			return "", fmt.Errorf("%s: invalid slot %q", args[0], args[i])
		}
		return s, nil
	}
	if len(args) == 0 {
		return fail(errors.New("no operation"))
	}
	switch args[0] {
	case "get-primary":
		e, err := sys.ESP.Default()
		if err != nil {
			return fail(err)
		}
		fmt.Fprintln(stdout, e.Slot)
	case "set-primary":
		s, err := slotArg(1)
		if err != nil {
			return fail(err)
		}
		if cur, err := sys.Current(); err == nil && cur == s {
			// Making the running slot primary (rauc status mark-active
			// booted) commits it.
			if err := sys.ESP.MarkGood(s); err != nil {
				return fail(err)
			}
			return 0
		}
		if _, err := sys.Activate(s); err != nil {
			return fail(err)
		}
	case "get-state":
		s, err := slotArg(1)
		if err != nil {
			return fail(err)
		}
		st, err := sys.ESP.State(s)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintln(stdout, st)
	case "set-state":
		s, err := slotArg(1)
		if err != nil {
			return fail(err)
		}
		if len(args) < 3 {
			return fail(errors.New("set-state: missing state"))
		}
		switch args[2] {
		case "good":
			err = sys.ESP.MarkGood(s)
		case "bad":
			err = sys.ESP.MarkBad(s)
		default:
			err = fmt.Errorf("set-state: invalid state %q", args[2])
		}
		if err != nil {
			return fail(err)
		}
	case "get-current":
		s, err := sys.Current()
		if err != nil {
			return fail(err)
		}
		fmt.Fprintln(stdout, s)
	default:
		return fail(fmt.Errorf("unknown operation %q", args[0]))
	}
	return 0
}

// versionLess compares strings with runs of digits compared by value, the
// way kernel versions order.
func versionLess(a, b string) bool {
	for a != "" && b != "" {
		da, db := digits(a), digits(b)
		if da > 0 && db > 0 {
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if len(na) != len(nb) {
				return len(na) < len(nb)
			}
			if na != nb {
				return na < nb
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func digits(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}
