package config

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ftbridge/ftbridge/firmware/events"
)

// crashChild is the body of the child process of TestStoreCrashKill9: it
// opens the stores as the daemon does and then applies configuration
// versions (every third one with safe apply, then confirmed) and appends
// events as fast as it can, reporting each step on stdout before and after
// it, until it is killed.
func crashChild(dir string, run int) {
	say := func(format string, args ...any) { fmt.Fprintf(os.Stdout, format+"\n", args...) }
	ev, err := events.Open(events.Options{Dir: filepath.Join(dir, "events"), MaxEvents: 200})
	if err != nil {
		say("error %v", err)
		os.Exit(3)
	}
	s, err := OpenStore(StoreOptions{Path: filepath.Join(dir, "config.json"), Dir: filepath.Join(dir, "data", "config")})
	if err != nil {
		say("error %v", err)
		os.Exit(3)
	}
	// Applying takes a moment on the box (listeners, dataplane); a short
	// sleep keeps that window in reach of the kill.
	s.SetApplier(func(old, new *Config) (bool, error) { time.Sleep(200 * time.Microsecond); return false, nil })
	say("open %d", key(s.Current().Config))
	last, _ := strconv.Atoi(os.Getenv("FTBRIDGE_TEST_CRASH_LASTEV"))
	for i := 1; ; i++ {
		port := 10000 + run*1000 + i
		safe := i%3 == 0
		say("applying %d %v", port, safe)
		o := ApplyOptions{}
		if safe {
			o.ConfirmTimeout = time.Hour
		}
		if _, err := s.Apply(withPort(port), o); err != nil {
			say("error %v", err)
			os.Exit(3)
		}
		if safe {
			say("confirming %d", port)
			if _, err := s.Confirm(); err != nil {
				say("error %v", err)
				os.Exit(3)
			}
		}
		say("applied %d", port)
		for j := 0; j < 3; j++ {
			last++
			if _, err := ev.Add(events.Event{Kind: "operator-action", Detail: strconv.Itoa(last)}); err != nil {
				say("error %v", err)
				os.Exit(3)
			}
			say("event %d", last)
		}
	}
}

// TestStoreCrashKill9 kills a process that writes configuration versions
// and events with SIGKILL at random moments, 30 times. After each kill the
// stores open as the daemon opens them: the configuration is the last
// version applied or the one being applied (never a broken file, never a
// fallback), an unconfirmed safe change is not kept, the history is
// contiguous and valid, and the event log opens with every acknowledged
// event, in order.
func TestStoreCrashKill9(t *testing.T) {
	if d := os.Getenv("FTBRIDGE_TEST_STORE_CRASH_DIR"); d != "" {
		run, _ := strconv.Atoi(os.Getenv("FTBRIDGE_TEST_CRASH_RUN"))
		crashChild(d, run)
		return
	}
	if testing.Short() {
		t.Skip("kills 30 child processes")
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.json")
	if err := os.WriteFile(cfgPath, []byte(storeDoc), 0o600); err != nil {
		t.Fatal(err)
	}
	const kills = 30
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 8))
	lastEv := 0
	applies := 0
	for run := 1; run <= kills; run++ {
		lines := runAndKill(t, run, dir, lastEv, time.Duration(5+rng.IntN(120))*time.Millisecond)
		// What the child said before it died.
		open, applying, applied, confirming, ackedEv := -1, -1, -1, -1, lastEv
		safe := false
		for _, l := range lines {
			f := strings.Fields(l)
			if len(f) < 2 {
				continue
			}
			n, _ := strconv.Atoi(f[1])
			switch f[0] {
			case "error":
				t.Fatalf("run %d: the child failed: %s", run, l)
			case "open":
				open = n
			case "applying":
				applying, safe = n, len(f) > 2 && f[2] == "true"
			case "confirming":
				confirming = n
			case "applied":
				applied = n
				applies++
			case "event":
				ackedEv = n
			}
		}
		if open < 0 {
			t.Logf("run %d: killed before the store opened", run)
			continue
		}
		before := open
		if applied > 0 {
			before = applied
		}
		allowed := map[int]bool{before: true}
		if applying > before && (!safe || confirming == applying) {
			// A plain apply in flight may have landed, and so may a
			// safe one whose confirmation was under way; a safe one
			// not yet confirmed must be undone by the restart.
			allowed[applying] = true
		}
		var fallbacks []string
		s, err := OpenStore(StoreOptions{Path: cfgPath, Dir: filepath.Join(dir, "data", "config"), Event: func(kind, detail string) {
			if kind == "config-fallback" {
				fallbacks = append(fallbacks, detail)
			}
		}})
		if err != nil {
			t.Fatalf("run %d: the configuration store does not open after the kill: %v", run, err)
		}
		cur := s.Current()
		got := key(cur.Config)
		if !allowed[got] {
			t.Errorf("run %d: current configuration %d; the child had applied %d and was applying %d (safe %v)", run, got, before, applying, safe)
		}
		if fk := fileKey(t, cfgPath); fk != got {
			t.Errorf("run %d: the file holds %d, the store %d", run, fk, got)
		}
		if len(fallbacks) > 0 {
			t.Errorf("run %d: opening fell back: %q", run, fallbacks)
		}
		h := s.History()
		if len(h) == 0 || h[0].Version != cur.Version {
			t.Errorf("run %d: current version %d is not the newest of %d", run, cur.Version, len(h))
		}
		for i := 1; i < len(h); i++ {
			if h[i].Version != h[i-1].Version-1 {
				t.Errorf("run %d: history not contiguous: %d after %d", run, h[i].Version, h[i-1].Version)
			}
		}
		for _, e := range h {
			if err := e.Config.Validate(); err != nil {
				t.Errorf("run %d: history version %d: %v", run, e.Version, err)
			}
		}
		if s.Pending() != nil {
			t.Errorf("run %d: a change is pending after a restart", run)
		}
		s.Close()
		lastEv = checkEvents(t, run, filepath.Join(dir, "events"), ackedEv)
		if t.Failed() {
			t.FailNow()
		}
	}
	if applies < kills {
		t.Errorf("only %d applies completed over %d runs: the kills came too early to test much", applies, kills)
	}
	t.Logf("%d kills, %d applies completed, %d events", kills, applies, lastEv)
}

// runAndKill starts the child for one run and kills it with SIGKILL
// after delay from its first line; it returns the child's stdout.
func runAndKill(t *testing.T, run int, dir string, lastEv int, delay time.Duration) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestStoreCrashKill9$")
	cmd.Env = append(os.Environ(), "FTBRIDGE_TEST_STORE_CRASH_DIR="+dir, fmt.Sprintf("FTBRIDGE_TEST_CRASH_RUN=%d", run),
		fmt.Sprintf("FTBRIDGE_TEST_CRASH_LASTEV=%d", lastEv))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	var mu sync.Mutex
	first := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		once := sync.Once{}
		for sc.Scan() {
			mu.Lock()
			lines = append(lines, sc.Text())
			mu.Unlock()
			once.Do(func() { close(first) })
		}
		once.Do(func() { close(first) })
	}()
	select {
	case <-first:
	case <-time.After(10 * time.Second):
	}
	time.Sleep(delay)
	cmd.Process.Signal(syscall.SIGKILL)
	<-done
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		t.Fatalf("run %d: the child was not killed: %v\n%s", run, err, strings.Join(lines, "\n"))
	}
	mu.Lock()
	defer mu.Unlock()
	return lines
}

// checkEvents opens the event log as the daemon does after a crash: it
// must open, hold every event the child acknowledged, in order, and
// return the newest number.
func checkEvents(t *testing.T, run int, dir string, acked int) int {
	t.Helper()
	ev, err := events.Open(events.Options{Dir: dir, MaxEvents: 200})
	if err != nil {
		t.Fatalf("run %d: the event log does not open after the kill: %v", run, err)
	}
	defer ev.Close()
	all := ev.Query(events.Query{})
	last, prevSeq := 0, uint64(0)
	for _, e := range all {
		if e.Seq <= prevSeq {
			t.Errorf("run %d: event seq %d after %d", run, e.Seq, prevSeq)
		}
		prevSeq = e.Seq
		if e.Kind != "operator-action" {
			continue
		}
		n, _ := strconv.Atoi(e.Detail)
		if n <= last {
			t.Errorf("run %d: event %d after %d", run, n, last)
		}
		last = n
	}
	if acked > 0 && last < acked {
		t.Errorf("run %d: the child acknowledged event %d, the log ends at %d", run, acked, last)
	}
	if ev.Skipped() != 0 {
		t.Errorf("run %d: %d damaged lines in the event log", run, ev.Skipped())
	}
	return max(last, acked)
}
