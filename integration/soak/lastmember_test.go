package soak

import (
	"syscall"
	"testing"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/engine"
	"github.com/ftbridge/ftbridge/integration/labsvc"
)

// TestLastMemberKeptThroughBlackout: a connection down to one replica (the
// other's server was killed) loses that replica's link for 1.5 s: every
// frame both ways is dropped, so its probes go unanswered and the box
// declares it down. The evidence is soft (silence, not a lost carrier),
// and the replica is the connection's last live member: the box keeps the
// connection instead of resetting it, and once the link is back the
// download finishes byte for byte. New connections avoid the replica
// while it is down.
func TestLastMemberKeptThroughBlackout(t *testing.T) {
	needRoot(t)
	b := newTestBridge(t, BridgeOptions{Replicas: 2, Impaired: true, Service: map[string]any{"rejoin": "new-only"}})
	c, err := b.Dial(LabsvcPort, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	const n = 8 << 20
	done := make(chan error, 1)
	var res labsvc.Result
	go func() {
		var err error
		res, err = labsvc.Download(c, n, 21, &labsvc.Pace{Chunk: 64 << 10, Delay: 10 * time.Millisecond})
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	from := b.Log.NumEvents()
	if err := b.SignalServers(1, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.Log.WaitEvent(from, 5*time.Second, func(e engine.Event) bool { return e.Kind == engine.EventMemberRemoved && e.Replica == "b" }); !ok {
		t.Fatal("replica b was not removed from the connection")
	}
	imp := NewImpairer(b.Lab, 1)
	undo, err := imp.Apply(linkOf(b, "a"), Impairment{Kind: "loss", Prob: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := b.Log.WaitEvent(from, 5*time.Second, func(e engine.Event) bool { return e.Kind == engine.EventReplicaDown && e.Replica == "a" }); !ok {
		undo()
		t.Fatal("replica a was not declared down during the blackout")
	}
	if _, ok := b.Log.WaitEvent(from, time.Second, func(e engine.Event) bool { return e.Kind == engine.EventLastMemberKept && e.Replica == "a" }); !ok {
		t.Error("no last-member-kept event for a")
	}
	time.Sleep(1500 * time.Millisecond)
	undo()
	if err := <-done; err != nil {
		for _, ev := range b.Log.Events(from) {
			t.Logf("  %s %s replica=%s reason=%s %s", ev.Time.Format("15:04:05.000"), ev.Kind, ev.Replica, ev.Reason, ev.Detail)
		}
		t.Fatalf("download through the blackout: %v", err)
	}
	t.Logf("%d MiB verified; longest gap between reads %v", n>>20, res.MaxGap.Round(time.Millisecond))
	for _, ev := range b.Log.Events(from) {
		if ev.Kind == engine.EventConnClosed && ev.Reason == "no-replica" {
			t.Errorf("a connection was closed for want of a replica: %s", ev.Conn)
		}
	}
}

// TestLastResortWhenEveryReplicaIsSilent: every replica's link drops all
// frames for a moment, so every replica is declared down on probe silence
// at once: the likelier culprit is on the box's side. A client connecting
// then must not be refused: its SYN goes to the silent replicas as a last
// resort, and once the links are back the connection is served.
func TestLastResortWhenEveryReplicaIsSilent(t *testing.T) {
	needRoot(t)
	b := newTestBridge(t, BridgeOptions{Replicas: 2, Impaired: true})
	from := b.Log.NumEvents()
	imp := NewImpairer(b.Lab, 1)
	var undos []func() error
	healed := false
	heal := func() {
		if !healed {
			for _, u := range undos {
				u()
			}
			healed = true
		}
	}
	defer heal()
	for _, name := range []string{"a", "b"} {
		undo, err := imp.Apply(linkOf(b, name), Impairment{Kind: "loss", Prob: 1})
		if err != nil {
			t.Fatal(err)
		}
		undos = append(undos, undo)
	}
	for _, name := range []string{"a", "b"} {
		if _, ok := b.Log.WaitEvent(from, 5*time.Second, func(e engine.Event) bool { return e.Kind == engine.EventReplicaDown && e.Replica == name }); !ok {
			t.Fatalf("replica %s was not declared down during the blackout", name)
		}
	}
	dialed := make(chan error, 1)
	go func() {
		c, err := b.Dial(LabsvcPort, 15*time.Second)
		if err != nil {
			dialed <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		_, err = labsvc.Download(c, 1<<20, 22, nil)
		dialed <- err
	}()
	time.Sleep(500 * time.Millisecond)
	heal()
	if err := <-dialed; err != nil {
		t.Fatalf("a client connecting while every replica was silent: %v", err)
	}
	s, err := b.Snapshot(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if s.LastResortConns == 0 {
		t.Errorf("no connection counted as a last resort: %+v", s)
	}
}
