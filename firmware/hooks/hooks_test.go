package hooks

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/engine"
)

func TestCommandHook(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	ok := Hook{Service: "redis", Command: []string{"sh", "-c", `echo "$FTB_REPLICA $1" > ` + out, "hook"}}
	if err := ok.Run(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	if strings.TrimSpace(string(b)) != "a a" {
		t.Fatalf("hook saw %q", b)
	}
	fail := Hook{Service: "redis", Command: []string{"sh", "-c", "echo broken >&2; exit 3"}}
	err := fail.Run(context.Background(), "a")
	if err == nil || !strings.Contains(err.Error(), "broken") {
		t.Fatalf("failing hook: %v", err)
	}
	slow := Hook{Service: "redis", Command: []string{"sh", "-c", "sleep 10"}, Timeout: 200 * time.Millisecond}
	start := time.Now()
	err = slow.Run(context.Background(), "a")
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("slow hook: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("the timeout did not stop the hook (%v)", time.Since(start))
	}
}

func TestURLHook(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Method + " " + r.URL.Query().Get("replica")
		if r.URL.Query().Get("replica") == "bad" {
			http.Error(w, "no", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	h := Hook{Service: "web", URL: srv.URL + "/sync"}
	if err := h.Run(context.Background(), "b"); err != nil || got != "POST b" {
		t.Fatalf("%v %q", err, got)
	}
	if err := h.Run(context.Background(), "bad"); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("want a 503 error, got %v", err)
	}
}

type fakeReadier struct {
	mu  sync.Mutex
	got map[string]bool
	ch  chan struct{}
}

func (f *fakeReadier) SetReady(_ context.Context, name string, ok bool) error {
	f.mu.Lock()
	f.got[name] = ok
	f.mu.Unlock()
	f.ch <- struct{}{}
	return nil
}

func TestGate(t *testing.T) {
	fr := &fakeReadier{got: map[string]bool{}, ch: make(chan struct{}, 4)}
	g := &Gate{Eng: fr, Hooks: []Hook{{Service: "s", Command: []string{"sh", "-c", `[ "$FTB_REPLICA" = good ]`}}}}
	events := make(chan engine.Event, 4)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { g.Run(ctx, events); close(done) }()
	events <- engine.Event{Kind: engine.EventReplicaUp, Replica: "good"} // not a gate event
	events <- engine.Event{Kind: engine.EventReplicaNeedsReady, Replica: "good"}
	events <- engine.Event{Kind: engine.EventReplicaNeedsReady, Replica: "bad"}
	for range 2 {
		select {
		case <-fr.ch:
		case <-time.After(10 * time.Second):
			t.Fatal("the gate did not report")
		}
	}
	cancel()
	<-done
	if ok, seen := fr.got["good"]; !seen || !ok {
		t.Fatalf("good: %v %v", ok, seen)
	}
	if ok, seen := fr.got["bad"]; !seen || ok {
		t.Fatalf("bad: %v %v", ok, seen)
	}
}
