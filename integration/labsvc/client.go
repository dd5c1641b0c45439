package labsvc

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// Result describes one verified transfer.
type Result struct {
	// Bytes is the number of bytes transferred and verified (on error: up to
	// the failure).
	Bytes int64
	// SHA256 is the hash of the bytes transferred.
	SHA256 [32]byte
	// MaxGap is the longest client-visible stall: the longest time between
	// two successful reads (downloads, echoes) or writes (uploads), counting
	// from the request and, for uploads, up to the server's reply. A
	// failover shows up here.
	MaxGap time.Duration
	// Duration is the time from sending the request to the last byte.
	Duration time.Duration
}

// Pace asks Download for PACE instead of GEN.
type Pace struct {
	// Chunk is the number of bytes the server writes at a time; must be > 0.
	Chunk int
	// Delay is the server's pause between chunks, in whole milliseconds.
	Delay time.Duration
}

// gapTimer tracks the longest interval between successive events.
type gapTimer struct {
	start, last time.Time
	max         time.Duration
}

func newGapTimer() gapTimer {
	now := time.Now()
	return gapTimer{start: now, last: now}
}

func (g *gapTimer) tick() {
	now := time.Now()
	if d := now.Sub(g.last); d > g.max {
		g.max = d
	}
	g.last = now
}

// Download requests n bytes with GEN (pace nil) or PACE and verifies every
// byte against Stream(n, seed) as it arrives. A mismatch reports its
// offset; a server error line in place of data is quoted.
func Download(c net.Conn, n int64, seed uint64, pace *Pace) (Result, error) {
	if n < 0 {
		return Result{}, errors.New("labsvc: negative length")
	}
	req := fmt.Sprintf("GEN %d %d\n", n, seed)
	if pace != nil {
		if pace.Chunk <= 0 || pace.Delay < 0 {
			return Result{}, fmt.Errorf("labsvc: bad pace %+v", *pace)
		}
		req = fmt.Sprintf("PACE %d %d %d %d\n", n, pace.Chunk, pace.Delay.Milliseconds(), seed)
	}
	g := newGapTimer()
	if _, err := io.WriteString(c, req); err != nil {
		return Result{}, fmt.Errorf("labsvc: sending %q: %w", strings.TrimSpace(req), err)
	}
	v := newVerifier(seed)
	res, err := v.readN(c, n, &g)
	if err != nil {
		err = fmt.Errorf("labsvc: %s: %w", strings.TrimSpace(req), err)
	}
	return res, err
}

// verifier compares incoming bytes with the stream and hashes them.
type verifier struct {
	seed      uint64
	got, want []byte
	h         interface {
		io.Writer
		Sum([]byte) []byte
	}
}

func newVerifier(seed uint64) *verifier {
	return &verifier{seed: seed, got: make([]byte, bufSize), want: make([]byte, bufSize), h: sha256.New()}
}

// readN reads exactly n bytes from c (never more: the next reply belongs to
// the next command), checking them against the stream.
func (v *verifier) readN(c net.Conn, n int64, g *gapTimer) (Result, error) {
	var res Result
	finish := func() {
		v.h.Sum(res.SHA256[:0])
		res.MaxGap = g.max
		res.Duration = time.Since(g.start)
	}
	for res.Bytes < n {
		k, err := c.Read(v.got[:min(int64(len(v.got)), n-res.Bytes)])
		if k > 0 {
			g.tick()
			got, want := v.got[:k], v.want[:k]
			fill(want, v.seed, res.Bytes)
			if i := firstDiff(got, want); i >= 0 {
				off := res.Bytes + int64(i)
				msg := fmt.Sprintf("byte %d of %d is 0x%02x, want 0x%02x", off, n, got[i], want[i])
				if off == 0 && bytes.HasPrefix(got, []byte("ERR ")) {
					line, _, _ := bytes.Cut(got, []byte("\n"))
					msg += fmt.Sprintf(" (server said %q)", line)
				}
				v.h.Write(got[:i])
				res.Bytes = off
				finish()
				return res, errors.New(msg)
			}
			v.h.Write(got)
			res.Bytes += int64(k)
		}
		if err != nil && res.Bytes < n {
			finish()
			return res, fmt.Errorf("after %d of %d bytes: %w", res.Bytes, n, err)
		}
	}
	finish()
	return res, nil
}

func firstDiff(a, b []byte) int {
	if bytes.Equal(a, b) {
		return -1
	}
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// Upload sends SINK and then n bytes read from r, and checks the server's
// SHA-256 of them against its own. r must supply at least n bytes.
func Upload(c net.Conn, r io.Reader, n int64) (Result, error) {
	var res Result
	if n < 0 {
		return res, errors.New("labsvc: negative length")
	}
	g := newGapTimer()
	h := sha256.New()
	finish := func() {
		h.Sum(res.SHA256[:0])
		res.MaxGap = g.max
		res.Duration = time.Since(g.start)
	}
	if _, err := fmt.Fprintf(c, "SINK %d\n", n); err != nil {
		return res, fmt.Errorf("labsvc: sending SINK: %w", err)
	}
	buf := make([]byte, bufSize)
	for res.Bytes < n {
		k, rerr := io.ReadFull(r, buf[:min(int64(len(buf)), n-res.Bytes)])
		if k > 0 {
			if _, err := c.Write(buf[:k]); err != nil {
				finish()
				return res, fmt.Errorf("labsvc: SINK %d: write after %d bytes: %w", n, res.Bytes, err)
			}
			g.tick()
			h.Write(buf[:k])
			res.Bytes += int64(k)
		}
		if rerr != nil && res.Bytes < n {
			finish()
			return res, fmt.Errorf("labsvc: SINK %d: source ended after %d bytes: %w", n, res.Bytes, rerr)
		}
	}
	line, err := readLine(c, "\n")
	g.tick()
	finish()
	if err != nil {
		return res, fmt.Errorf("labsvc: SINK %d: reading hash: %w", n, err)
	}
	if want := hex.EncodeToString(res.SHA256[:]); line != want {
		return res, fmt.Errorf("labsvc: SINK %d: server hash %q, want %s", n, line, want)
	}
	return res, nil
}

// Echo sends ECHO and n bytes of Stream(n, seed) and verifies that exactly
// those bytes come back. Writing runs concurrently with reading so a large
// n cannot deadlock on full socket buffers. After a failure the write side
// of c has an expired deadline (it was used to stop the writer).
func Echo(c net.Conn, n int64, seed uint64) (Result, error) {
	if n < 0 {
		return Result{}, errors.New("labsvc: negative length")
	}
	g := newGapTimer()
	if _, err := fmt.Fprintf(c, "ECHO %d\n", n); err != nil {
		return Result{}, fmt.Errorf("labsvc: sending ECHO: %w", err)
	}
	werr := make(chan error, 1)
	go func() {
		_, err := io.CopyBuffer(c, Stream(n, seed), make([]byte, bufSize))
		werr <- err
	}()
	res, err := newVerifier(seed).readN(c, n, &g)
	if err != nil {
		c.SetWriteDeadline(time.Now()) // unblock the writer
		<-werr
		return res, fmt.Errorf("labsvc: ECHO %d: %w", n, err)
	}
	if err := <-werr; err != nil {
		return res, fmt.Errorf("labsvc: ECHO %d: write: %w", n, err)
	}
	return res, nil
}

// Incr sends INCR count times, one at a time, and checks that every reply
// is the previous one plus 1 (the first may be any positive value, since
// earlier INCRs may have run on c). maxGap is the longest round trip.
func Incr(c net.Conn, count int) (last int, maxGap time.Duration, err error) {
	prev := -1
	for i := 0; i < count; i++ {
		t0 := time.Now()
		if _, err := io.WriteString(c, "INCR\n"); err != nil {
			return prev, maxGap, fmt.Errorf("labsvc: INCR #%d: %w", i+1, err)
		}
		line, err := readLine(c, "\n")
		if d := time.Since(t0); d > maxGap {
			maxGap = d
		}
		if err != nil {
			return prev, maxGap, fmt.Errorf("labsvc: INCR #%d: %w", i+1, err)
		}
		k, err := strconv.Atoi(line)
		switch {
		case err != nil || k < 1:
			return prev, maxGap, fmt.Errorf("labsvc: INCR #%d: reply %q is not a positive number", i+1, line)
		case prev >= 0 && k != prev+1:
			return prev, maxGap, fmt.Errorf("labsvc: INCR #%d: reply %d after %d", i+1, k, prev)
		}
		prev = k
	}
	return prev, maxGap, nil
}

// Quit sends QUIT and expects "BYE" followed by a clean end of stream
// (FIN, not RST, and no further data). It does not close c.
func Quit(c net.Conn) error {
	if _, err := io.WriteString(c, "QUIT\n"); err != nil {
		return fmt.Errorf("labsvc: QUIT: %w", err)
	}
	line, err := readLine(c, "\n")
	if err != nil {
		return fmt.Errorf("labsvc: QUIT: %w", err)
	}
	if line != "BYE" {
		return fmt.Errorf("labsvc: QUIT: reply %q, want BYE", line)
	}
	var b [64]byte
	k, err := c.Read(b[:])
	switch {
	case k > 0:
		return fmt.Errorf("labsvc: QUIT: data %q after BYE", b[:k])
	case errors.Is(err, io.EOF):
		return nil
	case err == nil:
		return errors.New("labsvc: QUIT: empty read after BYE")
	}
	return fmt.Errorf("labsvc: QUIT: not a clean close: %w", err)
}

// RedisIncr sends the RESP command INCR key count times, one at a time, and
// checks the replies are consecutive integers (the first may be anything).
// An error reply ("-ERR ...") or any other reply fails. maxGap is the
// longest round trip.
func RedisIncr(c net.Conn, key string, count int) (last int64, maxGap time.Duration, err error) {
	req := fmt.Sprintf("*2\r\n$4\r\nINCR\r\n$%d\r\n%s\r\n", len(key), key)
	started := false
	for i := 0; i < count; i++ {
		t0 := time.Now()
		if _, err := io.WriteString(c, req); err != nil {
			return last, maxGap, fmt.Errorf("labsvc: redis INCR #%d: %w", i+1, err)
		}
		line, err := readLine(c, "\r\n")
		if d := time.Since(t0); d > maxGap {
			maxGap = d
		}
		if err != nil {
			return last, maxGap, fmt.Errorf("labsvc: redis INCR #%d: %w", i+1, err)
		}
		num, ok := strings.CutPrefix(line, ":")
		v, perr := strconv.ParseInt(num, 10, 64)
		if !ok || perr != nil {
			return last, maxGap, fmt.Errorf("labsvc: redis INCR #%d: reply %q", i+1, line)
		}
		if started && v != last+1 {
			return last, maxGap, fmt.Errorf("labsvc: redis INCR #%d: reply %d after %d", i+1, v, last)
		}
		last, started = v, true
	}
	return last, maxGap, nil
}

// readLine reads one reply line ending in eol and returns it without eol.
// It reads in small chunks rather than byte by byte; that never consumes a
// later reply because every helper keeps one request outstanding, so bytes
// after the line are a protocol violation and reported as such.
func readLine(c net.Conn, eol string) (string, error) {
	var line []byte
	var b [128]byte
	for len(line) <= maxLine {
		k, err := c.Read(b[:])
		line = append(line, b[:k]...)
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			if i != len(line)-1 {
				return "", fmt.Errorf("unexpected bytes %q after reply %q", line[i+1:], line[:i+1])
			}
			s := string(line)
			if !strings.HasSuffix(s, eol) {
				return "", fmt.Errorf("reply %q does not end in %q", s, eol)
			}
			return strings.TrimSuffix(s, eol), nil
		}
		if err != nil {
			if len(line) > 0 {
				return "", fmt.Errorf("partial reply %q: %w", line, err)
			}
			return "", err
		}
	}
	return "", fmt.Errorf("reply longer than %d bytes", maxLine)
}
