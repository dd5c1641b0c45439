package integration_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ftbridge/ftbridge/firmware/config"
	"github.com/ftbridge/ftbridge/integration/lab"
	"github.com/ftbridge/ftbridge/integration/labsvc"
)

// startManagedDaemon starts ftbridged with its management plane on the
// lab's configuration and data directory, as the systemd unit does.
func (b *bridgeLab) startManagedDaemon(data string) *lab.Proc {
	b.t.Helper()
	p, err := b.Start(b.BoxNS, bins.ftbridged, "--config", b.cfgPath, "--data-dir", data, "-quiet-conns")
	if err != nil {
		b.t.Fatal(err)
	}
	b.daemon = p
	b.waitLog(15*time.Second, "running:", "management API")
	return p
}

// TestDaemonKill9 kills ftbridged with SIGKILL while a client talks
// through it, then starts it again after systemd's RestartSec (1 s). It
// documents the box as a single point of failure: the live connection
// dies (its state was in the dead process); new connections work again
// within a bound; the configuration is intact and used without fallback.
func TestDaemonKill9(t *testing.T) {
	b := newBridgeLab(t, labOptions{replicas: 2})
	if err := b.daemon.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	b.daemon.Wait()
	data := filepath.Join(b.Dir(), "data")
	b.startManagedDaemon(data)
	b.waitHealthy(7000, "a", "b")
	before, err := config.Load(b.cfgPath)
	if err != nil {
		t.Fatal(err)
	}

	c := b.dial(7000)
	if last, _, err := labsvc.Incr(c, 5); err != nil || last != 5 {
		t.Fatalf("incr before the kill: %d %v", last, err)
	}
	// The client keeps talking: one request after another.
	type outcome struct {
		err     error
		ok      int
		lastOK  time.Time
		errTime time.Time
	}
	res := make(chan outcome, 1)
	stop := make(chan struct{})
	go func() {
		var o outcome
		c.SetDeadline(time.Now().Add(40 * time.Second))
		for {
			select {
			case <-stop:
				res <- o
				return
			default:
			}
			if _, _, err := labsvc.Incr(c, 1); err != nil {
				o.err, o.errTime = err, time.Now()
				res <- o
				return
			}
			o.ok++
			o.lastOK = time.Now()
		}
	}()
	time.Sleep(300 * time.Millisecond)
	killed := time.Now()
	if err := b.daemon.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	b.daemon.Wait()

	// Restart=always, RestartSec=1s.
	time.Sleep(time.Second)
	restarted := time.Now()
	p := b.startManagedDaemon(data)
	running := time.Now()
	var newConnAt time.Time
	for time.Since(restarted) < 30*time.Second {
		nc, err := b.Dial(b.ClientNS, "tcp", b.VIP.String()+":7000", 2*time.Second)
		if err == nil {
			nc.SetDeadline(time.Now().Add(3 * time.Second))
			last, _, ierr := labsvc.Incr(nc, 3)
			nc.Close()
			if ierr == nil && last == 3 {
				newConnAt = time.Now()
				break
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if newConnAt.IsZero() {
		t.Fatalf("no new connection through the restarted daemon within 30 s; log:\n%s", tail(p.Log(), 30))
	}
	t.Logf("restart to daemon running: %v; restart to first new connection served: %v",
		running.Sub(restarted).Round(time.Millisecond), newConnAt.Sub(restarted).Round(time.Millisecond))

	// The old connection: it must not carry on as if nothing happened.
	var o outcome
	select {
	case o = <-res:
	case <-time.After(45 * time.Second):
		t.Fatal("the client neither failed nor hit its deadline")
	}
	close(stop)
	if o.err == nil {
		t.Fatalf("the live connection survived the daemon's death (%d requests): the documented behaviour changed", o.ok)
	}
	kind := "other"
	var ne net.Error
	switch {
	case errors.Is(o.err, syscall.ECONNRESET):
		kind = "reset"
	case errors.As(o.err, &ne) && ne.Timeout():
		kind = "stall (no answer until the client's 40 s deadline)"
	case errors.Is(o.err, io.EOF):
		kind = "closed (EOF)"
	}
	stall := time.Duration(0)
	if !o.lastOK.IsZero() {
		stall = o.errTime.Sub(o.lastOK)
	}
	t.Logf("live connection: %d requests before the kill, then %s after %v from the kill (stall %v): %v",
		o.ok, kind, o.errTime.Sub(killed).Round(time.Millisecond), stall.Round(time.Millisecond), o.err)
	if !o.lastOK.IsZero() && o.lastOK.After(killed.Add(100*time.Millisecond)) {
		t.Errorf("requests were answered %v after the kill", o.lastOK.Sub(killed))
	}

	// The configuration is intact and was used as it was.
	after, err := config.Load(b.cfgPath)
	if err != nil {
		t.Fatalf("the configuration after the kill: %v", err)
	}
	if !config.DataplaneEqual(before, after) {
		t.Error("the configuration changed across the kill")
	}
	if strings.Contains(p.Log(), "config-fallback") {
		t.Errorf("the restart fell back to a stored version:\n%s", tail(p.Log(), 20))
	}
	if _, err := os.Stat(filepath.Join(data, "events", "events.log")); err != nil {
		t.Errorf("event log after the restart: %v", err)
	}
}

// TestRestartClientPortReused: the daemon dies under open connections and
// comes back; the replicas still hold those connections. A client that
// then reuses the same source port (its old socket gone) must get a
// connection with both replicas at once: each replica answers the SYN
// from its old incarnation (a challenge ACK), which the box resets before
// sending the SYN again, as a client's own stack would.
func TestRestartClientPortReused(t *testing.T) {
	b := newBridgeLab(t, labOptions{replicas: 2})
	b.waitHealthy(7000, "a", "b")
	const port = 41234
	local := &net.TCPAddr{IP: b.ClientIP.AsSlice(), Port: port}
	dialFrom := func() (net.Conn, error) {
		var c net.Conn
		err := b.InNS(b.ClientNS, func() error {
			d := net.Dialer{LocalAddr: local, Timeout: 2 * time.Second}
			var err error
			c, err = d.Dial("tcp", b.VIP.String()+":7000")
			return err
		})
		return c, err
	}
	c, err := dialFrom()
	if err != nil {
		t.Fatal(err)
	}
	if last, _, err := labsvc.Incr(c, 3); err != nil || last != 3 {
		t.Fatalf("incr before the restart: %d %v", last, err)
	}
	// Let the last reply be acknowledged everywhere: a replica with
	// nothing to retransmit keeps the connection idle and silent (one
	// retransmitting would meet the new box's reset for an unknown
	// connection instead).
	time.Sleep(300 * time.Millisecond)
	if err := b.daemon.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	b.daemon.Wait()
	// The client drops its socket without a word to anyone (a reset the
	// dead box never passes on): the replicas keep the old connection.
	c.(*net.TCPConn).SetLinger(0)
	c.Close()
	b.startManagedDaemon(filepath.Join(b.Dir(), "data"))
	b.waitHealthy(7000, "a", "b")
	// The premise: the replicas still hold the old connection.
	for i := 0; i < 2; i++ {
		out, err := b.Run(b.ReplicaNS[i], "ss", "-Htn", "state", "established")
		if err != nil || !strings.Contains(out, fmt.Sprintf("%s:%d", b.ClientIP, port)) {
			t.Fatalf("replica %d no longer holds the old connection (%v): %q", i, err, out)
		}
	}

	start := time.Now()
	c2, err := dialFrom()
	if err != nil {
		t.Fatalf("dial from the reused port %d: %v\n%s", port, err, tail(b.daemon.Log(), 20))
	}
	defer c2.Close()
	c2.SetDeadline(time.Now().Add(10 * time.Second))
	if last, _, err := labsvc.Incr(c2, 2); err != nil || last != 2 {
		t.Fatalf("incr on the new connection: %d %v", last, err)
	}
	t.Logf("new connection on the reused port served after %v", time.Since(start).Round(time.Millisecond))
	b.checkMembers(c2, "a", "b")
	if err := labsvc.Quit(c2); err != nil {
		t.Fatal(err)
	}
}
