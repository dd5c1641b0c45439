package console

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Health decides whether ftbridged is healthy enough to commit a trial
// boot: its unit is active (for a Type=notify daemon that means it said
// READY, dataplane and API up) and then stays active for Stable without
// being restarted.
type Health struct {
	// Command runs systemctl.
	Command func(ctx context.Context, name string, args ...string) (string, error)
	// Timeout bounds the whole wait.
	Timeout time.Duration
	// Stable is how long the daemon must stay up.
	Stable time.Duration
	// Poll is the check interval; zero means one second.
	Poll time.Duration
	// Unit is the daemon's unit; empty means ftbridged.service.
	Unit string
	// FailedFor is how long the unit may stay "failed" before Wait gives
	// up early; zero means 5 s. systemd leaves a unit failed only when it
	// will not restart it (Restart= is exhausted: the start limit was
	// hit), so waiting out Timeout then only delays a rollback. The grace
	// covers an operator's restart racing the check.
	FailedFor time.Duration
}

// Wait returns nil once the daemon is healthy, or an error saying what it
// last saw when Timeout passes.
func (h *Health) Wait(ctx context.Context) error {
	unit := h.Unit
	if unit == "" {
		unit = "ftbridged.service"
	}
	poll := h.Poll
	if poll <= 0 {
		poll = time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, h.Timeout)
	defer cancel()
	failedFor := h.FailedFor
	if failedFor <= 0 {
		failedFor = 5 * time.Second
	}
	var upSince, failedSince time.Time
	var restarts string
	last := "not checked"
	for {
		out, _ := h.Command(ctx, "systemctl", "show", "--property=ActiveState,SubState,NRestarts", unit)
		props := map[string]string{}
		for _, l := range strings.Split(out, "\n") {
			if k, v, ok := strings.Cut(strings.TrimSpace(l), "="); ok {
				props[k] = v
			}
		}
		last = props["ActiveState"] + "/" + props["SubState"] + ", restarts " + props["NRestarts"]
		if props["ActiveState"] != "failed" {
			failedSince = time.Time{}
		} else if failedSince.IsZero() {
			failedSince = time.Now()
		} else if time.Since(failedSince) >= failedFor {
			return fmt.Errorf("%s failed and systemd does not restart it any more (last: %s)", unit, last)
		}
		switch {
		case props["ActiveState"] != "active":
			upSince = time.Time{}
		case upSince.IsZero() || props["NRestarts"] != restarts:
			upSince, restarts = time.Now(), props["NRestarts"]
		case time.Since(upSince) >= h.Stable:
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not healthy within %s (last: %s)", unit, h.Timeout, last)
		case <-time.After(poll):
		}
	}
}
