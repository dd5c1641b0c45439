package events

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func mustOpen(t *testing.T, dir string, max int) *Store {
	t.Helper()
	s, err := Open(Options{Dir: dir, MaxEvents: max})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func add(t *testing.T, s *Store, ev Event) Event {
	t.Helper()
	ev, err := s.Add(ev)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestAddQuery(t *testing.T) {
	s := mustOpen(t, t.TempDir(), 100)
	t0 := time.Date(2025, 1, 1, 10, 0, 0, 0, time.UTC)
	add(t, s, Event{Kind: "replica-down", Replica: "a", Time: t0})
	add(t, s, Event{Kind: "failover", Replica: "b", From: "a", Time: t0.Add(time.Second)})
	add(t, s, Event{Kind: "conn-established", Conn: "x->y", Time: t0.Add(2 * time.Second)})
	ev := add(t, s, Event{Kind: "login", User: "admin", Time: t0.Add(3 * time.Second)})
	if ev.Seq != 4 || ev.Category != CategoryAuth {
		t.Errorf("Add = %+v", ev)
	}
	seqs := func(q Query) string {
		var out []string
		for _, e := range s.Query(q) {
			out = append(out, fmt.Sprint(e.Seq))
		}
		return strings.Join(out, ",")
	}
	for _, tt := range []struct {
		q    Query
		want string
	}{
		{Query{}, "1,2,4"}, // conn-established is not stored
		{Query{Kinds: []string{"failover"}}, "2"},
		{Query{Categories: []string{CategoryHealth, CategoryAuth}}, "1,4"},
		{Query{Replica: "a"}, "1,2"},
		{Query{After: 1}, "2,4"},
		{Query{Since: t0.Add(time.Second)}, "2,4"},
		{Query{Until: t0.Add(time.Second)}, "1,2"},
		{Query{Limit: 2}, "2,4"},
	} {
		if got := seqs(tt.q); got != tt.want {
			t.Errorf("Query(%+v) = %s, want %s", tt.q, got, tt.want)
		}
	}
	if s.LastSeq() != 4 {
		t.Errorf("LastSeq = %d", s.LastSeq())
	}
}

func TestPersistAndReopen(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, 100)
	for i := 0; i < 5; i++ {
		add(t, s, Event{Kind: "failover", Detail: fmt.Sprint(i)})
	}
	s.Close()
	s = mustOpen(t, dir, 100)
	got := s.Query(Query{})
	if len(got) != 5 || got[4].Detail != "4" || got[4].Seq != 5 {
		t.Fatalf("after reopen: %+v", got)
	}
	if ev := add(t, s, Event{Kind: "reboot"}); ev.Seq != 6 {
		t.Errorf("seq after reopen = %d", ev.Seq)
	}
}

// TestTornTail simulates a crash in the middle of a write: the partial last
// line is dropped, the file cut back, and the next event is readable.
func TestTornTail(t *testing.T) {
	for name, tail := range map[string]string{
		"no newline":   `{"seq":4,"time":"2025-01-01T00:00:00Z","kind":"fail`,
		"garbage line": "\x00\x00\x00\n",
		"half json":    `{"seq":4,"ki` + "\n",
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s := mustOpen(t, dir, 100)
			for i := 0; i < 3; i++ {
				add(t, s, Event{Kind: "failover"})
			}
			s.Close()
			f, err := os.OpenFile(filepath.Join(dir, curName), os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString(tail)
			f.Close()
			s = mustOpen(t, dir, 100)
			if n := len(s.Query(Query{})); n != 3 {
				t.Fatalf("%d events after a torn tail, want 3", n)
			}
			add(t, s, Event{Kind: "replica-up"})
			s.Close()
			s = mustOpen(t, dir, 100)
			got := s.Query(Query{})
			if len(got) != 4 || got[3].Kind != "replica-up" || got[3].Seq != 4 {
				t.Fatalf("after append past the torn tail: %+v", got)
			}
			if s.Skipped() != 0 {
				t.Errorf("Skipped = %d after the file was cut back", s.Skipped())
			}
		})
	}
}

func TestDamagedMiddleLineSkipped(t *testing.T) {
	dir := t.TempDir()
	data := `{"seq":1,"time":"2025-01-01T00:00:00Z","kind":"failover","category":"failover"}
not json at all
{"seq":3,"time":"2025-01-01T00:00:01Z","kind":"failover","category":"failover"}
`
	os.WriteFile(filepath.Join(dir, curName), []byte(data), 0o600)
	s := mustOpen(t, dir, 100)
	if got := s.Query(Query{}); len(got) != 2 || got[1].Seq != 3 || s.Skipped() != 1 {
		t.Fatalf("got %+v, skipped %d", got, s.Skipped())
	}
}

// TestBounded adds far more events than the bound: memory and disk stay
// bounded, and the newest survive a reopen.
func TestBounded(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, 10)
	for i := 0; i < 95; i++ {
		add(t, s, Event{Kind: "failover", Detail: strings.Repeat("x", 5000)})
	}
	got := s.Query(Query{})
	if len(got) != 10 || got[0].Seq != 86 || got[9].Seq != 95 {
		t.Fatalf("memory holds %d events from %d", len(got), got[0].Seq)
	}
	if len(got[0].Detail) != maxDetail {
		t.Errorf("detail of %d bytes stored", len(got[0].Detail))
	}
	s.Close()
	lines := 0
	var size int64
	for _, name := range []string{curName, oldName} {
		data, _ := os.ReadFile(filepath.Join(dir, name))
		lines += strings.Count(string(data), "\n")
		size += int64(len(data))
	}
	if lines > 10 || size > 10*(maxDetail+512) {
		t.Errorf("disk holds %d lines, %d bytes", lines, size)
	}
	s = mustOpen(t, dir, 10)
	got = s.Query(Query{})
	if len(got) == 0 || got[len(got)-1].Seq != 95 {
		t.Fatalf("after reopen: %d events", len(got))
	}
	if ev := add(t, s, Event{Kind: "x"}); ev.Seq != 96 {
		t.Errorf("seq %d", ev.Seq)
	}
}

func TestSubscribe(t *testing.T) {
	s := mustOpen(t, t.TempDir(), 100)
	add(t, s, Event{Kind: "failover"})
	backlog, ch, cancel := s.SubscribeFrom(Query{After: 0}, 2)
	defer cancel()
	if len(backlog) != 1 || backlog[0].Seq != 1 {
		t.Fatalf("backlog %+v", backlog)
	}
	add(t, s, Event{Kind: "conn-established"}) // streamed though not stored
	add(t, s, Event{Kind: "replica-up"})
	add(t, s, Event{Kind: "replica-down"}) // buffer of 2: this one is dropped
	if e := <-ch; e.Seq != 2 || e.Kind != "conn-established" {
		t.Errorf("first live event %+v", e)
	}
	if e := <-ch; e.Seq != 3 {
		t.Errorf("second live event %+v", e)
	}
	if s.Dropped() != 1 {
		t.Errorf("Dropped = %d", s.Dropped())
	}
	cancel()
	cancel() // twice is fine
	add(t, s, Event{Kind: "x"})
	select {
	case e := <-ch:
		t.Errorf("event after cancel: %+v", e)
	default:
	}
}

func TestCloseKeepsMemory(t *testing.T) {
	s := mustOpen(t, t.TempDir(), 100)
	s.Close()
	if _, err := s.Add(Event{Kind: "stopped"}); err != nil {
		t.Errorf("Add after Close = %v", err)
	}
	if len(s.Query(Query{})) != 1 {
		t.Error("event after Close not kept in memory")
	}
}
