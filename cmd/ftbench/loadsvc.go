package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The load protocol. A client opens a connection and sends a 24-byte
// request header: an op byte, 7 reserved bytes, then n and arg as big-endian
// uint64. Several requests may follow each other on one connection. Every
// byte the server sends is a function of its stream offset only (see
// patternAt), so replicas running the same server produce identical
// output, which is what the box's failover needs.
const (
	hdrLen = 24

	// opDownload: the server sends n pattern bytes.
	opDownload = 'D'
	// opUpload: the server reads and discards n bytes, then sends one byte.
	opUpload = 'U'
	// opEcho: the server echoes messages of arg bytes until the peer closes.
	opEcho = 'E'
	// opPaced: the server sends n pattern bytes in chunks of arg>>32 bytes
	// with a pause of arg&0xffffffff microseconds after each chunk.
	opPaced = 'P'
	// opOneShot: the server sends one byte and closes (connection rate).
	opOneShot = 'X'
)

// patternLen is the period of the output pattern.
const patternLen = 64 << 10

// pattern holds two periods so that any window of up to patternLen bytes
// starting anywhere in the first period is one slice.
var pattern = func() []byte {
	b := make([]byte, 2*patternLen)
	x := uint64(0x9E3779B97F4A7C15)
	for i := 0; i < patternLen; i += 8 {
		// xorshift64: any fixed sequence will do, as long as it does not
		// repeat within a TCP segment (so misordered data is caught).
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		binary.LittleEndian.PutUint64(b[i:], x)
	}
	copy(b[patternLen:], b[:patternLen])
	return b
}()

// patternAt returns the k (<= patternLen) pattern bytes at stream offset off.
func patternAt(off int64, k int) []byte {
	i := int(off % patternLen)
	return pattern[i : i+k]
}

func encodeHdr(op byte, n, arg uint64) []byte {
	b := make([]byte, hdrLen)
	b[0] = op
	binary.BigEndian.PutUint64(b[8:], n)
	binary.BigEndian.PutUint64(b[16:], arg)
	return b
}

// raiseNoFile lifts the open-file limit so that one process can hold 100k
// connections (root may raise the hard limit up to fs.nr_open).
func raiseNoFile(want uint64) {
	var r syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r) != nil {
		return
	}
	if r.Cur >= want {
		return
	}
	r.Cur = want
	if r.Max < want {
		r.Max = want
	}
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r) != nil {
		// Not root: take what the hard limit allows.
		syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r)
		r.Cur = r.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r)
	}
}

// maxConnsPerProc is how many connections one load process (client or
// hold server) is given: the open-file limit may be as low as 20000 and
// cannot always be raised (no CAP_SYS_RESOURCE in a sandbox).
const maxConnsPerProc = 15000

// serveMain is "ftbench serve -listen ADDR [-ports P,P] [-hold P]": the
// load server on every listed port plus a hold port that accepts
// connections and keeps them without reading (for the memory-per-connection
// test). The hold port is opened with SO_REUSEPORT so that several
// processes can share 100k connections between them. It runs until killed.
func serveMain(args []string) int {
	var addr, ports string
	hold := 0
	for i := 0; i+1 < len(args); i += 2 {
		switch args[i] {
		case "-listen":
			addr = args[i+1]
		case "-ports":
			ports = args[i+1]
		case "-hold":
			hold, _ = strconv.Atoi(args[i+1])
		}
	}
	if addr == "" || (ports == "" && hold == 0) {
		fmt.Fprintln(os.Stderr, "usage: ftbench serve -listen ADDR [-ports P[,P...]] [-hold P]")
		return 2
	}
	raiseNoFile(1 << 20)
	errc := make(chan error, 8)
	for _, p := range strings.Split(ports, ",") {
		if p == "" {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(addr, p))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		go func() { errc <- serveLoad(ln) }()
	}
	if hold > 0 {
		lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			})
			return errors.Join(err, serr)
		}}
		ln, err := lc.Listen(context.Background(), "tcp", net.JoinHostPort(addr, strconv.Itoa(hold)))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		go func() { errc <- serveHold(ln) }()
	}
	fmt.Fprintln(os.Stderr, "ftbench serve: listening")
	fmt.Fprintln(os.Stderr, <-errc)
	return 1
}

// serveLoad serves the load protocol, one goroutine per connection.
func serveLoad(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			// EMFILE and friends: back off instead of spinning.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go func() {
			defer c.Close()
			serveConn(c)
		}()
	}
}

// serveHold accepts and keeps connections; it never reads them, so they
// cost the server one socket and no goroutine each. The references must
// stay: a collected net.Conn's finalizer would close it.
func serveHold(ln net.Listener) error {
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		held = append(held, c)
	}
}

func serveConn(c net.Conn) {
	r := bufio.NewReaderSize(c, 64<<10)
	hdr := make([]byte, hdrLen)
	for {
		if _, err := io.ReadFull(r, hdr); err != nil {
			return
		}
		n := int64(binary.BigEndian.Uint64(hdr[8:]))
		arg := binary.BigEndian.Uint64(hdr[16:])
		var err error
		switch hdr[0] {
		case opDownload:
			err = sendPattern(c, n, patternLen, 0)
		case opPaced:
			err = sendPattern(c, n, int(arg>>32), time.Duration(arg&0xffffffff)*time.Microsecond)
		case opUpload:
			if _, err = io.CopyN(io.Discard, r, n); err == nil {
				_, err = c.Write([]byte{'K'})
			}
		case opEcho:
			err = echo(c, r, int(arg))
		case opOneShot:
			c.Write([]byte{'K'})
			return
		default:
			return
		}
		if err != nil {
			return
		}
	}
}

// sendPattern writes n pattern bytes in chunks, pausing after each chunk
// but the last when pause > 0.
func sendPattern(c net.Conn, n int64, chunk int, pause time.Duration) error {
	chunk = max(1, min(chunk, patternLen))
	for off := int64(0); off < n; {
		k := int(min(int64(chunk), n-off))
		if _, err := c.Write(patternAt(off, k)); err != nil {
			return err
		}
		off += int64(k)
		if pause > 0 && off < n {
			time.Sleep(pause)
		}
	}
	return nil
}

func echo(c net.Conn, r *bufio.Reader, size int) error {
	if size <= 0 || size > 1<<20 {
		return errors.New("bad echo size")
	}
	buf := make([]byte, size)
	for {
		if _, err := io.ReadFull(r, buf); err != nil {
			return err
		}
		if _, err := c.Write(buf); err != nil {
			return err
		}
	}
}

// loadSpec is what "ftbench load" is asked to do (JSON on the command line).
type loadSpec struct {
	Kind    string        `json:"kind"` // bulk, rr, conn, hold
	Addr    string        `json:"addr"`
	Streams int           `json:"streams,omitempty"`
	Down    bool          `json:"down,omitempty"`
	Dur     time.Duration `json:"dur,omitempty"`
	Size    int           `json:"size,omitempty"`
	Workers int           `json:"workers,omitempty"`
	N       int           `json:"n,omitempty"`
	Sources []string      `json:"sources,omitempty"` // local addresses to spread connections over
}

// loadResult is what it reports (JSON on stdout).
type loadResult struct {
	Bytes  int64   `json:"bytes,omitempty"`
	Secs   float64 `json:"secs"`
	Count  int     `json:"count,omitempty"`
	Errors int     `json:"errors,omitempty"`
	FirstE string  `json:"first_error,omitempty"`
	// RTTs are the round trips of an rr run, in nanoseconds.
	RTTs []int64 `json:"rtts,omitempty"`
}

// loadMain is "ftbench load JSON": one load run from the calling namespace.
func loadMain(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: ftbench load JSON")
		return 2
	}
	var s loadSpec
	if err := json.Unmarshal([]byte(args[0]), &s); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	raiseNoFile(1 << 20)
	var res loadResult
	var err error
	switch s.Kind {
	case "bulk":
		res, err = runBulk(s)
	case "rr":
		res, err = runRR(s)
	case "conn":
		res, err = runConnRate(s)
	case "hold":
		res, err = runHold(s, os.Stdin, os.Stderr)
	default:
		err = fmt.Errorf("unknown load kind %q", s.Kind)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ftbench load:", err)
		return 1
	}
	json.NewEncoder(os.Stdout).Encode(res)
	return 0
}

// runBulk moves data over s.Streams connections for s.Dur, downloads or
// uploads, and reports the bytes the client read (download) or handed to
// its kernel (upload; the few MB still in socket buffers at the end are
// under 0.5% of a run).
func runBulk(s loadSpec) (loadResult, error) {
	conns := make([]net.Conn, s.Streams)
	for i := range conns {
		c, err := net.DialTimeout("tcp", s.Addr, 5*time.Second)
		if err != nil {
			for _, c := range conns[:i] {
				c.Close()
			}
			return loadResult{}, err
		}
		conns[i] = c
	}
	var total atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(s.Dur)
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetDeadline(deadline)
			buf := make([]byte, 256<<10)
			op := byte(opUpload)
			if s.Down {
				op = opDownload
			}
			if _, err := c.Write(encodeHdr(op, 1<<60, 0)); err != nil {
				return
			}
			var n int64
			for {
				var k int
				var err error
				if s.Down {
					k, err = c.Read(buf)
				} else {
					k, err = c.Write(buf)
				}
				n += int64(k)
				if err != nil {
					break
				}
			}
			total.Add(n)
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	for _, c := range conns {
		c.Close()
	}
	return loadResult{Bytes: total.Load(), Secs: secs}, nil
}

// runRR does request/response round trips of s.Size bytes on one
// connection for s.Dur and reports each round trip.
func runRR(s loadSpec) (loadResult, error) {
	c, err := net.DialTimeout("tcp", s.Addr, 5*time.Second)
	if err != nil {
		return loadResult{}, err
	}
	defer c.Close()
	if _, err := c.Write(encodeHdr(opEcho, 0, uint64(s.Size))); err != nil {
		return loadResult{}, err
	}
	msg := make([]byte, s.Size)
	in := make([]byte, s.Size)
	copy(msg, pattern)
	rtts := make([]int64, 0, 1<<17)
	start := time.Now()
	deadline := start.Add(s.Dur)
	c.SetDeadline(deadline.Add(5 * time.Second))
	// Warm up: the first round trips pay for page faults and the
	// scheduler's first wake-ups.
	for i := 0; i < 200; i++ {
		if _, err := c.Write(msg); err != nil {
			return loadResult{}, err
		}
		if _, err := io.ReadFull(c, in); err != nil {
			return loadResult{}, err
		}
	}
	start = time.Now()
	for t := start; t.Before(deadline); {
		if _, err := c.Write(msg); err != nil {
			return loadResult{}, err
		}
		if _, err := io.ReadFull(c, in); err != nil {
			return loadResult{}, err
		}
		now := time.Now()
		rtts = append(rtts, int64(now.Sub(t)))
		t = now
	}
	return loadResult{Count: len(rtts), Secs: time.Since(start).Seconds(), RTTs: rtts}, nil
}

// dialFrom dials addr from local address src ("" for any).
func dialFrom(src, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	return d.Dial("tcp", addr)
}

// runConnRate opens, uses (one byte each way) and closes connections from
// s.Workers goroutines for s.Dur. The server closes first, so the client's
// side ends without TIME_WAIT and its ports are reused at once.
func runConnRate(s loadSpec) (loadResult, error) {
	var count, errs atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(s.Dur)
	hdr := encodeHdr(opOneShot, 0, 0)
	for w := 0; w < s.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src := ""
			if len(s.Sources) > 0 {
				src = s.Sources[w%len(s.Sources)]
			}
			var b [8]byte
			for time.Now().Before(deadline) {
				c, err := dialFrom(src, s.Addr)
				if err == nil {
					c.SetDeadline(time.Now().Add(5 * time.Second))
					if _, err = c.Write(hdr); err == nil {
						var k int
						k, err = io.ReadAtLeast(c, b[:], 1)
						if err == nil && (k != 1 || b[0] != 'K') {
							err = errors.New("bad reply")
						}
					}
					c.Close()
				}
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				count.Add(1)
			}
		}()
	}
	wg.Wait()
	res := loadResult{Count: int(count.Load()), Errors: int(errs.Load()), Secs: time.Since(start).Seconds()}
	if e, ok := firstErr.Load().(string); ok {
		res.FirstE = e
	}
	return res, nil
}

// runHold opens s.N idle connections from s.Workers goroutines, spread
// over s.Sources, writes "READY count errors" to out, waits until in is
// closed, then closes them all.
func runHold(s loadSpec, in io.Reader, out io.Writer) (loadResult, error) {
	conns := make([]net.Conn, s.N)
	var next, errs atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < s.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= s.N {
					return
				}
				src := ""
				if len(s.Sources) > 0 {
					src = s.Sources[i%len(s.Sources)]
				}
				c, err := dialFrom(src, s.Addr)
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	open := 0
	for _, c := range conns {
		if c != nil {
			open++
		}
	}
	fmt.Fprintf(out, "READY %d %d\n", open, errs.Load())
	io.Copy(io.Discard, in)
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
	res := loadResult{Count: open, Errors: int(errs.Load()), Secs: secs}
	if e, ok := firstErr.Load().(string); ok {
		res.FirstE = e
	}
	return res, nil
}
