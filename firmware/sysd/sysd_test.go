package sysd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeSystemd listens on a unixgram socket and points NOTIFY_SOCKET at it.
func fakeSystemd(t *testing.T) <-chan string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	ch := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			ch <- string(buf[:n])
		}
	}()
	return ch
}

func expect(t *testing.T, ch <-chan string, want string) {
	t.Helper()
	select {
	case got := <-ch:
		if got != want {
			t.Fatalf("notify %q, want %q", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no notify, want %q", want)
	}
}

func TestNotify(t *testing.T) {
	ch := fakeSystemd(t)
	if err := Ready(); err != nil {
		t.Fatal(err)
	}
	expect(t, ch, "READY=1")
	Status("serving %d replicas", 2)
	expect(t, ch, "STATUS=serving 2 replicas")
	Stopping()
	expect(t, ch, "STOPPING=1")
}

func TestNotifyOutsideSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if ok, err := Notify("READY=1"); ok || err != nil {
		t.Errorf("Notify without a socket = %v, %v", ok, err)
	}
}

func TestWatchdogInterval(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "2000000")
	t.Setenv("WATCHDOG_PID", fmt.Sprint(os.Getpid()))
	if d := WatchdogInterval(); d != time.Second {
		t.Errorf("interval %v, want 1s", d)
	}
	t.Setenv("WATCHDOG_PID", "1")
	if d := WatchdogInterval(); d != 0 {
		t.Errorf("watchdog for another process: %v", d)
	}
	t.Setenv("WATCHDOG_USEC", "")
	if d := WatchdogInterval(); d != 0 {
		t.Errorf("no watchdog: %v", d)
	}
}

// TestWatchdogFedOnlyWhileHealthy runs the watchdog against the fake
// socket: fed while the check passes, silent while it hangs, fed again
// after.
func TestWatchdogFedOnlyWhileHealthy(t *testing.T) {
	ch := fakeSystemd(t)
	t.Setenv("WATCHDOG_USEC", "40000")
	t.Setenv("WATCHDOG_PID", fmt.Sprint(os.Getpid()))
	var hung atomic.Bool
	w := &Watchdog{
		Check: func(ctx context.Context) error {
			if hung.Load() {
				<-ctx.Done() // a loop that does not answer
				return ctx.Err()
			}
			return nil
		},
		Status: func(ok bool) string {
			if ok {
				return "healthy"
			}
			return "dataplane not answering"
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	count := func(d time.Duration) (feeds int, statuses []string) {
		end := time.After(d)
		for {
			select {
			case m := <-ch:
				if m == "WATCHDOG=1" {
					feeds++
				} else {
					statuses = append(statuses, m)
				}
			case <-end:
				return
			}
		}
	}
	if feeds, st := count(300 * time.Millisecond); feeds < 3 || !strings.Contains(strings.Join(st, ","), "STATUS=healthy") {
		t.Fatalf("healthy: %d feeds, %q", feeds, st)
	}
	hung.Store(true)
	time.Sleep(50 * time.Millisecond) // let a check in flight finish
	for len(ch) > 0 {
		<-ch
	}
	if feeds, st := count(300 * time.Millisecond); feeds > 1 || !strings.Contains(strings.Join(st, ","), "not answering") {
		t.Fatalf("hung: %d feeds, %q", feeds, st)
	}
	hung.Store(false)
	if feeds, _ := count(300 * time.Millisecond); feeds < 2 {
		t.Fatalf("recovered: %d feeds", feeds)
	}
}

func TestWatchdogDisabled(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "")
	w := &Watchdog{Check: func(context.Context) error { return errors.New("not called") }}
	done := make(chan struct{})
	go func() { w.Run(context.Background()); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Run without a watchdog did not return")
	}
}
