package soak

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/engine"
)

// followPoll is how often the follower looks for new log output. The event
// times themselves come from the daemon (JSON "time"), so this only bounds
// how late the runner reacts, not what it measures.
const followPoll = 10 * time.Millisecond

// maxTextLines bounds the non-event lines a Follower keeps for diagnostics.
const maxTextLines = 400

// Follower reads the daemon's log (ftbridged -json: one JSON event per
// line, "SNAPSHOT {...}" lines, and plain logger lines) as it grows, without
// ever reading the whole file again: a soak's log grows to many megabytes.
type Follower struct {
	path string
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	cond    *sync.Cond
	events  []engine.Event
	snaps   int
	snap    engine.Snapshot
	snapErr error
	text    []string
	bad     int // lines that looked like JSON events but did not parse
	readErr error
}

// Follow starts following the log file at path (which may not exist yet).
func Follow(path string) *Follower {
	f := &Follower{path: path, stop: make(chan struct{}), done: make(chan struct{})}
	f.cond = sync.NewCond(&f.mu)
	go f.run()
	return f
}

// Close stops the follower after it read what the file holds now.
func (f *Follower) Close() {
	select {
	case <-f.stop:
	default:
		close(f.stop)
	}
	<-f.done
}

func (f *Follower) run() {
	defer close(f.done)
	var (
		file    *os.File
		partial []byte
		buf     = make([]byte, 256<<10)
	)
	defer func() {
		if file != nil {
			file.Close()
		}
	}()
	drain := func() {
		if file == nil {
			var err error
			if file, err = os.Open(f.path); err != nil {
				return
			}
		}
		for {
			n, err := file.Read(buf)
			if n > 0 {
				partial = append(partial, buf[:n]...)
				for {
					i := bytes.IndexByte(partial, '\n')
					if i < 0 {
						break
					}
					f.line(partial[:i])
					partial = partial[i+1:]
				}
				// Keep the backing array from growing without bound.
				partial = append([]byte(nil), partial...)
			}
			if err != nil {
				if !errors.Is(err, io.EOF) {
					f.mu.Lock()
					f.readErr = err
					f.mu.Unlock()
				}
				return
			}
		}
	}
	t := time.NewTicker(followPoll)
	defer t.Stop()
	for {
		drain()
		select {
		case <-f.stop:
			drain()
			return
		case <-t.C:
		}
	}
}

// line handles one complete log line.
func (f *Follower) line(b []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	defer f.cond.Broadcast()
	switch {
	case bytes.HasPrefix(b, []byte("SNAPSHOT ")):
		var s engine.Snapshot
		if err := json.Unmarshal(b[len("SNAPSHOT "):], &s); err != nil {
			f.snapErr = err
		} else {
			f.snap, f.snapErr = s, nil
		}
		f.snaps++
	case bytes.HasPrefix(b, []byte("{")):
		var ev engine.Event
		if err := json.Unmarshal(b, &ev); err != nil || ev.Kind == "" {
			f.bad++
			f.addText(string(b))
			return
		}
		f.events = append(f.events, ev)
	default:
		f.addText(string(b))
	}
}

func (f *Follower) addText(s string) {
	f.text = append(f.text, s)
	if len(f.text) > maxTextLines {
		f.text = append([]string(nil), f.text[len(f.text)-maxTextLines/2:]...)
	}
}

// NumEvents is the number of events read so far; use it as the from index
// of Events and WaitEvent.
func (f *Follower) NumEvents() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.events)
}

// Events returns a copy of the events from index from on.
func (f *Follower) Events(from int) []engine.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	if from < 0 || from > len(f.events) {
		from = len(f.events)
	}
	return append([]engine.Event(nil), f.events[from:]...)
}

// WaitEvent waits up to timeout for an event at index from or later that
// satisfies match, and returns it.
func (f *Follower) WaitEvent(from int, timeout time.Duration, match func(engine.Event) bool) (engine.Event, bool) {
	deadline := time.Now().Add(timeout)
	next := from
	for {
		f.mu.Lock()
		for ; next < len(f.events); next++ {
			if match(f.events[next]) {
				ev := f.events[next]
				f.mu.Unlock()
				return ev, true
			}
		}
		f.mu.Unlock()
		if time.Now().After(deadline) {
			return engine.Event{}, false
		}
		time.Sleep(followPoll)
	}
}

// WaitText waits up to timeout for a non-event line containing substr.
func (f *Follower) WaitText(timeout time.Duration, substr string) bool {
	deadline := time.Now().Add(timeout)
	for {
		f.mu.Lock()
		for _, l := range f.text {
			if strings.Contains(l, substr) {
				f.mu.Unlock()
				return true
			}
		}
		f.mu.Unlock()
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(followPoll)
	}
}

// Text returns the last non-event lines (logger lines, errors), oldest
// first.
func (f *Follower) Text() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.text...)
}

// snapshotCount returns how many snapshots were read.
func (f *Follower) snapshotCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.snaps
}

// waitSnapshot waits for snapshot number > after.
func (f *Follower) waitSnapshot(after int, timeout time.Duration) (engine.Snapshot, error) {
	deadline := time.Now().Add(timeout)
	f.mu.Lock()
	defer f.mu.Unlock()
	for f.snaps <= after {
		if time.Now().After(deadline) {
			return engine.Snapshot{}, errors.New("soak: no snapshot from ftbridged")
		}
		// The follower broadcasts on every line; wake periodically anyway
		// so the deadline is honoured when the daemon says nothing.
		waitCond(f.cond, followPoll*5)
	}
	return f.snap, f.snapErr
}

// waitCond waits on c (whose lock is held) for at most d.
func waitCond(c *sync.Cond, d time.Duration) {
	t := time.AfterFunc(d, c.Broadcast)
	c.Wait()
	t.Stop()
}
