package lab

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// SetLink sets dev in ns administratively up or down. Downing either end of
// a veth takes the carrier away from the other end, which is how a test
// makes the box see "cable pulled" on a port. On an impaired link the
// impairment point passes the state through (it sets its interface facing
// the far end the same way), so the far end still loses and regains its
// carrier.
func (l *Lab) SetLink(ns, dev string, up bool) error {
	if err := l.usable(ns); err != nil {
		return err
	}
	state := "down"
	if up {
		state = "up"
	}
	if err := l.ip("-n", ns, "link", "set", "dev", dev, state); err != nil {
		return err
	}
	if mns, mdev, ok := l.mirrorLink(ns, dev); ok {
		return l.ip("-n", mns, "link", "set", "dev", mdev, state)
	}
	return nil
}

// Netem replaces dev's root qdisc in ns with "netem args..." (for example
// "delay", "20ms" or "loss", "5%"). When the running kernel has no netem
// (CONFIG_NET_SCH_NETEM unset, no module) the error wraps
// errors.ErrUnsupported so tests can skip with a reason; Impair works
// without it.
func (l *Lab) Netem(ns, dev string, args ...string) error {
	if err := l.usable(ns); err != nil {
		return err
	}
	cmd := exec.Command("tc", append([]string{"-n", ns, "qdisc", "replace", "dev", dev, "root", "netem"}, args...)...)
	out, err := runOut(cmd)
	if err != nil && strings.Contains(out, "qdisc kind is unknown") {
		return fmt.Errorf("lab: netem not available in this kernel: %w (%w)", errors.ErrUnsupported, err)
	}
	return err
}

// ClearNetem removes dev's root qdisc in ns (whatever it is), restoring the
// default. Clearing a device that has no root qdisc is not an error.
func (l *Lab) ClearNetem(ns, dev string) error {
	if err := l.usable(ns); err != nil {
		return err
	}
	out, err := runOut(exec.Command("tc", "-n", ns, "qdisc", "del", "dev", dev, "root"))
	if err != nil && (strings.Contains(out, "handle of zero") || strings.Contains(out, "No such file or directory")) {
		// Nothing installed: the default qdisc is already in place.
		return nil
	}
	return err
}
