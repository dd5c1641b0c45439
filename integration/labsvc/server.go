package labsvc

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	// maxLine bounds a command line; longer lines are refused, not buffered.
	maxLine = 1024
	// bufSize is the I/O chunk for GEN, SINK and ECHO.
	bufSize = 64 << 10
	// quitDrain bounds how long a QUIT-ed connection waits for the peer's
	// FIN. Reading until then (instead of closing at once) means unread
	// input never turns our close into an RST, which the box would read as
	// a crash.
	quitDrain = 30 * time.Second
)

// Serve serves the protocol on every connection accepted from l, one
// goroutine per connection. It returns nil once l is closed (any other
// accept error is returned), after closing the connections still open.
func Serve(l net.Listener) error {
	var (
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
		wg    sync.WaitGroup
	)
	for {
		c, err := l.Accept()
		if err != nil {
			mu.Lock()
			for c := range conns {
				c.Close()
			}
			mu.Unlock()
			wg.Wait()
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		mu.Lock()
		conns[c] = true
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			serveConn(c)
			c.Close()
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
		}()
	}
}

// session is one connection's state: the reader (which may hold bytes that
// belong to a later command) and the INCR counter.
type session struct {
	c       net.Conn
	r       *bufio.Reader
	counter int64
	buf     []byte
}

func serveConn(c net.Conn) {
	s := &session{c: c, r: bufio.NewReaderSize(c, bufSize), buf: make([]byte, bufSize)}
	for {
		line, err := readCommand(s.r)
		if errors.Is(err, errLineTooLong) {
			if s.reply("ERR line too long\n") != nil {
				return
			}
			continue
		}
		if err != nil {
			return
		}
		quit, err := s.do(line)
		if err != nil || quit {
			return
		}
	}
}

var errLineTooLong = errors.New("line too long")

// readCommand reads one line without its "\n" (and "\r"). An over-long
// line is consumed up to its newline, never buffered whole, and reported as
// errLineTooLong.
func readCommand(r *bufio.Reader) (string, error) {
	var line []byte
	tooLong := false
	for {
		frag, err := r.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(frag) > maxLine+2 {
				tooLong, line = true, nil
			} else {
				line = append(line, frag...)
			}
		}
		if err == nil {
			if tooLong {
				return "", errLineTooLong
			}
			return strings.TrimSuffix(strings.TrimSuffix(string(line), "\n"), "\r"), nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return "", err
		}
	}
}

func (s *session) reply(msg string) error {
	_, err := io.WriteString(s.c, msg)
	return err
}

// do executes one command. quit means the connection is finished.
func (s *session) do(line string) (quit bool, err error) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return false, s.reply("ERR empty command\n")
	}
	args := f[1:]
	switch f[0] {
	case "GEN":
		v, err := parseArgs(args, "GEN <n> <seed>", 2)
		if err != nil {
			return false, s.reply("ERR " + err.Error() + "\n")
		}
		return false, s.gen(int64(v[0]), v[1], 0, 0)
	case "PACE":
		v, err := parseArgs(args, "PACE <n> <chunk> <ms> <seed>", 4)
		if err == nil && v[1] == 0 {
			err = errors.New("chunk must be positive")
		}
		if err == nil && (v[1] > 1<<30 || v[2] > 3600_000) {
			err = errors.New("chunk or ms too large")
		}
		if err != nil {
			return false, s.reply("ERR " + err.Error() + "\n")
		}
		return false, s.gen(int64(v[0]), v[3], int(v[1]), time.Duration(v[2])*time.Millisecond)
	case "SINK":
		v, err := parseArgs(args, "SINK <n>", 1)
		if err != nil {
			return false, s.reply("ERR " + err.Error() + "\n")
		}
		return false, s.sink(int64(v[0]))
	case "ECHO":
		v, err := parseArgs(args, "ECHO <n>", 1)
		if err != nil {
			return false, s.reply("ERR " + err.Error() + "\n")
		}
		return false, s.echo(int64(v[0]))
	case "INCR":
		if len(args) != 0 {
			return false, s.reply("ERR usage: INCR\n")
		}
		s.counter++
		return false, s.reply(strconv.FormatInt(s.counter, 10) + "\n")
	case "QUIT":
		if err := s.reply("BYE\n"); err != nil {
			return true, err
		}
		s.quit()
		return true, nil
	}
	return false, s.reply(fmt.Sprintf("ERR unknown command %q\n", truncate(f[0], 32)))
}

// parseArgs parses exactly want unsigned decimal arguments. Lengths must
// fit an int64; seeds use the full uint64 range.
func parseArgs(args []string, usage string, want int) ([]uint64, error) {
	if len(args) != want {
		return nil, errors.New("usage: " + usage)
	}
	v := make([]uint64, want)
	for i, a := range args {
		x, err := strconv.ParseUint(a, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bad number %q; usage: %s", truncate(a, 32), usage)
		}
		v[i] = x
	}
	if v[0] > 1<<62 {
		return nil, errors.New("n too large")
	}
	return v, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// gen writes Stream(n, seed); with chunk > 0 it writes chunk bytes at a
// time and sleeps delay between chunks (never after the last). The sleep
// only spreads the same bytes over time.
func (s *session) gen(n int64, seed uint64, chunk int, delay time.Duration) error {
	step := int64(len(s.buf))
	if chunk > 0 && int64(chunk) < step {
		step = int64(chunk)
	}
	for off := int64(0); off < n; {
		if chunk > 0 {
			// A chunk larger than the buffer is written in several
			// writes but paced as one.
			end := min(off+int64(chunk), n)
			for off < end {
				k := min(step, end-off)
				fill(s.buf[:k], seed, off)
				if _, err := s.c.Write(s.buf[:k]); err != nil {
					return err
				}
				off += k
			}
			if off < n && delay > 0 {
				time.Sleep(delay)
			}
			continue
		}
		k := min(step, n-off)
		fill(s.buf[:k], seed, off)
		if _, err := s.c.Write(s.buf[:k]); err != nil {
			return err
		}
		off += k
	}
	return nil
}

func (s *session) sink(n int64) error {
	h := sha256.New()
	got, err := io.CopyBuffer(h, io.LimitReader(s.r, n), s.buf)
	if err != nil {
		return err
	}
	// A short stream (peer closed early) must not produce a hash reply.
	if got < n {
		return io.ErrUnexpectedEOF
	}
	return s.reply(hex.EncodeToString(h.Sum(nil)) + "\n")
}

func (s *session) echo(n int64) error {
	for n > 0 {
		k, err := s.r.Read(s.buf[:min(int64(len(s.buf)), n)])
		if k > 0 {
			if _, werr := s.c.Write(s.buf[:k]); werr != nil {
				return werr
			}
			n -= int64(k)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// quit half-closes (FIN) and drains the peer's remaining input until its
// FIN or quitDrain, so the final close never becomes an RST.
func (s *session) quit() {
	if cw, ok := s.c.(interface{ CloseWrite() error }); ok {
		if cw.CloseWrite() != nil {
			return
		}
	}
	s.c.SetReadDeadline(time.Now().Add(quitDrain))
	io.CopyBuffer(io.Discard, s.r, s.buf)
}

// Main is the entry of the command-line server: flag -listen ADDR (default
// ":7000"). It logs to stderr and serves until killed; it returns an exit
// status only on a usage or listen error.
func Main(args []string) int {
	fs := flag.NewFlagSet("labsvc", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	listen := fs.String("listen", ":7000", "TCP address to listen on")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "labsvc: unexpected arguments %q\n", fs.Args())
		return 2
	}
	logger := log.New(os.Stderr, "labsvc: ", log.LstdFlags|log.Lmicroseconds)
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		logger.Print(err)
		return 1
	}
	logger.Printf("listening on %s", l.Addr())
	if err := Serve(l); err != nil {
		logger.Print(err)
		return 1
	}
	return 0
}
