package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Errors of Store operations, for callers that map them to API answers.
var (
	// ErrPending: a change awaits confirmation; confirm or roll it back first.
	ErrPending = errors.New("a configuration change is awaiting confirmation")
	// ErrNoPending: there is no change to confirm.
	ErrNoPending = errors.New("no configuration change is awaiting confirmation")
	// ErrNoVersion: the requested version is not in the history.
	ErrNoVersion = errors.New("no such configuration version")
)

// Sources of history entries.
const (
	SourceFile         = "file"          // read from the configuration file
	SourceAPI          = "api"           // applied through the API
	SourceRollback     = "rollback"      // an operator's rollback
	SourceAutoRollback = "auto-rollback" // an unconfirmed change undone
)

// Entry is one applied configuration version.
type Entry struct {
	// Version numbers applied documents 1, 2, 3, ... for the life of the
	// data directory. It is not the document's format version.
	Version int `json:"version"`
	// Applied is when the version was applied.
	Applied time.Time `json:"applied"`
	// Source says where it came from (SourceFile, SourceAPI, ...).
	Source string `json:"source"`
	// Comment is the operator's note, or why the box applied it.
	Comment string `json:"comment,omitempty"`
	// Config is the document.
	Config *Config `json:"config"`
}

// Pending is a change applied with a confirmation timeout.
type Pending struct {
	// Version is the applied, unconfirmed version.
	Version int `json:"version"`
	// Previous is the version restored if it is not confirmed.
	Previous int `json:"previous"`
	// ConfirmBy is when the change is rolled back.
	ConfirmBy time.Time `json:"confirm_by"`
	// DataplaneRestarted says applying it restarted the dataplane.
	DataplaneRestarted bool `json:"dataplane_restarted"`
}

// ApplyResult says what an apply did.
type ApplyResult struct {
	// Version is the version now applied.
	Version int `json:"version"`
	// DataplaneRestarted is true when the dataplane was restarted, which
	// dropped its live connections.
	DataplaneRestarted bool `json:"dataplane_restarted"`
	// Pending is set when the change must be confirmed.
	Pending *Pending `json:"pending"`
}

// ApplyOptions tune one apply.
type ApplyOptions struct {
	// ConfirmTimeout > 0 makes the change pending: it is rolled back
	// unless Confirm is called within this time.
	ConfirmTimeout time.Duration
	// Source and Comment are recorded in the history.
	Source, Comment string
}

// Applier puts a configuration into effect. It returns whether that
// restarted the dataplane. It is called with the Store's lock held, so
// applies are serialized; it must not call back into the Store.
type Applier func(old, new *Config) (dataplaneRestarted bool, err error)

// StoreOptions configure OpenStore.
type StoreOptions struct {
	// Path is the configuration file (ftbridged --config). The Store keeps
	// it equal to the current version.
	Path string
	// Dir holds the history and the pending state; created 0700.
	Dir string
	// Event, if set, is told of applies, confirmations, rollbacks and
	// fallbacks: kind is "config-applied", "config-confirmed",
	// "config-rolled-back" or "config-fallback".
	Event func(kind, detail string)
}

// Store is the versioned configuration: the current document, the history of
// applied versions and the safe-apply state. Its methods are safe for
// concurrent use.
type Store struct {
	path, dir string
	event     func(kind, detail string)

	mu      sync.Mutex
	apply   Applier
	entries []*Entry // ascending by Version
	current *Entry
	pending *Pending
	cancel  func() bool // stops the rollback timer
	keep    int

	// Test hooks.
	now       func() time.Time
	afterFunc func(time.Duration, func()) func() bool
}

const pendingFile = "pending.json"

// OpenStore opens the history in opts.Dir and settles the current version:
//
//   - a change left pending by a previous run is rolled back to the version
//     before it (it was never confirmed);
//   - otherwise the configuration file is read; a valid file that differs
//     from the newest stored version becomes a new version (SourceFile);
//   - a missing, torn or invalid file falls back to the newest stored
//     version, which is written back to the file (the bad file is kept
//     beside it as FILE.bad), with a "config-fallback" event.
//
// With no stored version, a bad file is an error, as for Load. The Store
// applies nothing at open: the caller starts the system with Current and
// then calls SetApplier.
func OpenStore(opts StoreOptions) (*Store, error) {
	s := &Store{
		path: opts.Path, dir: opts.Dir, event: opts.Event,
		now:       time.Now,
		afterFunc: func(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop },
		keep:      DefaultHistory,
	}
	if s.event == nil {
		s.event = func(string, string) {}
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, err
	}
	if err := s.loadEntries(); err != nil {
		return nil, err
	}
	if p, err := s.readPending(); err != nil || p != nil {
		// A change was pending when the previous run ended: it was not
		// confirmed, so the version before it comes back.
		var prev *Entry
		if p != nil {
			prev = s.entry(p.Previous)
		}
		if prev != nil {
			if err := prev.Config.Save(s.path); err != nil {
				return nil, err
			}
			e, err := s.record(prev.Config, SourceAutoRollback, fmt.Sprintf("version %d was not confirmed before a restart", p.Version))
			if err != nil {
				return nil, err
			}
			if err := os.Remove(filepath.Join(s.dir, pendingFile)); err != nil && !os.IsNotExist(err) {
				return nil, err
			}
			s.current = e
			s.event("config-rolled-back", fmt.Sprintf("version %d was not confirmed before the restart; version %d restored as %d", p.Version, p.Previous, e.Version))
			s.keep = e.Config.ManagementSettings().History
			s.trim()
			return s, nil
		}
		os.Remove(filepath.Join(s.dir, pendingFile))
	}
	cfg, ferr := Load(s.path)
	newest := s.newest()
	switch {
	case ferr == nil && newest != nil && sameDocument(cfg, newest.Config):
		s.current = newest
	case ferr == nil:
		e, err := s.record(cfg, SourceFile, "")
		if err != nil {
			return nil, err
		}
		s.current = e
	case newest != nil:
		if data, err := os.ReadFile(s.path); err == nil {
			_ = WriteFileAtomic(s.path+".bad", data, 0o600)
		}
		if err := newest.Config.Save(s.path); err != nil {
			return nil, fmt.Errorf("restoring version %d after %v: %w", newest.Version, ferr, err)
		}
		s.current = newest
		s.event("config-fallback", fmt.Sprintf("%v; started with version %d", ferr, newest.Version))
	default:
		return nil, ferr
	}
	s.keep = s.current.Config.ManagementSettings().History
	s.trim()
	return s, nil
}

// SetApplier sets the function that puts configurations into effect.
// Until it is set, applies only store and write the document.
func (s *Store) SetApplier(a Applier) {
	s.mu.Lock()
	s.apply = a
	s.mu.Unlock()
}

// Current returns the applied version.
func (s *Store) Current() Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *s.current
}

// Pending returns the change awaiting confirmation, or nil.
func (s *Store) Pending() *Pending {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending == nil {
		return nil
	}
	p := *s.pending
	return &p
}

// History returns the stored versions, newest first.
func (s *Store) History() []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Entry, 0, len(s.entries))
	for i := len(s.entries) - 1; i >= 0; i-- {
		out = append(out, *s.entries[i])
	}
	return out
}

// Version returns one stored version.
func (s *Store) Version(v int) (Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entry(v)
	if e == nil {
		return Entry{}, fmt.Errorf("version %d: %w", v, ErrNoVersion)
	}
	return *e, nil
}

// Apply validates cfg, writes it to the configuration file and the history
// and puts it into effect. With a ConfirmTimeout the change is pending until
// Confirm; if the timer ends first the previous version is applied again. A
// document equal to the current one changes nothing. If putting it into
// effect fails, the previous version is restored and the error returned.
func (s *Store) Apply(cfg *Config, o ApplyOptions) (ApplyResult, error) {
	if err := cfg.Validate(); err != nil {
		return ApplyResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending != nil {
		return ApplyResult{}, ErrPending
	}
	if sameDocument(cfg, s.current.Config) {
		return ApplyResult{Version: s.current.Version}, nil
	}
	return s.applyLocked(cfg, o)
}

func (s *Store) applyLocked(cfg *Config, o ApplyOptions) (ApplyResult, error) {
	if o.Source == "" {
		o.Source = SourceAPI
	}
	prev := s.current
	if o.ConfirmTimeout > 0 {
		// The pending state goes to disk before the file: a crash
		// anywhere from here to the end must bring back prev at restart,
		// not keep a change nobody confirmed.
		next := 1
		if n := s.newest(); n != nil {
			next = n.Version + 1
		}
		if err := s.writePending(&Pending{Version: next, Previous: prev.Version, ConfirmBy: s.now().Add(o.ConfirmTimeout)}); err != nil {
			return ApplyResult{}, err
		}
	}
	// Write the file before applying: the box must boot with what runs.
	if err := cfg.Save(s.path); err != nil {
		s.dropPendingFile(o)
		return ApplyResult{}, err
	}
	restarted := false
	if s.apply != nil {
		var err error
		restarted, err = s.apply(prev.Config, cfg)
		if err != nil {
			// Put the previous version back, in the file and in effect.
			if serr := prev.Config.Save(s.path); serr != nil {
				err = fmt.Errorf("%w (restoring the file also failed: %v)", err, serr)
			}
			if _, rerr := s.apply(cfg, prev.Config); rerr != nil {
				err = fmt.Errorf("%w (restoring version %d also failed: %v)", err, prev.Version, rerr)
			}
			s.dropPendingFile(o)
			return ApplyResult{}, fmt.Errorf("applying the configuration: %w", err)
		}
	}
	e, err := s.record(cfg, o.Source, o.Comment)
	if err != nil {
		s.dropPendingFile(o)
		return ApplyResult{}, err
	}
	s.current = e
	res := ApplyResult{Version: e.Version, DataplaneRestarted: restarted}
	detail := fmt.Sprintf("version %d (%s)", e.Version, o.Source)
	if restarted {
		detail += "; dataplane restarted"
	}
	if o.ConfirmTimeout > 0 {
		p := &Pending{Version: e.Version, Previous: prev.Version, ConfirmBy: s.now().Add(o.ConfirmTimeout), DataplaneRestarted: restarted}
		if err := s.writePending(p); err != nil {
			return res, err
		}
		s.pending = p
		version := e.Version
		s.cancel = s.afterFunc(o.ConfirmTimeout, func() { s.expire(version) })
		res.Pending = p
		detail += fmt.Sprintf("; to be confirmed within %v", o.ConfirmTimeout)
	}
	s.keep = cfg.ManagementSettings().History
	s.trim()
	s.event("config-applied", detail)
	return res, nil
}

func (s *Store) writePending(p *Pending) error {
	data, _ := json.MarshalIndent(p, "", "  ")
	return WriteFileAtomic(filepath.Join(s.dir, pendingFile), append(data, '\n'), 0o600)
}

// dropPendingFile removes the pending state written ahead of a safe apply
// that failed; a failed apply leaves nothing pending.
func (s *Store) dropPendingFile(o ApplyOptions) {
	if o.ConfirmTimeout > 0 {
		os.Remove(filepath.Join(s.dir, pendingFile))
	}
}

// expire rolls back pending version v when its timer ends.
func (s *Store) expire(v int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending == nil || s.pending.Version != v {
		return
	}
	p := s.clearPendingLocked()
	prev := s.entry(p.Previous)
	if prev == nil {
		s.event("config-rolled-back", fmt.Sprintf("version %d was not confirmed, but version %d is gone; keeping it", v, p.Previous))
		return
	}
	res, err := s.applyLocked(prev.Config, ApplyOptions{Source: SourceAutoRollback, Comment: fmt.Sprintf("version %d was not confirmed", v)})
	if err != nil {
		s.event("config-rolled-back", fmt.Sprintf("version %d was not confirmed; restoring version %d failed: %v", v, p.Previous, err))
		return
	}
	s.event("config-rolled-back", fmt.Sprintf("version %d was not confirmed in time; version %d restored as %d", v, p.Previous, res.Version))
}

// Confirm keeps the pending change.
func (s *Store) Confirm() (Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending == nil {
		return Entry{}, ErrNoPending
	}
	p := s.clearPendingLocked()
	s.event("config-confirmed", fmt.Sprintf("version %d", p.Version))
	return *s.current, nil
}

// clearPendingLocked stops the timer and forgets the pending state.
func (s *Store) clearPendingLocked() *Pending {
	p := s.pending
	if s.cancel != nil {
		s.cancel()
	}
	s.pending, s.cancel = nil, nil
	os.Remove(filepath.Join(s.dir, pendingFile))
	return p
}

// Rollback applies stored version v again, as a new version. v == 0 means
// the version before the current one (or, while a change is pending, the
// version it replaced). A pending change is abandoned first.
func (s *Store) Rollback(v int, o ApplyOptions) (ApplyResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v == 0 {
		if s.pending != nil {
			v = s.pending.Previous
		} else {
			for i := len(s.entries) - 1; i >= 0; i-- {
				if s.entries[i].Version < s.current.Version {
					v = s.entries[i].Version
					break
				}
			}
		}
		if v == 0 {
			return ApplyResult{}, fmt.Errorf("no version before %d: %w", s.current.Version, ErrNoVersion)
		}
	}
	e := s.entry(v)
	if e == nil {
		return ApplyResult{}, fmt.Errorf("version %d: %w", v, ErrNoVersion)
	}
	if s.pending != nil {
		s.clearPendingLocked()
	}
	if o.Source == "" {
		o.Source = SourceRollback
	}
	if o.Comment == "" {
		o.Comment = fmt.Sprintf("rollback to version %d", v)
	}
	return s.applyLocked(e.Config, o)
}

// Close stops the confirmation timer. A pending change stays pending on
// disk, so the next OpenStore rolls it back.
func (s *Store) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		s.cancel()
		s.cancel = nil
	}
}

func (s *Store) entry(v int) *Entry {
	for _, e := range s.entries {
		if e.Version == v {
			return e
		}
	}
	return nil
}

func (s *Store) newest() *Entry {
	if len(s.entries) == 0 {
		return nil
	}
	return s.entries[len(s.entries)-1]
}

// record stores cfg as the next version.
func (s *Store) record(cfg *Config, source, comment string) (*Entry, error) {
	v := 1
	if n := s.newest(); n != nil {
		v = n.Version + 1
	}
	doc, err := cfg.Marshal()
	if err != nil {
		return nil, err
	}
	e := &Entry{Version: v, Applied: s.now().UTC(), Source: source, Comment: comment, Config: cfg}
	data, err := json.MarshalIndent(struct {
		Version int             `json:"version"`
		Applied time.Time       `json:"applied"`
		Source  string          `json:"source"`
		Comment string          `json:"comment,omitempty"`
		Config  json.RawMessage `json:"config"`
	}{e.Version, e.Applied, e.Source, e.Comment, doc}, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := WriteFileAtomic(filepath.Join(s.dir, entryName(v)), append(data, '\n'), 0o600); err != nil {
		return nil, err
	}
	s.entries = append(s.entries, e)
	return e, nil
}

func entryName(v int) string { return fmt.Sprintf("v%06d.json", v) }

// loadEntries reads the stored versions; unreadable ones are skipped with a
// "config-fallback" event, so one bad file never costs the whole history.
func (s *Store) loadEntries() error {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return err
	}
	for _, de := range ents {
		name := de.Name()
		if !strings.HasPrefix(name, "v") || !strings.HasSuffix(name, ".json") {
			continue
		}
		v, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(name, "v"), ".json"))
		if err != nil || v <= 0 {
			continue
		}
		e, err := readEntry(filepath.Join(s.dir, name))
		if err == nil && e.Version != v {
			err = fmt.Errorf("holds version %d", e.Version)
		}
		if err != nil {
			s.event("config-fallback", fmt.Sprintf("history %s skipped: %v", name, err))
			continue
		}
		s.entries = append(s.entries, e)
	}
	sort.Slice(s.entries, func(i, j int) bool { return s.entries[i].Version < s.entries[j].Version })
	return nil
}

func readEntry(path string) (*Entry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var raw struct {
		Version int             `json:"version"`
		Applied time.Time       `json:"applied"`
		Source  string          `json:"source"`
		Comment string          `json:"comment"`
		Config  json.RawMessage `json:"config"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	cfg, err := Parse(raw.Config)
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Entry{Version: raw.Version, Applied: raw.Applied, Source: raw.Source, Comment: raw.Comment, Config: cfg}, nil
}

func (s *Store) readPending() (*Pending, error) {
	data, err := os.ReadFile(filepath.Join(s.dir, pendingFile))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var p Pending
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// trim deletes the oldest versions beyond keep, never the current one or
// the one a pending change would restore.
func (s *Store) trim() {
	keep := max(s.keep, minHistory)
	for len(s.entries) > keep {
		e := s.entries[0]
		if e == s.current || (s.pending != nil && e.Version == s.pending.Previous) {
			break
		}
		if err := os.Remove(filepath.Join(s.dir, entryName(e.Version))); err != nil && !os.IsNotExist(err) {
			return
		}
		s.entries = s.entries[1:]
	}
}

// sameDocument reports whether two configurations have the same document.
func sameDocument(a, b *Config) bool {
	da, err1 := a.Marshal()
	db, err2 := b.Marshal()
	return err1 == nil && err2 == nil && bytes.Equal(da, db)
}

// DataplaneEqual reports whether a and b configure the dataplane the same
// way, so that going from one to the other needs no dataplane restart.
func DataplaneEqual(a, b *Config) bool {
	return reflect.DeepEqual(a.Dataplane(), b.Dataplane())
}
