package integration_test

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/engine"
	"github.com/ftbridge/ftbridge/firmware/config"
	"github.com/ftbridge/ftbridge/integration/lab"
	"github.com/ftbridge/ftbridge/integration/labsvc"
)

// TestReconfigureLive applies configuration changes to a running engine:
// a live connection that a change does not concern keeps going; removing
// its primary replica fails it over like a failure would. With three
// loops every loop applies the change to its own connections.
func TestReconfigureLive(t *testing.T) {
	for _, loops := range []int{1, 3} {
		t.Run(fmt.Sprintf("loops=%d", loops), func(t *testing.T) { testReconfigureLive(t, loops) })
	}
}

func testReconfigureLive(t *testing.T, loops int) {
	l, _ := labWithServers(t, lab.Options{Replicas: 3})
	cfg := config.Default()
	cfg.Services[0].Ports = []int{7000}
	cfg.Loops = loops
	eng, ctx, stop := startEngine(t, l, cfg.Dataplane())
	t.Cleanup(stop)
	events, unsub := eng.Subscribe(1024)
	defer unsub()

	waitUp := func(names ...string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			s, err := eng.Snapshot(ctx, 0)
			if err != nil {
				t.Fatal(err)
			}
			ok := 0
			for _, r := range s.Replicas {
				for _, n := range names {
					if r.Name == n && r.Up && len(r.Services) == 1 {
						ok++
					}
				}
			}
			if ok == len(names) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("replicas %v not up", names)
	}
	waitUp("a", "b")
	// Enough connections that, with three loops, every loop likely has
	// some (a loop without one only makes the test weaker).
	conns := make([]net.Conn, 9)
	for i := range conns {
		c, err := l.Dial(l.ClientNS, "tcp", l.VIP.String()+":7000", 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	incrAll := func(next int) int {
		t.Helper()
		var n int
		for _, c := range conns {
			n = incrN(t, c, 3, next)
		}
		return n
	}
	next := incrAll(1)

	// Add the third replica, change timers and health: nothing restarts.
	cfg.Replicas = append(cfg.Replicas, config.Replica{Name: "c", Interface: l.ReplicaPorts[2]})
	cfg.Timers.TimeWait = config.Duration(2 * time.Second)
	if err := eng.Reconfigure(ctx, cfg.Dataplane()); err != nil {
		t.Fatal(err)
	}
	waitUp("a", "b", "c")
	next = incrAll(next)

	// Remove the primary from the configuration: the connection fails over.
	cfg.Replicas = cfg.Replicas[1:]
	if err := eng.Reconfigure(ctx, cfg.Dataplane()); err != nil {
		t.Fatal(err)
	}
	incrAll(next)
	sawFailover := false
	for len(events) > 0 {
		if ev := <-events; ev.Kind == engine.EventFailover && ev.From == "a" {
			sawFailover = true
		}
	}
	if !sawFailover {
		t.Fatal("removing the primary did not fail its connection over")
	}
	s, _ := eng.Snapshot(ctx, 100)
	if len(s.Replicas) != 2 || len(s.Conns) != len(conns) || len(s.Loops) != loops {
		t.Fatalf("after removing a: replicas %d, conns %+v, loops %v", len(s.Replicas), s.Conns, s.Loops)
	}
	for _, cs := range s.Conns {
		if cs.Primary != "b" {
			t.Errorf("after removing a: %s has primary %q, want b (loops %v)", cs.Client, cs.Primary, s.Loops)
		}
	}
	// A new connection is served by the remaining replicas.
	c2, err := l.Dial(l.ClientNS, "tcp", l.VIP.String()+":7000", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := labsvc.Download(c2, 1<<20, 3, nil); err != nil {
		t.Fatal(err)
	}

	// Another uplink cannot be applied live.
	bad := cfg.Dataplane()
	bad.Uplink = "nope0"
	if err := eng.Reconfigure(ctx, bad); err != engine.ErrRestartNeeded {
		t.Fatalf("uplink change: %v", err)
	}
}
