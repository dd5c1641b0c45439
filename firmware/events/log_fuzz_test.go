package events

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ftbridge/ftbridge/firmware/internal/fuzzdir"
)

// FuzzOpenLog writes arbitrary bytes as the two log files (events.log.1
// and events.log, as a power cut, a bad sector or a hand edit can leave
// them) and opens the store. What must hold for any content:
//
//   - Open succeeds: damaged or torn lines are skipped or cut, never a
//     reason to refuse to start;
//   - every loaded event has a sequence number and can be encoded as JSON
//     (the API and the event stream serve them as they are);
//   - an event added now gets a sequence number above every loaded one;
//   - after Close and a reopen the store holds exactly the events it held
//     before plus the added one, which must be on a line of its own (a torn
//     tail cut off, not glued to), and no more lines are reported damaged
//     than at the first open.
func FuzzOpenLog(f *testing.F) {
	good := `{"seq":1,"time":"2025-01-01T00:00:00Z","kind":"failover","category":"failover","replica":"b","from":"a"}` + "\n" +
		`{"seq":2,"time":"2025-01-01T00:00:01.5+02:00","kind":"failover-done","category":"failover","stall_ms":4.7}` + "\n"
	f.Add([]byte(""), []byte(good))
	f.Add([]byte(good), []byte(`{"seq":3,"time":"2025-01-01T00:00:02Z","kind":"login","user":"admin"}`+"\n"))
	f.Add([]byte(""), []byte(good+`{"seq":3,"time":"2025-01-01T00:00:00Z","kind":"fail`))
	f.Add([]byte(""), []byte(good+"\x00\x00\x00\n"))
	f.Add([]byte(""), []byte(`{"seq":1,"kind":"a"}`+"\nnot json at all\n"+`{"seq":3,"kind":"b"}`+"\n"))
	f.Add([]byte(good), []byte(`{"seq":0,"kind":"zero"}`+"\n"+`{"seq":2,"ki`+"\n"))
	f.Add([]byte("\n\n\n"), []byte(`[1,2]`+"\n"+`{"seq":-1}`+"\n"+`{"seq":1.5}`+"\n"))
	f.Fuzz(func(t *testing.T, old, cur []byte) {
		if len(old)+len(cur) > 1<<20 {
			return
		}
		dir := fuzzdir.New(t, "events")
		if err := os.WriteFile(filepath.Join(dir, oldName), old, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, curName), cur, 0o600); err != nil {
			t.Fatal(err)
		}
		// A bound far above any input's line count: neither trimming nor
		// rotation may take part here.
		const maxEvents = 1 << 22
		s, err := Open(Options{Dir: dir, MaxEvents: maxEvents})
		if err != nil {
			t.Fatalf("Open refused the log: %v", err)
		}
		defer s.Close()
		loaded := s.Query(Query{})
		skipped := s.Skipped()
		if lines := bytes.Count(old, []byte("\n")) + bytes.Count(cur, []byte("\n")); len(loaded)+skipped > lines {
			t.Fatalf("%d events and %d skipped lines from %d lines", len(loaded), skipped, lines)
		}
		var top uint64
		for i, ev := range loaded {
			if ev.Seq == 0 {
				t.Fatalf("event %d loaded without a sequence number: %+v", i, ev)
			}
			if _, err := json.Marshal(ev); err != nil {
				t.Fatalf("loaded event %d cannot be served: %v", i, err)
			}
			top = max(top, ev.Seq)
		}
		// A fixed time: the current one would make the encoding's length,
		// and with it the coverage, vary from run to run.
		added, err := s.Add(Event{Kind: "replica-up", Replica: "a", Time: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)})
		if err != nil {
			t.Fatal(err)
		}
		if added.Seq <= top || s.LastSeq() != added.Seq {
			t.Fatalf("added event got seq %d (last %d) after events up to %d", added.Seq, s.LastSeq(), top)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}

		s2, err := Open(Options{Dir: dir, MaxEvents: maxEvents})
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		defer s2.Close()
		want, _ := json.Marshal(append(loaded, added))
		got, _ := json.Marshal(s2.Query(Query{}))
		if !bytes.Equal(got, want) {
			t.Fatalf("after reopen:\n%s\nwant\n%s", got, want)
		}
		if s2.Skipped() > skipped {
			t.Fatalf("%d damaged lines after the reopen, %d before", s2.Skipped(), skipped)
		}
		if s2.LastSeq() != added.Seq {
			t.Fatalf("LastSeq %d after reopen, want %d", s2.LastSeq(), added.Seq)
		}
	})
}
