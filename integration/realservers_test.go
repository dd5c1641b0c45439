package integration_test

// Real servers from Debian behind the box: redis-server, nginx (with curl as
// the client) and memcached, each with the primary's server process killed
// (or stopped) in the middle of a conversation.

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ftbridge/ftbridge/integration/lab"
	"github.com/ftbridge/ftbridge/integration/labsvc"
)

// startRedis runs redis-server on the VIP in replica i, without persistence.
func (b *bridgeLab) startRedis(i int) *lab.Proc {
	b.t.Helper()
	dir := filepath.Join(b.Dir(), fmt.Sprintf("redis-%d", i))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	return b.startServer(i, 6379, "redis-server",
		"--bind", b.VIP.String(), "--port", "6379",
		"--save", "", "--appendonly", "no", "--protected-mode", "no",
		"--dir", dir, "--logfile", "", "--daemonize", "no")
}

// TestRedisIncr runs one connection sending INCR 3000 times while the
// primary's redis-server dies (SIGKILL) or hangs (SIGSTOP) after about a
// third of them: the replies must run 1, 2, ..., 3000.
func TestRedisIncr(t *testing.T) {
	needLab(t)
	needBinary(t, "redis-server")
	for _, f := range []struct {
		name string
		sig  syscall.Signal
	}{{"kill9", syscall.SIGKILL}, {"sigstop", syscall.SIGSTOP}} {
		t.Run(f.name, func(t *testing.T) {
			b := newBridgeLab(t, labOptions{replicas: 2, ports: []uint16{6379}, noServers: true})
			var redis []*lab.Proc
			for i := range b.ReplicaNS {
				redis = append(redis, b.startRedis(i))
			}
			b.waitHealthy(6379, "a", "b")
			guard := b.guardResets()
			c := b.dial(6379)
			c.SetDeadline(time.Now().Add(30 * time.Second))

			const total, chunk, killAt = 3000, 10, 1000
			var done atomic.Int64
			injected := b.after(0, func() error {
				for done.Load() < killAt {
					time.Sleep(200 * time.Microsecond)
				}
				return redis[0].Signal(f.sig)
			})
			var last int64
			var maxGap time.Duration
			for n := 0; n < total; n += chunk {
				got, gap, err := labsvc.RedisIncr(c, "ftb:counter", chunk)
				if err != nil {
					t.Fatalf("after %d INCRs (last reply %d): %v", n, last, err)
				}
				if want := last + chunk; got != want {
					t.Fatalf("after %d INCRs: last reply %d, want %d (gap or repeat across chunks)", n+chunk, got, want)
				}
				last = got
				maxGap = max(maxGap, gap)
				done.Store(int64(n + chunk))
			}
			if err := <-injected; err != nil {
				t.Fatal(err)
			}
			if last != total {
				t.Fatalf("last reply %d, want %d", last, total)
			}
			logStall(t, "redis-"+f.name, maxGap)
			b.waitLog(5*time.Second, "failover", "from=a")
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			guard.check()
			b.daemonAlive()
		})
	}
}

// TestNginxCurl downloads a 32 MiB file with curl through the box while the
// primary's nginx (master and worker: its process group) is killed.
func TestNginxCurl(t *testing.T) {
	needLab(t)
	needBinary(t, "nginx")
	needBinary(t, "curl")
	for _, fault := range []string{"none", "kill9"} {
		t.Run(fault, func(t *testing.T) {
			b := newBridgeLab(t, labOptions{replicas: 2, ports: []uint16{80}, noServers: true})
			const size, seed = 32 << 20, 77
			docroot := filepath.Join(b.Dir(), "www")
			if err := os.MkdirAll(docroot, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := labsvc.WriteDeterministicFile(filepath.Join(docroot, "blob.bin"), size, seed); err != nil {
				t.Fatal(err)
			}
			var ngx []*lab.Proc
			for i := range b.ReplicaNS {
				dir := filepath.Join(b.Dir(), fmt.Sprintf("nginx-%d", i))
				if _, err := labsvc.NginxConfig(dir, b.VIP.String()+":80", docroot); err != nil {
					t.Fatal(err)
				}
				ngx = append(ngx, b.startServer(i, 80, "nginx", labsvc.NginxArgs(dir)...))
			}
			b.waitHealthy(80, "a", "b")
			guard := b.guardResets()
			out := filepath.Join(b.Dir(), "curl.out")
			// nginx's Date header has one-second resolution: start early in a
			// second so both replicas stamp the same second (a difference
			// there is a real divergence the box would act on).
			waitSecondPhase(50 * time.Millisecond)
			cmd := b.Command(b.ClientNS, "curl", "-sS", "--fail", "--max-time", "30", "--limit-rate", "20M",
				"-o", out, "-w", "%{http_code} %{size_download} %{time_total}\n",
				fmt.Sprintf("http://%s/blob.bin", b.VIP))
			var injected <-chan error
			if fault == "kill9" {
				injected = b.after(500*time.Millisecond, func() error {
					s, err := b.trySnapshot()
					if err == nil && s.Divergences != 0 {
						return fmt.Errorf("a replica diverged before the fault (nginx Date header?): %s", connSummary(s))
					}
					return ngx[0].Kill()
				})
			}
			start := time.Now()
			res, err := cmd.CombinedOutput()
			took := time.Since(start)
			if err != nil {
				t.Fatalf("curl: %v: %s", err, res)
			}
			if injected != nil {
				if err := <-injected; err != nil {
					t.Fatal(err)
				}
			}
			sum, n, err := fileSHA256(out)
			if err != nil {
				t.Fatal(err)
			}
			if n != size || sum != labsvc.StreamHash(size, seed) {
				t.Fatalf("curl got %d bytes, sha256 %x; want %d bytes of the file (curl: %s)", n, sum, size, res)
			}
			t.Logf("curl: %s(took %v)", res, took.Round(time.Millisecond))
			if fault == "kill9" {
				b.waitLog(5*time.Second, "failover", "from=a")
				if took < 700*time.Millisecond {
					t.Errorf("the download took %v: over before the kill at 500ms", took)
				}
			}
			if s := b.snapshot(); s.Divergences != 0 {
				t.Errorf("divergences: %d", s.Divergences)
			}
			guard.check()
			b.daemonAlive()
		})
	}
}

// TestMemcachedSetGet runs a set/get loop against memcached while the
// primary's memcached is killed: every get returns what was set.
func TestMemcachedSetGet(t *testing.T) {
	needLab(t)
	needBinary(t, "memcached")
	b := newBridgeLab(t, labOptions{replicas: 2, ports: []uint16{11211}, noServers: true})
	var mc []*lab.Proc
	for i := range b.ReplicaNS {
		mc = append(mc, b.startServer(i, 11211, "memcached", "-u", "root", "-l", b.VIP.String(), "-p", "11211",
			"-U", "0", "-t", "1", "-m", "16", "-c", "64"))
	}
	b.waitHealthy(11211, "a", "b")
	guard := b.guardResets()
	c := b.dial(11211)
	c.SetDeadline(time.Now().Add(30 * time.Second))
	lc := &lineConn{c: c, r: bufio.NewReader(c)}

	const total, killAt = 1500, 500
	var done atomic.Int64
	injected := b.after(0, func() error {
		for done.Load() < killAt {
			time.Sleep(200 * time.Microsecond)
		}
		return mc[0].Signal(syscall.SIGKILL)
	})
	var maxGap time.Duration
	for i := 0; i < total; i++ {
		key := fmt.Sprintf("k%d", i%97)
		val := fmt.Sprintf("v%d-%s", i, strings.Repeat("x", i%300))
		t0 := time.Now()
		if _, err := fmt.Fprintf(c, "set %s %d 0 %d\r\n%s\r\n", key, i%7, len(val), val); err != nil {
			t.Fatalf("set #%d: %v", i, err)
		}
		if l, err := lc.line(); err != nil || l != "STORED" {
			t.Fatalf("set #%d: reply %q, %v", i, l, err)
		}
		if _, err := fmt.Fprintf(c, "get %s\r\n", key); err != nil {
			t.Fatalf("get #%d: %v", i, err)
		}
		want := []string{fmt.Sprintf("VALUE %s %d %d", key, i%7, len(val)), val, "END"}
		for _, w := range want {
			if l, err := lc.line(); err != nil || l != w {
				t.Fatalf("get #%d: line %q, want %q (%v)", i, l, w, err)
			}
		}
		maxGap = max(maxGap, time.Since(t0))
		done.Store(int64(i + 1))
	}
	if err := <-injected; err != nil {
		t.Fatal(err)
	}
	logStall(t, "memcached-kill9", maxGap)
	b.waitLog(5*time.Second, "failover", "from=a")
	if _, err := fmt.Fprintf(c, "quit\r\n"); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if rest, err := lc.r.ReadString('\n'); err == nil || rest != "" {
		t.Fatalf("after quit: %q, %v (want a clean EOF)", rest, err)
	} else if !strings.Contains(err.Error(), "EOF") {
		t.Fatalf("after quit: %v (want a clean EOF)", err)
	}
	guard.check()
	b.daemonAlive()
}
