package integration_test

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ftbridge/ftbridge/integration/labsvc"
)

// incrN sends n INCRs and checks they continue from want.
func incrN(t *testing.T, c net.Conn, n, want int) int {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	buf := make([]byte, 32)
	for k := 0; k < n; k++ {
		if _, err := io.WriteString(c, "INCR\n"); err != nil {
			t.Fatal(err)
		}
		m, err := c.Read(buf)
		if err != nil {
			t.Fatalf("INCR %d: %v", want, err)
		}
		if got := strings.TrimSpace(string(buf[:m])); got != fmt.Sprint(want) {
			t.Fatalf("INCR: got %q, want %d", got, want)
		}
		want++
	}
	return want
}

// TestRejoinRestoresRedundancy: the primary dies, comes back, is replayed
// into the live connection, and then the other replica dies: the
// connection goes on on the rejoined one.
func TestRejoinRestoresRedundancy(t *testing.T) {
	b := newBridgeLab(t, labOptions{replicas: 2})
	b.waitHealthy(7000, "a", "b")
	c := b.dial(7000)
	next := incrN(t, c, 5, 1)
	if err := b.server(0).Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	b.waitLog(5*time.Second, "failover", "from=a", "replica=b")
	next = incrN(t, c, 5, next)
	b.startLabsvc(0)
	b.waitLog(10*time.Second, "rejoin-completed", "replica=a")
	s := b.snapshot()
	if len(s.Conns) != 1 || s.Conns[0].Redundancy != 2 {
		t.Fatalf("after the rejoin: %+v", s.Conns)
	}
	next = incrN(t, c, 5, next)
	if err := b.server(1).Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	b.waitLog(5*time.Second, "failover", "from=b", "replica=a")
	incrN(t, c, 5, next)
	if err := labsvc.Quit(c); err != nil {
		t.Fatal(err)
	}
}

// TestRejoinRedis: the same with Debian's redis-server and one connection
// running INCR: 1, 2, 3, ... with no gap or repeat across both failovers.
func TestRejoinRedis(t *testing.T) {
	if _, err := os.Stat("/usr/bin/redis-server"); err != nil {
		t.Skip("needs redis-server (apt-get install redis-server)")
	}
	b := newBridgeLab(t, labOptions{replicas: 2, ports: []uint16{6379}, noServers: true})
	start := func(i int) {
		dir := filepath.Join(b.Dir(), fmt.Sprintf("redis%d-%d", i, time.Now().UnixNano()))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		p, err := b.Start(b.ReplicaNS[i], "/usr/bin/redis-server", "--bind", b.VIP.String(), "--port", "6379",
			"--save", "", "--appendonly", "no", "--protected-mode", "no", "--dir", dir)
		if err != nil {
			t.Fatal(err)
		}
		b.servers[b.ReplicaNS[i]] = append(b.servers[b.ReplicaNS[i]], p)
		waitListening(t, b.Lab, b.ReplicaNS[i], 6379)
	}
	start(0)
	start(1)
	b.waitHealthy(6379, "a", "b")
	c := b.dial(6379)
	last, _, err := labsvc.RedisIncr(c, "k", 100)
	if err != nil || last != 100 {
		t.Fatalf("incr: %d %v", last, err)
	}
	b.server(0).Signal(syscall.SIGKILL)
	b.waitLog(5*time.Second, "failover", "from=a")
	start(0)
	b.waitLog(10*time.Second, "rejoin-completed", "replica=a")
	b.server(1).Signal(syscall.SIGKILL)
	last2, _, err := labsvc.RedisIncr(c, "k", 100)
	if err != nil || last2 != 200 {
		t.Fatalf("incr after the second failover: %d %v (want 200)", last2, err)
	}
	b.waitLog(5*time.Second, "failover", "from=b", "replica=a")
}
