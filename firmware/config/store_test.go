package config

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const storeDoc = `{
  "uplink": "port0",
  "replicas": [ {"name": "a", "interface": "port1"}, {"name": "b", "interface": "port2"} ],
  "services": [ {"address": "198.18.0.10", "ports": [6379, 80]} ]
}`

// storeEnv is a configuration file, a history directory, a fake timer and a
// recorder of events and applies.
type storeEnv struct {
	t       *testing.T
	path    string
	dir     string
	mu      sync.Mutex
	events  []string
	applied []string // "old->new" listen addresses or ports, see key
	fail    error
	timers  []func()
	now     time.Time
}

func newStoreEnv(t *testing.T) *storeEnv {
	d := t.TempDir()
	env := &storeEnv{t: t, path: filepath.Join(d, "config.json"), dir: filepath.Join(d, "data", "config"), now: time.Date(2025, 1, 1, 10, 0, 0, 0, time.UTC)}
	if err := os.WriteFile(env.path, []byte(storeDoc), 0o600); err != nil {
		t.Fatal(err)
	}
	return env
}

// key identifies a test configuration by its first port.
func key(c *Config) int { return c.Services[0].Ports[0] }

func withPort(p int) *Config {
	c, err := Parse([]byte(storeDoc))
	if err != nil {
		panic(err)
	}
	c.Services[0].Ports[0] = p
	return c
}

func (env *storeEnv) open() (*Store, error) {
	s, err := OpenStore(StoreOptions{Path: env.path, Dir: env.dir, Event: func(kind, detail string) {
		env.mu.Lock()
		env.events = append(env.events, kind+": "+detail)
		env.mu.Unlock()
	}})
	if err != nil {
		return nil, err
	}
	s.now = func() time.Time { return env.now }
	s.afterFunc = func(d time.Duration, f func()) func() bool {
		env.timers = append(env.timers, f)
		i := len(env.timers) - 1
		return func() bool { env.timers[i] = nil; return true }
	}
	s.SetApplier(func(old, new *Config) (bool, error) {
		if env.fail != nil {
			err := env.fail
			env.fail = nil
			return false, err
		}
		env.applied = append(env.applied, strconv.Itoa(key(old))+"->"+strconv.Itoa(key(new)))
		return !DataplaneEqual(old, new), nil
	})
	return s, nil
}

func (env *storeEnv) mustOpen() *Store {
	env.t.Helper()
	s, err := env.open()
	if err != nil {
		env.t.Fatal(err)
	}
	env.t.Cleanup(s.Close)
	return s
}

func (env *storeEnv) hasEvent(prefix string) bool {
	env.mu.Lock()
	defer env.mu.Unlock()
	for _, e := range env.events {
		if strings.HasPrefix(e, prefix) {
			return true
		}
	}
	return false
}

func fileKey(t *testing.T, path string) int {
	t.Helper()
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return key(c)
}

func TestStoreOpenRecordsFile(t *testing.T) {
	env := newStoreEnv(t)
	s := env.mustOpen()
	if cur := s.Current(); cur.Version != 1 || cur.Source != SourceFile || key(cur.Config) != 6379 {
		t.Fatalf("Current = %+v", cur)
	}
	s.Close()
	// The same file again is the same version.
	s = env.mustOpen()
	if v := s.Current().Version; v != 1 {
		t.Fatalf("reopen: version %d, want 1", v)
	}
	s.Close()
	// A hand-edited file becomes a new version.
	if err := withPort(7000).Save(env.path); err != nil {
		t.Fatal(err)
	}
	s = env.mustOpen()
	if cur := s.Current(); cur.Version != 2 || key(cur.Config) != 7000 || cur.Source != SourceFile {
		t.Fatalf("after edit: %+v", cur)
	}
	if h := s.History(); len(h) != 2 || h[0].Version != 2 || h[1].Version != 1 {
		t.Fatalf("History = %+v", h)
	}
}

// TestStoreCorruptFileFallsBack writes torn, invalid and missing files: each
// start falls back to the newest stored version, restores the file and
// reports it.
func TestStoreCorruptFileFallsBack(t *testing.T) {
	for name, damage := range map[string]func(path string) error{
		"truncated": func(p string) error { return os.WriteFile(p, []byte(storeDoc[:len(storeDoc)/2]), 0o600) },
		"empty":     func(p string) error { return os.WriteFile(p, nil, 0o600) },
		"garbage":   func(p string) error { return os.WriteFile(p, []byte("\x00\xff{{{"), 0o600) },
		"invalid": func(p string) error {
			return os.WriteFile(p, []byte(strings.Replace(storeDoc, "port2", "port1", 1)), 0o600)
		},
		"missing": os.Remove,
	} {
		t.Run(name, func(t *testing.T) {
			env := newStoreEnv(t)
			s := env.mustOpen()
			if _, err := s.Apply(withPort(7000), ApplyOptions{}); err != nil {
				t.Fatal(err)
			}
			s.Close()
			if err := damage(env.path); err != nil {
				t.Fatal(err)
			}
			s = env.mustOpen()
			if cur := s.Current(); cur.Version != 2 || key(cur.Config) != 7000 {
				t.Fatalf("Current = %+v, want version 2", cur)
			}
			if !env.hasEvent("config-fallback: ") {
				t.Errorf("no config-fallback event: %q", env.events)
			}
			if k := fileKey(t, env.path); k != 7000 {
				t.Errorf("file restored with port %d", k)
			}
			if name != "missing" {
				if _, err := os.Stat(env.path + ".bad"); err != nil {
					t.Errorf("bad file not kept: %v", err)
				}
			}
		})
	}
}

func TestStoreCorruptFileNoHistory(t *testing.T) {
	env := newStoreEnv(t)
	os.WriteFile(env.path, []byte(`{"uplink": `), 0o600)
	if _, err := env.open(); err == nil || !strings.Contains(err.Error(), env.path) {
		t.Fatalf("open with a torn file and no history = %v", err)
	}
}

func TestStoreCorruptHistoryEntrySkipped(t *testing.T) {
	env := newStoreEnv(t)
	s := env.mustOpen()
	s.Apply(withPort(7000), ApplyOptions{})
	s.Close()
	// Tear version 2: it is skipped, and the file (still port 7000) is
	// recorded anew.
	if err := os.WriteFile(filepath.Join(env.dir, entryName(2)), []byte(`{"version": 2, "config": {"upl`), 0o600); err != nil {
		t.Fatal(err)
	}
	s = env.mustOpen()
	if !env.hasEvent("config-fallback: history v000002.json skipped") {
		t.Errorf("events %q", env.events)
	}
	if cur := s.Current(); key(cur.Config) != 7000 {
		t.Errorf("Current = %+v", cur)
	}
}

func TestStoreSafeApplyRollsBack(t *testing.T) {
	env := newStoreEnv(t)
	s := env.mustOpen()
	res, err := s.Apply(withPort(7000), ApplyOptions{ConfirmTimeout: time.Minute, Comment: "try"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Version != 2 || res.Pending == nil || res.Pending.Previous != 1 || !res.DataplaneRestarted ||
		!res.Pending.ConfirmBy.Equal(env.now.Add(time.Minute)) {
		t.Fatalf("Apply = %+v %+v", res, res.Pending)
	}
	if k := fileKey(t, env.path); k != 7000 {
		t.Fatalf("file holds %d", k)
	}
	// A second change must wait.
	if _, err := s.Apply(withPort(8000), ApplyOptions{}); !errors.Is(err, ErrPending) {
		t.Fatalf("Apply while pending = %v", err)
	}
	// The timer ends: version 1 comes back as version 3.
	env.timers[0]()
	cur := s.Current()
	if cur.Version != 3 || key(cur.Config) != 6379 || cur.Source != SourceAutoRollback {
		t.Fatalf("after timeout: %+v", cur)
	}
	if s.Pending() != nil {
		t.Error("still pending")
	}
	if k := fileKey(t, env.path); k != 6379 {
		t.Errorf("file holds %d after rollback", k)
	}
	if got := strings.Join(env.applied, " "); got != "6379->7000 7000->6379" {
		t.Errorf("applies %q", got)
	}
	if !env.hasEvent("config-rolled-back: version 2 was not confirmed") {
		t.Errorf("events %q", env.events)
	}
	if _, err := os.Stat(filepath.Join(env.dir, pendingFile)); !os.IsNotExist(err) {
		t.Errorf("pending file left: %v", err)
	}
}

func TestStoreConfirm(t *testing.T) {
	env := newStoreEnv(t)
	s := env.mustOpen()
	if _, err := s.Confirm(); !errors.Is(err, ErrNoPending) {
		t.Fatalf("Confirm with nothing pending = %v", err)
	}
	s.Apply(withPort(7000), ApplyOptions{ConfirmTimeout: time.Minute})
	if e, err := s.Confirm(); err != nil || e.Version != 2 {
		t.Fatalf("Confirm = %+v, %v", e, err)
	}
	if env.timers[0] != nil {
		t.Error("timer not stopped")
	}
	if s.Current().Version != 2 || s.Pending() != nil {
		t.Error("confirm did not keep the change")
	}
	if _, err := os.Stat(filepath.Join(env.dir, pendingFile)); !os.IsNotExist(err) {
		t.Errorf("pending file left: %v", err)
	}
}

// TestStorePendingAtRestart: a daemon that dies (or is cut off and
// restarted) with a change pending comes back with the version before it.
func TestStorePendingAtRestart(t *testing.T) {
	env := newStoreEnv(t)
	s := env.mustOpen()
	s.Apply(withPort(7000), ApplyOptions{ConfirmTimeout: time.Minute})
	s.Close() // the process ends; the pending state stays on disk
	s = env.mustOpen()
	cur := s.Current()
	if key(cur.Config) != 6379 || cur.Source != SourceAutoRollback || cur.Version != 3 {
		t.Fatalf("after restart: %+v", cur)
	}
	if k := fileKey(t, env.path); k != 6379 {
		t.Errorf("file holds %d", k)
	}
	if !env.hasEvent("config-rolled-back: ") {
		t.Errorf("events %q", env.events)
	}
	if s.Pending() != nil {
		t.Error("pending after restart")
	}
}

func TestStoreRollback(t *testing.T) {
	env := newStoreEnv(t)
	s := env.mustOpen()
	if _, err := s.Rollback(0, ApplyOptions{}); !errors.Is(err, ErrNoVersion) {
		t.Fatalf("Rollback with one version = %v", err)
	}
	s.Apply(withPort(7000), ApplyOptions{})
	s.Apply(withPort(8000), ApplyOptions{})
	res, err := s.Rollback(0, ApplyOptions{})
	if err != nil || res.Version != 4 || key(s.Current().Config) != 7000 {
		t.Fatalf("Rollback(0) = %+v, %v; current %+v", res, err, s.Current())
	}
	if _, err := s.Rollback(1, ApplyOptions{}); err != nil || key(s.Current().Config) != 6379 {
		t.Fatalf("Rollback(1) = %v", err)
	}
	if _, err := s.Rollback(99, ApplyOptions{}); !errors.Is(err, ErrNoVersion) {
		t.Fatalf("Rollback(99) = %v", err)
	}
	// Rollback while pending abandons the pending change.
	s.Apply(withPort(9000), ApplyOptions{ConfirmTimeout: time.Minute})
	if _, err := s.Rollback(0, ApplyOptions{}); err != nil || key(s.Current().Config) != 6379 || s.Pending() != nil {
		t.Fatalf("Rollback while pending: %v, current %d", err, key(s.Current().Config))
	}
	if e, err := s.Version(2); err != nil || key(e.Config) != 7000 {
		t.Errorf("Version(2) = %+v, %v", e, err)
	}
}

func TestStoreApplyFailureRestores(t *testing.T) {
	env := newStoreEnv(t)
	s := env.mustOpen()
	env.fail = errors.New("no such interface")
	if _, err := s.Apply(withPort(7000), ApplyOptions{}); err == nil || !strings.Contains(err.Error(), "no such interface") {
		t.Fatalf("Apply = %v", err)
	}
	if cur := s.Current(); cur.Version != 1 {
		t.Errorf("Current = %+v", cur)
	}
	if k := fileKey(t, env.path); k != 6379 {
		t.Errorf("file holds %d after a failed apply", k)
	}
	if got := strings.Join(env.applied, " "); got != "7000->6379" {
		t.Errorf("applies %q, want the restore", got)
	}
}

func TestStoreApplyInvalidAndSame(t *testing.T) {
	env := newStoreEnv(t)
	s := env.mustOpen()
	bad := withPort(7000)
	bad.Replicas[1].Interface = "port1"
	_, err := s.Apply(bad, ApplyOptions{})
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "replicas[1].interface" {
		t.Fatalf("Apply(invalid) = %v", err)
	}
	if res, err := s.Apply(withPort(6379), ApplyOptions{ConfirmTimeout: time.Minute}); err != nil || res.Version != 1 || res.Pending != nil {
		t.Fatalf("Apply(same) = %+v, %v", res, err)
	}
	if len(env.applied) != 0 {
		t.Errorf("applies %q", env.applied)
	}
}

// TestStoreWriteCrash fails the file write at the rename (a power cut at
// the worst moment): the old file stays whole and no version is recorded.
func TestStoreWriteCrash(t *testing.T) {
	env := newStoreEnv(t)
	s := env.mustOpen()
	testHookBeforeRename = func(string) error { return errors.New("power cut") }
	_, err := s.Apply(withPort(7000), ApplyOptions{})
	testHookBeforeRename = nil
	if err == nil {
		t.Fatal("Apply succeeded through a failed write")
	}
	if k := fileKey(t, env.path); k != 6379 {
		t.Errorf("file holds %d", k)
	}
	if s.Current().Version != 1 || len(s.History()) != 1 {
		t.Errorf("a version was recorded: %+v", s.History())
	}
}

func TestStoreTrim(t *testing.T) {
	env := newStoreEnv(t)
	c := withPort(1000)
	c.Management = &Management{History: 3}
	if err := c.Save(env.path); err != nil {
		t.Fatal(err)
	}
	s := env.mustOpen()
	for p := 1001; p < 1010; p++ {
		n := withPort(p)
		n.Management = &Management{History: 3}
		if _, err := s.Apply(n, ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	h := s.History()
	if len(h) != 3 || h[0].Version != 10 || h[2].Version != 8 {
		t.Fatalf("History = %d entries from %d", len(h), h[0].Version)
	}
	files, _ := filepath.Glob(filepath.Join(env.dir, "v*.json"))
	if len(files) != 3 {
		t.Errorf("files %q", files)
	}
}
