package main

import (
	"context"
	"runtime/debug"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/engine"
)

// After a burst the Go heap keeps the pages it grew into until the
// runtime's background scavenger gets round to them, minutes later: on an
// appliance with little RAM, and for anyone watching the daemon's memory
// for leaks, what an idle box holds should be what it uses. So once the
// connection table has stayed empty for releaseIdle after carrying
// connections, the daemon hands its free heap pages back at once.
const (
	releaseIdle  = 30 * time.Second
	releasePoll  = 5 * time.Second
	snapshotWait = 2 * time.Second
)

// idleReleaser decides when to return memory: once per busy spell, after
// releaseIdle without a connection.
type idleReleaser struct {
	busy      bool      // connections were seen since the last release
	idleSince time.Time // when the table was last seen empty (zero: not empty)
}

// observe takes the number of connections at now and reports whether to
// release memory now.
func (r *idleReleaser) observe(now time.Time, conns int) bool {
	if conns > 0 {
		r.busy, r.idleSince = true, time.Time{}
		return false
	}
	if r.idleSince.IsZero() {
		r.idleSince = now
	}
	if r.busy && now.Sub(r.idleSince) >= releaseIdle {
		r.busy = false
		return true
	}
	return false
}

// releaseWhenIdle polls the dataplane until ctx ends and returns free heap
// pages to the OS when the box goes idle after carrying connections.
func releaseWhenIdle(ctx context.Context, snapshot func(context.Context, int) (engine.Snapshot, error)) {
	var r idleReleaser
	t := time.NewTicker(releasePoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			sctx, cancel := context.WithTimeout(ctx, snapshotWait)
			snap, err := snapshot(sctx, 0)
			cancel()
			if err == nil && r.observe(now, snap.Connections) {
				debug.FreeOSMemory()
			}
		}
	}
}
