package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Event categories.
const (
	CategoryFailover   = "failover"
	CategoryHealth     = "health"
	CategoryConnection = "connection"
	CategoryConfig     = "config"
	CategoryAuth       = "auth"
	CategorySystem     = "system"
)

// Event is one entry of the log.
type Event struct {
	// Seq numbers events 1, 2, 3, ... for the life of the store.
	Seq uint64 `json:"seq"`
	// Time is when it happened.
	Time time.Time `json:"time"`
	// Kind says what happened, such as "failover" or "login-failed".
	Kind string `json:"kind"`
	// Category groups kinds: failover, health, connection, config, auth,
	// system. Add derives it from Kind when empty.
	Category string `json:"category"`
	// Replica is the replica concerned (the new primary of a failover).
	Replica string `json:"replica,omitempty"`
	// From is the previous primary of a failover.
	From string `json:"from,omitempty"`
	// Conn is the connection concerned, "CLIENT->SERVICE".
	Conn string `json:"conn,omitempty"`
	// Port is a service address or an interface.
	Port string `json:"port,omitempty"`
	// Reason says why.
	Reason string `json:"reason,omitempty"`
	// Offset is where a divergence began.
	Offset uint32 `json:"offset,omitempty"`
	// StallMS is a failover's client-facing stall (kind failover-done).
	StallMS float64 `json:"stall_ms,omitempty"`
	// Detail is free text.
	Detail string `json:"detail,omitempty"`
	// User is who did it (management events).
	User string `json:"user,omitempty"`
	// Remote is the client address of a management request.
	Remote string `json:"remote,omitempty"`
}

var categories = map[string]string{
	"failover": CategoryFailover, "member-removed": CategoryFailover, "diverged": CategoryFailover, "stalled": CategoryFailover,
	"last-member-kept": CategoryFailover,
	"failover-done":    CategoryFailover, "rejoin-started": CategoryFailover, "rejoin-completed": CategoryFailover, "rejoin-failed": CategoryFailover,
	"replica-icmp": CategoryHealth, "replica-needs-ready": CategoryHealth, "replica-ready": CategoryHealth,
	"replica-up": CategoryHealth, "replica-down": CategoryHealth, "replica-admin": CategoryHealth, "port-gone": CategoryHealth, "port-back": CategoryHealth,
	"conn-refused": CategoryConnection, "conn-established": CategoryConnection, "conn-closed": CategoryConnection,
	"config-applied": CategoryConfig, "config-confirmed": CategoryConfig, "config-rolled-back": CategoryConfig, "config-fallback": CategoryConfig,
	"login": CategoryAuth, "login-failed": CategoryAuth, "locked-out": CategoryAuth, "password-changed": CategoryAuth,
	"token-created": CategoryAuth, "token-revoked": CategoryAuth, "logout": CategoryAuth,
}

// CategoryOf returns the category of an event kind; unknown kinds are
// system events.
func CategoryOf(kind string) string {
	if c, ok := categories[kind]; ok {
		return c
	}
	return CategorySystem
}

// Transient reports whether events of kind are streamed but not stored.
func Transient(kind string) bool { return kind == "conn-established" || kind == "conn-closed" }

// Options configure Open.
type Options struct {
	// Dir holds the log files; created 0700.
	Dir string
	// MaxEvents bounds the stored events. Default 10000, at least 10.
	MaxEvents int
}

// maxDetail bounds the text fields of one stored event, so that the count
// bound is also a size bound.
const maxDetail = 1024

// Store is the event log. Its methods are safe for concurrent use.
type Store struct {
	dir string

	mu       sync.Mutex
	max      int
	mem      []Event // stored events, oldest first, at most max
	seq      uint64
	f        *os.File
	lines    int // lines in the current file
	lastSync time.Time
	subs     map[chan Event]struct{}
	closed   bool

	dropped atomic.Uint64 // events a slow subscriber missed
	skipped int           // unreadable lines found at open

	now func() time.Time
}

const (
	curName = "events.log"
	oldName = "events.log.1"
)

// Open opens (or creates) the log in o.Dir and loads its events.
func Open(o Options) (*Store, error) {
	if o.MaxEvents <= 0 {
		o.MaxEvents = 10000
	}
	o.MaxEvents = max(o.MaxEvents, 10)
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, err
	}
	s := &Store{dir: o.Dir, max: o.MaxEvents, subs: make(map[chan Event]struct{}), now: time.Now}
	if _, _, err := s.load(filepath.Join(o.Dir, oldName), false); err != nil {
		return nil, err
	}
	n, good, err := s.load(filepath.Join(o.Dir, curName), true)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(o.Dir, curName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	// Cut a torn tail so that the next event starts on a line of its own.
	if err := f.Truncate(good); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.Seek(good, 0); err != nil {
		f.Close()
		return nil, err
	}
	s.f, s.lines = f, n
	s.trimMem()
	return s, nil
}

// maxSeqJump bounds how far one stored line's sequence number may lie
// above every number loaded before it. Genuine gaps come from transient
// events, which take a number but are not stored: even a million a second
// needs twelve days for this one. A larger jump is damage (a flipped
// digit), and believing it could leave no room for the next events: near
// 2^64 their numbers would wrap to 0 and they would be lost on reload.
const maxSeqJump = 1 << 40

// load reads one log file into memory. It returns the number of complete
// lines and the offset just past the last complete, well-formed line.
func (s *Store) load(path string, current bool) (lines int, good int64, err error) {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	off := int64(0)
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break // torn tail: no newline
		}
		line := data[:i]
		data = data[i+1:]
		var ev Event
		if err := json.Unmarshal(line, &ev); err != nil || ev.Seq == 0 || ev.Seq > s.seq+maxSeqJump {
			// A damaged line in the middle (or a torn line that a later
			// write completed with a newline): skip it, keep the rest.
			s.skipped++
			if len(data) == 0 && current {
				break
			}
			off += int64(i + 1)
			lines++
			continue
		}
		off += int64(i + 1)
		lines++
		s.seq = max(s.seq, ev.Seq)
		s.mem = append(s.mem, ev)
	}
	return lines, off, nil
}

// Skipped returns how many unreadable lines Open found.
func (s *Store) Skipped() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.skipped
}

// Dropped returns how many events subscribers missed because they were
// too slow.
func (s *Store) Dropped() uint64 { return s.dropped.Load() }

// SetMax changes the bound on stored events (at least 10).
func (s *Store) SetMax(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.max = max(n, 10)
	s.trimMem()
}

func (s *Store) trimMem() {
	if len(s.mem) > s.max {
		s.mem = slices.Clone(s.mem[len(s.mem)-s.max:])
	}
}

func clip(p *string) {
	if len(*p) > maxDetail {
		*p = (*p)[:maxDetail]
	}
}

// Add records ev: it gets the next sequence number, the current time if it
// has none and its category if empty; it is stored unless Transient, and
// sent to every subscriber. Add returns the recorded event. A write error
// is returned, but the event is still kept in memory and streamed.
func (s *Store) Add(ev Event) (Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	ev.Seq = s.seq
	if ev.Time.IsZero() {
		ev.Time = s.now()
	}
	ev.Time = ev.Time.UTC()
	if ev.Category == "" {
		ev.Category = CategoryOf(ev.Kind)
	}
	for _, p := range []*string{&ev.Kind, &ev.Replica, &ev.From, &ev.Conn, &ev.Port, &ev.Reason, &ev.Detail, &ev.User, &ev.Remote} {
		clip(p)
	}
	var err error
	if !Transient(ev.Kind) {
		s.mem = append(s.mem, ev)
		s.trimMem()
		if !s.closed {
			err = s.writeLocked(ev)
		}
	}
	for ch := range s.subs {
		select {
		case ch <- ev:
		default:
			s.dropped.Add(1)
		}
	}
	return ev, err
}

func (s *Store) writeLocked(ev Event) error {
	line, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	if s.lines >= (s.max+1)/2 {
		if err := s.rotateLocked(); err != nil {
			return err
		}
	}
	if _, err := s.f.Write(append(line, '\n')); err != nil {
		return err
	}
	s.lines++
	if now := time.Now(); now.Sub(s.lastSync) >= time.Second {
		s.lastSync = now
		return s.f.Sync()
	}
	return nil
}

// rotateLocked moves the current file to events.log.1 and starts anew.
func (s *Store) rotateLocked() error {
	if err := s.f.Sync(); err != nil {
		return err
	}
	if err := s.f.Close(); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(s.dir, curName), filepath.Join(s.dir, oldName)); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(s.dir, curName), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	s.f, s.lines = f, 0
	if d, err := os.Open(s.dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Query selects stored events.
type Query struct {
	// Since and Until bound Time (inclusive); zero means unbounded.
	Since, Until time.Time
	// Kinds and Categories, when not empty, list the accepted values.
	Kinds, Categories []string
	// Replica, when set, matches Replica or From.
	Replica string
	// After keeps events with Seq > After.
	After uint64
	// Limit keeps the newest Limit matches; 0 means all.
	Limit int
}

// Match reports whether ev passes q's filters (all but Limit).
func (q *Query) Match(ev *Event) bool {
	switch {
	case ev.Seq <= q.After:
		return false
	case !q.Since.IsZero() && ev.Time.Before(q.Since):
		return false
	case !q.Until.IsZero() && ev.Time.After(q.Until):
		return false
	case len(q.Kinds) > 0 && !slices.Contains(q.Kinds, ev.Kind):
		return false
	case len(q.Categories) > 0 && !slices.Contains(q.Categories, ev.Category):
		return false
	case q.Replica != "" && ev.Replica != q.Replica && ev.From != q.Replica:
		return false
	}
	return true
}

// Query returns the stored events that match q, oldest first.
func (s *Store) Query(q Query) []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Event
	for i := range s.mem {
		if q.Match(&s.mem[i]) {
			out = append(out, s.mem[i])
		}
	}
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[len(out)-q.Limit:]
	}
	return out
}

// LastSeq returns the sequence number of the newest event.
func (s *Store) LastSeq() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seq
}

// Subscribe returns a channel that receives every event added from now on,
// buffered to n, and a function that ends the subscription. A subscriber
// that falls behind misses events (counted by Dropped) rather than slowing
// the store.
func (s *Store) Subscribe(n int) (<-chan Event, func()) {
	_, ch, cancel := s.SubscribeFrom(Query{After: math.MaxUint64}, n)
	return ch, cancel
}

// SubscribeFrom is Subscribe that first delivers, in the returned slice,
// the stored events after seq that match q, with no gap or repeat between
// them and the channel.
func (s *Store) SubscribeFrom(q Query, n int) ([]Event, <-chan Event, func()) {
	ch := make(chan Event, max(n, 1))
	s.mu.Lock()
	var backlog []Event
	for i := range s.mem {
		if q.Match(&s.mem[i]) {
			backlog = append(backlog, s.mem[i])
		}
	}
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	var once sync.Once
	return backlog, ch, func() {
		once.Do(func() {
			s.mu.Lock()
			delete(s.subs, ch)
			s.mu.Unlock()
		})
	}
}

// Close syncs and closes the file. Events added later are kept in memory
// and streamed, not stored.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.f.Sync()
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// String describes the store for logs.
func (s *Store) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("event log %s: %d events, last seq %d", s.dir, len(s.mem), s.seq)
}
