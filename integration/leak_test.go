package integration_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/ftbridge/ftbridge/firmware/config"
	"github.com/ftbridge/ftbridge/integration/lab"
	"github.com/ftbridge/ftbridge/integration/labsvc"
)

// TestEngineLeaks runs traffic and a failover through an in-process engine
// and checks that afterwards the connection table, the held output and the
// input logs are empty and that stopping the engine leaves no goroutine
// behind; with one loop and with three (whose other loops run on threads
// of their own that enter the box's namespace).
func TestEngineLeaks(t *testing.T) {
	for _, loops := range []int{1, 3} {
		t.Run(fmt.Sprintf("loops=%d", loops), func(t *testing.T) { testEngineLeaks(t, loops) })
	}
}

func testEngineLeaks(t *testing.T, loops int) {
	l, servers := labWithServers(t, lab.Options{Replicas: 2})
	baseline := runtime.NumGoroutine()

	cfg := config.Default()
	cfg.Services[0].Ports = []int{7000}
	cfg.Timers.TimeWait = config.Duration(300 * time.Millisecond)
	cfg.Loops = loops
	eng, ctx, stop := startEngine(t, l, cfg.Dataplane())
	t.Cleanup(stop)
	events, unsubscribe := eng.Subscribe(64)
	go func() {
		for range events {
		}
	}()

	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := eng.Snapshot(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Replicas) == 2 && s.Replicas[0].Up && s.Replicas[1].Up && len(s.Replicas[0].Services) == 1 && len(s.Replicas[1].Services) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("replicas not up")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for k := 0; k < 20; k++ {
		c, err := l.Dial(l.ClientNS, "tcp", l.VIP.String()+":7000", 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if k == 10 {
			servers[0].Kill() // a failover in the middle of the run
		}
		if _, err := labsvc.Download(c, 256<<10, uint64(k), nil); err != nil {
			t.Fatalf("connection %d: %v", k, err)
		}
		if _, err := labsvc.Upload(c, labsvc.Stream(64<<10, 1), 64<<10); err != nil {
			t.Fatalf("connection %d: %v", k, err)
		}
		if err := labsvc.Quit(c); err != nil {
			t.Fatalf("connection %d: %v", k, err)
		}
		c.Close()
	}
	// Every connection closed; TIME_WAIT is 300ms.
	deadline = time.Now().Add(10 * time.Second)
	for {
		s, err := eng.Snapshot(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if s.Connections == 0 && s.HeldBytes == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after all connections closed: %d connections, %d held bytes", s.Connections, s.HeldBytes)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if c := eng.Counters(); c.ConnsOpened.Load() != c.ConnsClosed.Load() || c.ActiveConns.Load() != 0 {
		t.Fatalf("opened %d closed %d active %d", c.ConnsOpened.Load(), c.ConnsClosed.Load(), c.ActiveConns.Load())
	}
	unsubscribe()
	stop()
	deadline = time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			n := runtime.Stack(buf, true)
			t.Fatalf("goroutines: %d, baseline %d\n%s", runtime.NumGoroutine(), baseline, buf[:n])
		}
		time.Sleep(20 * time.Millisecond)
	}
}
