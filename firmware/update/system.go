package update

import (
	"os"
	"time"
)

// Paths on the appliance.
const (
	// ESPDir is where the image mounts the ESP.
	ESPDir = "/efi"
	// DefaultEventLog is where update events are appended.
	DefaultEventLog = "/data/ftbridge/events/update.jsonl"
)

// NewSystem returns the System of the running appliance, with the ESP at
// espDir and the board's kernel command line cmdline.
func NewSystem(espDir, cmdline string) *System {
	return &System{
		ESP: &ESP{Dir: espDir, Cmdline: cmdline, Tries: 1},
		Cmdline: func() (string, error) {
			b, err := os.ReadFile("/proc/cmdline")
			return string(b), err
		},
		MountSlot: mountSlot,
		EventLog:  DefaultEventLog,
		Now:       time.Now,
	}
}
