package soak

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/engine"
	"github.com/ftbridge/ftbridge/integration/labsvc"
)

// Reproductions of dataplane bugs the soak found. They run only with
// FTB_REPRO=1 (they fail until the dataplane is fixed, and CI must stay
// green meanwhile): go test ./integration/soak -run Repro -v with
// FTB_REPRO=1 as root.
func needRepro(t *testing.T) {
	t.Helper()
	if os.Getenv("FTB_REPRO") != "1" {
		t.Skip("reproduction of an open dataplane bug; set FTB_REPRO=1 to run it")
	}
	needRoot(t)
}

// TestReproSlowReplicaStalled: a replica that is slower by a few
// milliseconds (here 5 ms of added latency on its link, as a replica one
// switch further away would be) but keeps moving is declared stalled and
// failed, because a member's "behind" clock only resets when it catches
// up, not when it progresses.
func TestReproSlowReplicaStalled(t *testing.T) {
	needRepro(t)
	// Probes every 100 ms, so that probe answers delayed by the link are
	// not what fails the replica (that is another finding).
	b := newTestBridge(t, BridgeOptions{Replicas: 2, Impaired: true, Config: map[string]any{"health": map[string]any{"interval": "100ms"}}})
	imp := NewImpairer(b.Lab, 1)
	undo, err := imp.Apply(linkOf(b, "b"), Impairment{Kind: "delay", Delay: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer undo()
	from := b.Log.NumEvents()
	c, err := b.Dial(LabsvcPort, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	const n = 64 << 20
	res, err := labsvc.Download(c, n, 3, nil)
	if err != nil {
		dumpState(t, b, from)
		t.Fatal(err)
	}
	if res.SHA256 != labsvc.StreamHash(n, 3) {
		t.Fatal("hash mismatch")
	}
	up, err := labsvc.Upload(c, labsvc.Stream(n, 4), n)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("download %v, upload %v", res.Duration, up.Duration)
	for _, ev := range b.Log.Events(from) {
		if ev.Kind == engine.EventStalled || ev.Kind == engine.EventFailover || ev.Kind == engine.EventReplicaDown {
			t.Errorf("a replica that is 5 ms slower but moving was failed: %s replica=%s reason=%s", ev.Kind, ev.Replica, ev.Reason)
		}
	}
}

// dumpState logs the daemon's events since from and a snapshot.
func dumpState(t *testing.T, b *Bridge, from int) {
	t.Helper()
	for _, ev := range b.Log.Events(from) {
		t.Logf("event %s %s replica=%s from=%s conn=%s reason=%s detail=%s", ev.Time.Format("15:04:05.000000"), ev.Kind, ev.Replica, ev.From, ev.Conn, ev.Reason, ev.Detail)
	}
	for _, ns := range append([]string{b.Lab.ClientNS}, b.Lab.ReplicaNS...) {
		out, _ := b.Lab.Run(ns, "ss", "-tnie")
		t.Logf("%s:\n%s", ns, out)
	}
	if s, err := b.Snapshot(5 * time.Second); err == nil {
		js, _ := json.MarshalIndent(s, "", " ")
		t.Logf("snapshot: %s", js)
	}
}

// TestReproProbeRTT: a replica whose round trip exceeds health.interval
// (20 ms by default; here 2 x 12 ms of added latency) is never healthy,
// although it answers every probe: an answer is only accepted if it comes
// back before the next round replaces the probe's source port.
func TestReproProbeRTT(t *testing.T) {
	needRepro(t)
	b := newTestBridge(t, BridgeOptions{Replicas: 2, Impaired: true})
	imp := NewImpairer(b.Lab, 1)
	undo, err := imp.Apply(linkOf(b, "b"), Impairment{Kind: "delay", Delay: 12 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer undo()
	from := b.Log.NumEvents()
	time.Sleep(3 * time.Second)
	for _, ev := range b.Log.Events(from) {
		if ev.Kind == engine.EventReplicaDown {
			t.Errorf("replica %s with a 24 ms round trip declared down: %s", ev.Replica, ev.Reason)
		}
	}
}
