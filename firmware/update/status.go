package update

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Slot states reported by Status.
const (
	// StateCommitted: the slot's newest entry has no boot counter; it boots
	// without a trial.
	StateCommitted = "committed"
	// StatePending: an installed update waiting for its trial boot (tries
	// left, not booted yet).
	StatePending = "pending"
	// StateTrial: the running slot is on its trial boot and not committed
	// yet (committed once the daemon is healthy).
	StateTrial = "trial"
	// StateBad: the slot failed its trial, or RAUC marked it bad while
	// writing it; it is not booted.
	StateBad = "bad"
	// StateEmpty: the slot has no boot entry (never written).
	StateEmpty = "empty"
)

// SlotStatus describes one root slot.
type SlotStatus struct {
	// Slot is "A" or "B".
	Slot Slot `json:"slot"`
	// Partition is the slot's GPT partition name (root-a, root-b).
	Partition string `json:"partition"`
	// Booted: this slot is running.
	Booted bool `json:"booted"`
	// State is committed, pending, trial, bad or empty.
	State string `json:"state"`
	// Version is the firmware version of the slot's newest entry.
	Version string `json:"version,omitempty"`
	// Generation is the entry's generation (higher boots first).
	Generation int `json:"generation,omitempty"`
	// TriesLeft is the entry's remaining trial boots; absent when
	// committed or empty.
	TriesLeft *int `json:"tries_left,omitempty"`
	// Entry is the loader entry's file name on the ESP.
	Entry string `json:"entry,omitempty"`
}

// Status is the A/B state of the appliance: which slot runs, which boots
// next, and each slot's state.
type Status struct {
	// Booted is the running slot.
	Booted Slot `json:"booted"`
	// Next is the slot systemd-boot starts on the next (re)boot, unless a
	// one-time choice is made at the console.
	Next Slot `json:"next"`
	// Trial: the running slot is on its trial boot, not committed yet.
	Trial bool `json:"trial"`
	// Slots are A and B, in that order.
	Slots []SlotStatus `json:"slots"`
}

// Status reads the A/B state from the kernel command line and the ESP's
// loader entries, the same sources systemd-boot and RAUC's backend use, so
// it cannot disagree with what the next boot does.
func (sys *System) Status() (Status, error) {
	cur, err := sys.Current()
	if err != nil {
		return Status{}, err
	}
	def, err := sys.ESP.Default()
	if err != nil {
		return Status{}, err
	}
	st := Status{Booted: cur, Next: def.Slot}
	for _, s := range []Slot{SlotA, SlotB} {
		ss := SlotStatus{Slot: s, Partition: s.Label(), Booted: s == cur, State: StateEmpty}
		e, ok, err := sys.ESP.Newest(s)
		if err != nil {
			return Status{}, err
		}
		if ok {
			ss.Generation, ss.Entry = e.Gen, e.File
			ss.Version = entryVersion(filepath.Join(sys.ESP.entriesDir(), e.File))
			switch {
			case e.Good():
				ss.State = StateCommitted
			case s == cur:
				// systemd-boot took the last try before starting it:
				// running and not blessed is the trial.
				ss.State = StateTrial
				st.Trial = true
			case e.Bad():
				ss.State = StateBad
			default:
				ss.State = StatePending
			}
			if !e.Good() {
				n := e.TriesLeft
				ss.TriesLeft = &n
			}
		}
		st.Slots = append(st.Slots, ss)
	}
	return st, nil
}

// titleRE matches the title InstallSlot and the image build write:
// "title ftbridge VERSION (slot X)".
var titleRE = regexp.MustCompile(`^title\s+ftbridge\s+(\S+)\s+\(slot [AB]\)\s*$`)

// entryVersion returns the firmware version named in a loader entry's
// title, or "" when the entry has none.
func entryVersion(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		if m := titleRE.FindStringSubmatch(strings.TrimSpace(l)); m != nil {
			return m[1]
		}
	}
	return ""
}

// String is a one-line summary, for logs.
func (st Status) String() string {
	return fmt.Sprintf("booted %s, next %s, trial %v", st.Booted, st.Next, st.Trial)
}
