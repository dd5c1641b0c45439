package soak

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/ftbridge/ftbridge/integration/labsvc"
)

// Session kinds: what one client connection does.
const (
	KindDownload = "download" // GEN: bulk from the replicas, as fast as it goes
	KindPaced    = "paced"    // PACE: a paced download, the finest stall measure
	KindUpload   = "upload"   // SINK: bulk to the replicas, hash checked by them
	KindEcho     = "echo"     // ECHO: both directions at once
	KindReqResp  = "reqresp"  // INCR round trips with short pauses
	KindIdle     = "idle"     // long-lived, mostly idle, INCR now and then
	KindRedis    = "redis"    // RESP INCR on redis-server, a real server
)

// sessionTimeout bounds one session; a stream that stops for this long
// is a failure (the dataplane's slowest recovery, a stall hold-down, is
// seconds).
const sessionTimeout = 60 * time.Second

// Session is one verified client connection.
type Session struct {
	ID     int       `json:"id"`
	Worker int       `json:"worker"`
	Kind   string    `json:"kind"`
	Local  string    `json:"local,omitempty"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	// Down and Up are the bytes verified in each direction.
	Down int64 `json:"down"`
	Up   int64 `json:"up"`
	// Ops is the number of requests answered and checked.
	Ops int `json:"ops"`
	// MaxGap is the longest client-visible stall of the session.
	MaxGap time.Duration `json:"max_gap_ns"`
	// Failovers is the number of failovers the daemon logged for this
	// connection (filled in after the run).
	Failovers int `json:"failovers,omitempty"`
	// Err is what went wrong (empty when the session verified), Class its
	// category (see classify).
	Err   string `json:"err,omitempty"`
	Class string `json:"class,omitempty"`
}

// Mix weighs the session kinds.
type Mix map[string]int

// DefaultMix is the soak's default blend of session kinds.
var DefaultMix = Mix{KindDownload: 1, KindPaced: 4, KindUpload: 2, KindEcho: 2, KindReqResp: 2}

func (m Mix) pick(rng *rand.Rand) string {
	total := 0
	kinds := sortedKeys(m)
	for _, k := range kinds {
		total += m[k]
	}
	n := rng.IntN(max(total, 1))
	for _, k := range kinds {
		if n < m[k] {
			return k
		}
		n -= m[k]
	}
	return KindPaced
}

// client runs sessions through a Bridge.
type client struct {
	b *Bridge
	// stop tells long-lived sessions to wind down.
	stop <-chan struct{}
}

// run performs one session of kind and returns its record.
func (c *client) run(id, worker int, kind string, rng *rand.Rand) Session {
	s := Session{ID: id, Worker: worker, Kind: kind, Start: time.Now()}
	port := LabsvcPort
	if kind == KindRedis {
		port = RedisPort
	}
	conn, err := c.b.Dial(port, 5*time.Second)
	if err != nil {
		s.End = time.Now()
		s.Err, s.Class = err.Error(), "dial"
		return s
	}
	defer conn.Close()
	s.Local = conn.LocalAddr().String()
	conn.SetDeadline(time.Now().Add(sessionTimeout))
	err = c.session(conn, &s, rng)
	if err == nil {
		err = c.close(conn, kind)
	}
	s.End = time.Now()
	if err != nil {
		s.Err, s.Class = err.Error(), classify(err)
	}
	return s
}

func (c *client) session(conn net.Conn, s *Session, rng *rand.Rand) error {
	seed := rng.Uint64()
	gap := func(d time.Duration) {
		if d > s.MaxGap {
			s.MaxGap = d
		}
	}
	switch s.Kind {
	case KindDownload:
		n := 256<<10 + rng.Int64N(2<<20)
		res, err := labsvc.Download(conn, n, seed, nil)
		s.Down, s.Ops = res.Bytes, 1
		gap(res.MaxGap)
		return err
	case KindPaced:
		n := 512<<10 + rng.Int64N(2<<20)
		res, err := labsvc.Download(conn, n, seed, &labsvc.Pace{Chunk: 32 << 10, Delay: 10 * time.Millisecond})
		s.Down, s.Ops = res.Bytes, 1
		gap(res.MaxGap)
		return err
	case KindUpload:
		n := 256<<10 + rng.Int64N(4<<20)
		var src io.Reader = labsvc.Stream(n, seed)
		if rng.IntN(2) == 0 {
			src = &throttled{r: src, chunk: 48 << 10, delay: 10 * time.Millisecond}
		}
		res, err := labsvc.Upload(conn, src, n)
		if err == nil {
			s.Up = res.Bytes // the server's hash matched: verified
		}
		s.Ops = 1
		gap(res.MaxGap)
		return err
	case KindEcho:
		n := 64<<10 + rng.Int64N(1<<20)
		res, err := labsvc.Echo(conn, n, seed)
		s.Down, s.Ops = res.Bytes, 1
		if err == nil {
			s.Up = n
		}
		gap(res.MaxGap)
		return err
	case KindReqResp:
		k := 20 + rng.IntN(150)
		for i := 0; i < k; i++ {
			last, g, err := labsvc.Incr(conn, 1)
			gap(g)
			if err != nil {
				return err
			}
			if last != i+1 {
				return fmt.Errorf("INCR #%d: reply %d, want %d (lost or repeated request)", i+1, last, i+1)
			}
			s.Ops++
			time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
		}
		return nil
	case KindIdle:
		life := 5*time.Second + time.Duration(rng.Int64N(int64(15*time.Second)))
		end := time.Now().Add(life)
		for i := 1; time.Now().Before(end); i++ {
			last, g, err := labsvc.Incr(conn, 1)
			gap(g)
			if err != nil {
				return err
			}
			if last != i {
				return fmt.Errorf("INCR #%d: reply %d, want %d (lost or repeated request)", i, last, i)
			}
			s.Ops++
			select {
			case <-c.stop:
				return nil
			case <-time.After(200*time.Millisecond + time.Duration(rng.IntN(800))*time.Millisecond):
			}
		}
		return nil
	case KindRedis:
		// A key no other session uses: redis state is shared by all
		// connections of a replica, and only per-connection input order
		// is the same on every replica.
		key := fmt.Sprintf("soak:%d:%x", s.ID, seed)
		k := 20 + rng.IntN(150)
		for i := 0; i < k; i++ {
			v, g, err := labsvc.RedisIncr(conn, key, 1)
			gap(g)
			if err != nil {
				return err
			}
			if v != int64(i+1) {
				return fmt.Errorf("redis INCR #%d: reply %d, want %d (lost or repeated request)", i+1, v, i+1)
			}
			s.Ops++
			time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
		}
		return nil
	}
	return fmt.Errorf("soak: unknown session kind %q", s.Kind)
}

// close ends a session the way a well-behaved client does and checks
// that the server's side closes cleanly (FIN, not RST).
func (c *client) close(conn net.Conn, kind string) error {
	if kind != KindRedis {
		return labsvc.Quit(conn)
	}
	if _, err := io.WriteString(conn, "*1\r\n$4\r\nQUIT\r\n"); err != nil {
		return fmt.Errorf("redis QUIT: %w", err)
	}
	var b [64]byte
	got := ""
	for !strings.HasSuffix(got, "\r\n") {
		n, err := conn.Read(b[:])
		got += string(b[:n])
		if err != nil {
			return fmt.Errorf("redis QUIT: reply %q: %w", got, err)
		}
	}
	if got != "+OK\r\n" {
		return fmt.Errorf("redis QUIT: reply %q", got)
	}
	n, err := conn.Read(b[:])
	if n > 0 || !errors.Is(err, io.EOF) {
		return fmt.Errorf("redis QUIT: not a clean close: %q %v", b[:n], err)
	}
	return nil
}

// classify names the category of a session error, so a report can say
// at a glance whether bytes were lost or duplicated (mismatch, INCR gap),
// a connection was reset, or a stream stalled for good (timeout).
func classify(err error) string {
	s := err.Error()
	switch {
	case errors.Is(err, syscall.ECONNRESET) || strings.Contains(s, "connection reset"):
		return "reset"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, os.ErrDeadlineExceeded) || strings.Contains(s, "i/o timeout"):
		return "timeout"
	case strings.Contains(s, "want 0x") || strings.Contains(s, "hash"):
		return "mismatch"
	case strings.Contains(s, "lost or repeated") || strings.Contains(s, " after "):
		if strings.Contains(s, "EOF") {
			return "eof"
		}
		return "sequence"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(s, "EOF"):
		return "eof"
	case errors.Is(err, syscall.EPIPE) || strings.Contains(s, "broken pipe"):
		return "reset"
	}
	return "other"
}

// throttled yields at most chunk bytes per Read, one Read every delay.
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
