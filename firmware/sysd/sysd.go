package sysd

import (
	"context"
	"fmt"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/coreos/go-systemd/v22/journal"
)

// Notify sends one sd_notify state ("READY=1", "STATUS=...") to the
// service manager. It reports whether a manager listened; outside systemd
// it does nothing and returns false.
func Notify(state string) (bool, error) {
	return daemon.SdNotify(false, state)
}

// Ready tells systemd that startup finished.
func Ready() error {
	_, err := Notify(daemon.SdNotifyReady)
	return err
}

// Stopping tells systemd that the daemon is shutting down.
func Stopping() error {
	_, err := Notify(daemon.SdNotifyStopping)
	return err
}

// Status sets the one-line status that `systemctl status` shows.
func Status(format string, args ...any) error {
	_, err := Notify("STATUS=" + fmt.Sprintf(format, args...))
	return err
}

// WatchdogInterval returns how often the watchdog must be fed (half of
// WatchdogSec), or 0 if systemd runs no watchdog for this process.
func WatchdogInterval() time.Duration {
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil || d <= 0 {
		return 0
	}
	return d / 2
}

// Watchdog feeds the systemd watchdog while the service is healthy.
type Watchdog struct {
	// Interval between checks; 0 means WatchdogInterval().
	Interval time.Duration
	// Check proves liveness within the context's deadline (one interval);
	// the watchdog is fed only when it returns nil. For the dataplane: a
	// snapshot from the loop.
	Check func(ctx context.Context) error
	// Status, if set, returns the status text after each check.
	Status func(healthy bool) string

	notify func(state string) (bool, error)
}

// Run checks and feeds until ctx ends. It returns at once when systemd
// runs no watchdog and no Interval is set. A hung loop is not fed, so
// systemd restarts the service after WatchdogSec.
func (w *Watchdog) Run(ctx context.Context) {
	interval := w.Interval
	if interval <= 0 {
		interval = WatchdogInterval()
	}
	if interval <= 0 {
		return
	}
	notify := w.notify
	if notify == nil {
		notify = Notify
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, interval)
		err := w.Check(cctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			notify(daemon.SdNotifyWatchdog)
		}
		if w.Status != nil {
			notify("STATUS=" + w.Status(err == nil))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// JournalStderr reports whether stderr is connected to the journal, in
// which case structured entries (JournalSend) are better than text lines.
func JournalStderr() bool {
	ok, err := journal.StderrIsJournalStream()
	return err == nil && ok
}

// Priorities for JournalSend.
const (
	PriErr     = journal.PriErr
	PriWarning = journal.PriWarning
	PriNotice  = journal.PriNotice
	PriInfo    = journal.PriInfo
)

// JournalSend writes one structured journal entry; field names are upper
// case letters, digits and underscores (FTBRIDGE_KIND=failover).
func JournalSend(msg string, pri journal.Priority, fields map[string]string) error {
	return journal.Send(msg, pri, fields)
}
