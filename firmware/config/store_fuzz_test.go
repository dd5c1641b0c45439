package config

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ftbridge/ftbridge/firmware/internal/fuzzdir"
)

// FuzzOpenStore starts the configuration store over a data directory
// whose state is partly fuzzed: a good version 1 in the history (as any
// box that ever started has), then fuzzed bytes as the configuration file,
// as a newer history file v000002.json and as pending.json (a power cut, a
// bad sector, a hand edit, a file from another version). Since a good
// version exists, what must hold for any content:
//
//   - OpenStore succeeds: a bad file falls back, it never keeps the
//     appliance from starting;
//   - the current version is a valid document in the history, the history
//     is newest first without repeats, and the configuration file on
//     disk now holds exactly the current version (the store keeps them
//     equal, so the dataplane and the file never disagree);
//   - a restart changes nothing: reopening gives the same current version
//     and the same history.
func FuzzOpenStore(f *testing.F) {
	other := strings.Replace(storeDoc, "6379", "6380", 1)
	entry := func(v int, doc string) string {
		return `{"version": ` + strconv.Itoa(v) + `, "applied": "2025-01-01T10:00:00Z", "source": "api", "config": ` + doc + `}`
	}
	f.Add([]byte(storeDoc), []byte(""), []byte(""))
	f.Add([]byte(other), []byte(""), []byte(""))
	f.Add([]byte(other), []byte(entry(2, other)), []byte(""))
	f.Add([]byte(other), []byte(entry(2, other)), []byte(`{"version": 2, "previous": 1, "confirm_by": "2025-01-01T10:01:30Z"}`))
	f.Add([]byte(storeDoc), []byte(entry(3, other)), []byte(`{"version": 1, "previous": 2}`))
	f.Add([]byte(storeDoc[:40]), []byte(entry(2, `{"uplink": 7}`)), []byte(`{"previous": "x"}`))
	f.Add([]byte(""), []byte(entry(2, storeDoc)[:50]), []byte("\x00"))
	f.Fuzz(func(t *testing.T, file, hist, pending []byte) {
		if len(file)+len(hist)+len(pending) > 1<<20 {
			return
		}
		wd := time.AfterFunc(5*time.Second, func() { panic("TEMP hang") })
		defer wd.Stop()
		root := fuzzdir.New(t, "config")
		path, dir := filepath.Join(root, "config.json"), filepath.Join(root, "data", "config")
		if err := os.WriteFile(path, []byte(storeDoc), 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := OpenStore(StoreOptions{Path: path, Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		for name, data := range map[string][]byte{path: file, filepath.Join(dir, entryName(2)): hist, filepath.Join(dir, pendingFile): pending} {
			if len(data) == 0 && name != path {
				continue
			}
			if err := os.WriteFile(name, data, 0o600); err != nil {
				t.Fatal(err)
			}
		}

		check := func(when string) (int, []int) {
			t.Helper()
			s, err := OpenStore(StoreOptions{Path: path, Dir: dir})
			if err != nil {
				t.Fatalf("%s: OpenStore with a good version in the history: %v", when, err)
			}
			defer s.Close()
			cur := s.Current()
			if cur.Config == nil || cur.Config.Validate() != nil {
				t.Fatalf("%s: current version %d is not a valid document", when, cur.Version)
			}
			var versions []int
			for _, e := range s.History() {
				versions = append(versions, e.Version)
			}
			descending := true
			for i := 1; i < len(versions); i++ {
				descending = descending && versions[i] < versions[i-1]
			}
			if !descending || !slices.Contains(versions, cur.Version) {
				t.Fatalf("%s: history %v, current %d", when, versions, cur.Version)
			}
			onDisk, err := Load(path)
			if err != nil || !sameDocument(onDisk, cur.Config) {
				t.Fatalf("%s: the configuration file does not hold the current version %d: %v", when, cur.Version, err)
			}
			return cur.Version, versions
		}
		v1, h1 := check("first start")
		v2, h2 := check("restart")
		if v1 != v2 || !slices.Equal(h1, h2) {
			t.Fatalf("a restart changed the store: version %d -> %d, history %v -> %v", v1, v2, h1, h2)
		}
	})
}
