package mgmt

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftbridge/ftbridge/firmware/events"
)

func TestImportUpdateEvents(t *testing.T) {
	dir := t.TempDir()
	log, mark := filepath.Join(dir, "update.jsonl"), filepath.Join(dir, "update.imported")
	var got []events.Event
	add := func(ev events.Event) { got = append(got, ev) }
	if err := importUpdateEvents(log, mark, add); err != nil || len(got) != 0 {
		t.Fatalf("no log: %v %v", got, err)
	}
	committed := `{"time":"2026-01-02T03:04:05Z","kind":"update.committed","slot":"B","gen":2,"message":"update in slot B (generation 2) is healthy and committed"}` + "\n"
	os.WriteFile(log, []byte(committed+`{"time":"2026-01-02T03:05:00Z","kind":"update.rollback","slot":"A","gen":3,"mess`), 0o644)
	if err := importUpdateEvents(log, mark, add); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Kind != "update.committed" || got[0].Reason != "slot B" || !strings.Contains(got[0].Detail, "committed") || got[0].Time.Minute() != 4 {
		t.Fatalf("first import (the torn last line must wait): %+v", got)
	}
	// Nothing new: nothing imported twice.
	importUpdateEvents(log, mark, add)
	if len(got) != 1 {
		t.Fatalf("imported twice: %+v", got)
	}
	// The torn line completed.
	os.WriteFile(log, []byte(committed+`{"time":"2026-01-02T03:05:00Z","kind":"update.rollback","slot":"A","gen":3,"message":"rolled back to slot B"}`+"\n"), 0o644)
	importUpdateEvents(log, mark, add)
	if len(got) != 2 || got[1].Kind != "update.rollback" || got[1].Detail != "rolled back to slot B" {
		t.Fatalf("second import: %+v", got)
	}
	// A replaced (shorter) log is read from its start.
	os.WriteFile(log, []byte(`{"kind":"update.committed","slot":"A","gen":4,"message":"m"}`+"\n"), 0o644)
	importUpdateEvents(log, mark, add)
	if len(got) != 3 || got[2].Reason != "slot A" {
		t.Fatalf("after the log was replaced: %+v", got)
	}
	if fi, err := os.Stat(mark); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mark: %v %v", fi, err)
	}
}
