package impair

import (
	"encoding/json"
	"math"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSpecValidate(t *testing.T) {
	good := []Spec{
		{},
		{Dir: FromBox, Loss: 1, Duplicate: 0.5, Reorder: 0.2, ReorderGap: MaxReorderGap, Delay: MaxDelay, Jitter: time.Second, RateBps: 1, Limit: MaxLimit, Seed: 7},
	}
	for _, s := range good {
		if err := s.Validate(); err != nil {
			t.Errorf("%+v: %v", s, err)
		}
	}
	bad := []Spec{
		{Dir: 3}, {Dir: -1}, {Loss: -0.1}, {Loss: 1.01}, {Loss: math.NaN()}, {Duplicate: 2}, {Reorder: -1},
		{Delay: -1}, {Delay: MaxDelay + 1}, {Jitter: -1}, {RateBps: -1}, {Limit: -1}, {Limit: MaxLimit + 1},
		{ReorderGap: -1}, {ReorderGap: MaxReorderGap + 1},
	}
	for _, s := range bad {
		if err := s.Validate(); err == nil {
			t.Errorf("%+v accepted", s)
		}
	}
}

func TestSpecJSON(t *testing.T) {
	s := Spec{Dir: ToBox, Loss: 0.05, Duplicate: 0.01, Reorder: 0.1, ReorderGap: 4, Delay: 20 * time.Millisecond,
		Jitter: 5 * time.Millisecond, RateBps: 1e6, Limit: 50, Seed: 3}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"delay":"20ms"`) || !strings.Contains(string(b), `"dir":"to-box"`) {
		t.Errorf("JSON %s: want readable durations and direction", b)
	}
	var back Spec
	if err := json.Unmarshal(b, &back); err != nil || back != s {
		t.Errorf("round trip %s: %+v, %v", b, back, err)
	}
	if b, _ := json.Marshal(Spec{}); string(b) != "{}" {
		t.Errorf("zero spec marshals to %s", b)
	}
	for _, in := range []string{`{"los":0.1}`, `{"delay":"20"}`, `{"jitter":"x"}`, `{"dir":"up"}`, `[]`} {
		if err := json.Unmarshal([]byte(in), &back); err == nil {
			t.Errorf("%s accepted", in)
		}
	}
	if err := json.Unmarshal([]byte(`{"dir":"from-box","loss":0.5}`), &back); err != nil || back.Dir != FromBox || back.Loss != 0.5 {
		t.Errorf("from-box: %+v, %v", back, err)
	}
}

func TestSpecString(t *testing.T) {
	for _, c := range []struct {
		s    Spec
		want string
	}{
		{Spec{}, "both clear"},
		{Spec{Dir: ToBox, Loss: 0.05, Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond}, "to-box loss=5% delay=20ms±5ms"},
		{Spec{Dir: FromBox, Reorder: 0.25, RateBps: 1000, Seed: 2}, "from-box reorder=25% gap=3 rate=1000bit/s seed=2"},
	} {
		if got := c.s.String(); got != c.want {
			t.Errorf("String() = %q, want %q", got, c.want)
		}
	}
	if Direction(9).String() != "Direction(9)" {
		t.Error(Direction(9).String())
	}
}

func TestStatsTotals(t *testing.T) {
	s := Stats{ToBox: Counters{Received: 1, Lost: 2, Errors: 3}, FromBox: Counters{Received: 10, Reordered: 4}}
	tot := s.Total()
	if tot.Received != 11 || tot.Lost != 2 || tot.Reordered != 4 || tot.Errors != 3 {
		t.Errorf("Total = %+v", tot)
	}
	if s.Dir(ToBox) != s.ToBox || s.Dir(FromBox) != s.FromBox || s.Dir(Both) != tot {
		t.Error("Dir does not select")
	}
}

// fakeTarget records what a control socket asked for.
type fakeTarget struct {
	mu    sync.Mutex
	specs []Spec
}

func (f *fakeTarget) Set(s Spec) error {
	if err := s.Validate(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.specs = append(f.specs, s)
	return nil
}

func (f *fakeTarget) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return Stats{ToBox: Counters{Received: uint64(len(f.specs))}}
}

func TestControl(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctl.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	target := &fakeTarget{}
	done := make(chan error, 1)
	go func() { done <- Serve(ln, target) }()
	c := Control{Path: path}
	want := Spec{Dir: FromBox, Loss: 0.25, Delay: 3 * time.Millisecond}
	if err := c.Set(want); err != nil {
		t.Fatal(err)
	}
	st, err := c.Stats()
	if err != nil || st.ToBox.Received != 1 {
		t.Fatalf("Stats = %+v, %v", st, err)
	}
	if len(target.specs) != 1 || target.specs[0] != want {
		t.Errorf("target got %+v, want %+v", target.specs, want)
	}
	// Invalid specs are refused by the client before sending.
	if err := c.Set(Spec{Loss: 2}); err == nil {
		t.Error("client sent an invalid spec")
	}
	// The server answers errors for bad requests, and keeps the
	// connection for more.
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	dec := json.NewDecoder(conn)
	for _, req := range []string{`nonsense`, `{"op":"fly"}`, `{"op":"set"}`, `{"op":"set","spec":{"loss":3}}`, `{"op":"stats"}`} {
		if _, err := conn.Write([]byte(req + "\n")); err != nil {
			t.Fatal(err)
		}
		var r response
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("%s: %v", req, err)
		}
		if (r.Error == "") != (req == `{"op":"stats"}`) {
			t.Errorf("%s answered %+v", req, r)
		}
	}
	ln.Close()
	if err := <-done; err == nil {
		t.Error("Serve returned nil after the listener closed")
	}
	if _, err := (Control{Path: path, Timeout: 100 * time.Millisecond}).Stats(); err == nil {
		t.Error("Stats on a closed socket succeeded")
	}
}

func TestCountersSub(t *testing.T) {
	a := Counters{Received: 10, Segmented: 1, Forwarded: 9, Bytes: 900, Lost: 2, Duplicated: 1, Reordered: 3, Delayed: 4, Overflow: 5, Errors: 6}
	if got := a.Add(a).Sub(a); got != a {
		t.Errorf("(a+a)-a = %+v, want %+v", got, a)
	}
	if got := a.Sub(a); got != (Counters{}) {
		t.Errorf("a-a = %+v", got)
	}
}
