package integration_test

import (
	"fmt"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/ftbridge/ftbridge/integration/labsvc"
)

// fault is one way to kill a replica.
type fault struct {
	name string
	// inject breaks replica i; it must not block.
	inject func(b *bridgeLab, i int) error
	// evidence is a log fragment that shows the box saw the fault.
	evidence string
}

var faults = []fault{
	{"kill9", func(b *bridgeLab, i int) error { return b.server(i).Signal(syscall.SIGKILL) }, "failover"},
	{"linkdown", func(b *bridgeLab, i int) error { return b.SetLink(b.ReplicaNS[i], "eth0", false) }, "failover"},
	{"portdown", func(b *bridgeLab, i int) error { return b.SetLink(b.BoxNS, b.ReplicaPorts[i], false) }, "failover"},
	{"nsdelete", func(b *bridgeLab, i int) error { return b.DeleteNS(b.ReplicaNS[i]) }, "failover"},
	{"sigstop", func(b *bridgeLab, i int) error { return b.server(i).Signal(syscall.SIGSTOP) }, "failover"},
}

// stallRecord collects client-visible stalls for the log.
func logStall(t *testing.T, kind string, gap time.Duration) {
	t.Logf("STALL fault=%s gap=%v", kind, gap.Round(time.Millisecond))
}

func TestStreamThroughBox(t *testing.T) {
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprintf("replicas=%d", n), func(t *testing.T) {
			b := newBridgeLab(t, labOptions{replicas: n})
			names := []string{"a", "b", "c"}[:n]
			b.waitHealthy(7000, names...)
			c := b.dial(7000)
			res, err := labsvc.Download(c, 16<<20, 42, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.SHA256 != labsvc.StreamHash(16<<20, 42) {
				t.Fatal("download hash mismatch")
			}
			up, err := labsvc.Upload(c, labsvc.Stream(8<<20, 9), 8<<20)
			if err != nil {
				t.Fatal(err)
			}
			if up.SHA256 != labsvc.StreamHash(8<<20, 9) {
				t.Fatal("upload hash mismatch")
			}
			if _, err := labsvc.Echo(c, 1<<20, 5); err != nil {
				t.Fatal(err)
			}
			if last, _, err := labsvc.Incr(c, 100); err != nil || last != 100 {
				t.Fatalf("incr: last %d, %v", last, err)
			}
			if err := labsvc.Quit(c); err != nil {
				t.Fatal(err)
			}
			s := b.snapshot()
			if s.Failovers != 0 || s.Divergences != 0 {
				t.Fatalf("failovers %d divergences %d on a healthy run", s.Failovers, s.Divergences)
			}
			b.daemonAlive()
		})
	}
}

// TestFailoverDownload kills the primary in the middle of a paced download.
func TestFailoverDownload(t *testing.T) {
	for _, f := range faults {
		for _, n := range []int{2, 3} {
			t.Run(fmt.Sprintf("%s/replicas=%d", f.name, n), func(t *testing.T) {
				b := newBridgeLab(t, labOptions{replicas: n})
				names := []string{"a", "b", "c"}[:n]
				b.waitHealthy(7000, names...)
				c := b.dial(7000)
				const size = 3 << 20
				injected := b.after(400*time.Millisecond, func() error { return f.inject(b, 0) })
				res, err := labsvc.Download(c, size, 7, &labsvc.Pace{Chunk: 32 << 10, Delay: 10 * time.Millisecond})
				if err != nil {
					t.Fatal(err)
				}
				if res.SHA256 != labsvc.StreamHash(size, 7) {
					t.Fatal("hash mismatch")
				}
				if err := <-injected; err != nil {
					t.Fatal(err)
				}
				logStall(t, f.name, res.MaxGap)
				if last, _, err := labsvc.Incr(c, 3); err != nil || last != 3 {
					t.Fatalf("after failover: incr %d, %v", last, err)
				}
				if err := labsvc.Quit(c); err != nil {
					t.Fatal(err)
				}
				b.waitLog(5*time.Second, f.evidence, "from=a")
				b.daemonAlive()
			})
		}
	}
}

// throttled is a reader that yields chunk bytes every delay.
type throttled struct {
	r     io.Reader
	chunk int
	delay time.Duration
}

func (t *throttled) Read(p []byte) (int, error) {
	time.Sleep(t.delay)
	if len(p) > t.chunk {
		p = p[:t.chunk]
	}
	return t.r.Read(p)
}

// TestFailoverUpload fails the primary while the client uploads.
func TestFailoverUpload(t *testing.T) {
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			b := newBridgeLab(t, labOptions{replicas: 2})
			b.waitHealthy(7000, "a", "b")
			c := b.dial(7000)
			const size = 4 << 20
			injected := b.after(400*time.Millisecond, func() error { return f.inject(b, 0) })
			res, err := labsvc.Upload(c, &throttled{labsvc.Stream(size, 3), 48 << 10, 10 * time.Millisecond}, size)
			if err != nil {
				t.Fatal(err)
			}
			if res.SHA256 != labsvc.StreamHash(size, 3) {
				t.Fatal("hash mismatch")
			}
			if err := <-injected; err != nil {
				t.Fatal(err)
			}
			logStall(t, "upload-"+f.name, res.MaxGap)
			if err := labsvc.Quit(c); err != nil {
				t.Fatal(err)
			}
			b.waitLog(5*time.Second, f.evidence, "from=a")
		})
	}
}

// TestFailoverIdle fails the primary of an idle connection.
func TestFailoverIdle(t *testing.T) {
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			b := newBridgeLab(t, labOptions{replicas: 2})
			b.waitHealthy(7000, "a", "b")
			c := b.dial(7000)
			if last, _, err := labsvc.Incr(c, 5); err != nil || last != 5 {
				t.Fatalf("incr %d %v", last, err)
			}
			if err := f.inject(b, 0); err != nil {
				t.Fatal(err)
			}
			time.Sleep(700 * time.Millisecond)
			start := time.Now()
			if _, err := io.WriteString(c, "INCR\n"); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 16)
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, err := c.Read(buf)
			if err != nil || string(buf[:n]) != "6\n" {
				t.Fatalf("after idle failover: %q %v\nlog:\n%s", buf[:n], err, tail(b.daemon.Log(), 30))
			}
			logStall(t, "idle-"+f.name, time.Since(start))
			if err := labsvc.Quit(c); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestCascade fails a, then b, while one stream runs on; c finishes it.
func TestCascade(t *testing.T) {
	b := newBridgeLab(t, labOptions{replicas: 3})
	b.waitHealthy(7000, "a", "b", "c")
	c := b.dial(7000)
	const size = 4 << 20
	injected := b.after(300*time.Millisecond, func() error {
		if err := b.server(0).Signal(syscall.SIGKILL); err != nil {
			return err
		}
		time.Sleep(400 * time.Millisecond)
		return b.SetLink(b.BoxNS, b.ReplicaPorts[1], false)
	})
	res, err := labsvc.Download(c, size, 11, &labsvc.Pace{Chunk: 32 << 10, Delay: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.SHA256 != labsvc.StreamHash(size, 11) {
		t.Fatal("hash mismatch")
	}
	if err := <-injected; err != nil {
		t.Fatal(err)
	}
	if last, _, err := labsvc.Incr(c, 2); err != nil || last != 2 {
		t.Fatalf("incr %d %v", last, err)
	}
	b.waitLog(3*time.Second, "failover", "from=a", "replica=b")
	b.waitLog(3*time.Second, "failover", "from=b", "replica=c")
	if err := labsvc.Quit(c); err != nil {
		t.Fatal(err)
	}
}
