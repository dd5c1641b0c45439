package labsvc

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Known answers computed with an independent (Python) splitmix64: the
// stream must never change, or replicas built from different revisions
// would diverge.
const (
	kat19Seed1        = "c15c0289ec2d0a9167ec8e65a18debbe5e5532"
	katHash1000003S42 = "b71eda69caa1ed912d871d633b9fe8a434e5567ee87689264a610a06a31ad66f"
)

func readAll(t *testing.T, r io.Reader) []byte {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestStreamDeterminism(t *testing.T) {
	if got := hex.EncodeToString(readAll(t, Stream(19, 1))); got != kat19Seed1 {
		t.Errorf("Stream(19, 1) = %s, want %s", got, kat19Seed1)
	}
	if h := StreamHash(1000003, 42); hex.EncodeToString(h[:]) != katHash1000003S42 {
		t.Errorf("StreamHash(1000003, 42) = %x", h)
	}
	const n = 100_003
	whole := readAll(t, Stream(n, 7))
	if len(whole) != n {
		t.Fatalf("len %d", len(whole))
	}
	if sha256.Sum256(whole) != StreamHash(n, 7) {
		t.Error("StreamHash differs from the hash of Stream")
	}
	// Any chunking yields the same bytes.
	for _, chunk := range []int{1, 3, 7, 8, 9, 4096, 65537} {
		r := Stream(n, 7)
		var got []byte
		buf := make([]byte, chunk)
		for {
			k, err := r.Read(buf)
			got = append(got, buf[:k]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(got, whole) {
			t.Errorf("chunk %d: stream differs", chunk)
		}
	}
	if !bytes.Equal(readAll(t, Stream(1000, 7)), whole[:1000]) {
		t.Error("shorter stream is not a prefix")
	}
	if bytes.Equal(readAll(t, Stream(1000, 8)), whole[:1000]) {
		t.Error("seeds 7 and 8 give the same stream")
	}
	if len(readAll(t, Stream(0, 1))) != 0 || len(readAll(t, Stream(-5, 1))) != 0 {
		t.Error("empty streams are not empty")
	}
}

// startServer runs Serve on a loopback listener and checks that it returns
// nil when the listener closes.
func startServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- Serve(l) }()
	t.Cleanup(func() {
		l.Close()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after its listener closed")
		}
	})
	return l.Addr().String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

func TestServerCommands(t *testing.T) {
	addr := startServer(t)
	c := dial(t, addr)

	res, err := Download(c, 1<<20+5, 42, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Bytes != 1<<20+5 || res.SHA256 != StreamHash(1<<20+5, 42) || res.Duration <= 0 {
		t.Errorf("GEN result %+v", res)
	}
	if _, err := Download(c, 0, 1, nil); err != nil {
		t.Errorf("GEN 0: %v", err)
	}

	up, err := Upload(c, Stream(3<<20, 9), 3<<20)
	if err != nil {
		t.Fatal(err)
	}
	if up.Bytes != 3<<20 || up.SHA256 != StreamHash(3<<20, 9) {
		t.Errorf("SINK result %+v", up)
	}
	if _, err := Upload(c, strings.NewReader("0123456789"), 10); err != nil {
		t.Errorf("small SINK: %v", err)
	}

	// Larger than any socket buffer: would deadlock without concurrency.
	ec, err := Echo(c, 8<<20, 3)
	if err != nil {
		t.Fatal(err)
	}
	if ec.Bytes != 8<<20 || ec.SHA256 != StreamHash(8<<20, 3) {
		t.Errorf("ECHO result %+v", ec)
	}

	last, _, err := Incr(c, 100)
	if err != nil || last != 100 {
		t.Fatalf("Incr = %d, %v; want 100", last, err)
	}
	// The counter is per connection and survives other commands.
	if _, err := Download(c, 10, 1, nil); err != nil {
		t.Fatal(err)
	}
	if last, _, err = Incr(c, 5); err != nil || last != 105 {
		t.Errorf("Incr again = %d, %v; want 105", last, err)
	}
	if l2, _, err := Incr(dial(t, addr), 1); err != nil || l2 != 1 {
		t.Errorf("fresh connection Incr = %d, %v; want 1", l2, err)
	}

	if err := Quit(c); err != nil {
		t.Fatal(err)
	}
}

// rawLines sends req on a fresh connection and reads want lines.
func rawLines(t *testing.T, addr, req string, want int) []string {
	t.Helper()
	c := dial(t, addr)
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var lines []string
	for i := 0; i < want; i++ {
		s, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("%q: line %d: %v (so far %q)", req, i, err, lines)
		}
		lines = append(lines, strings.TrimSuffix(s, "\n"))
	}
	return lines
}

func TestServerErrorsAndPipelining(t *testing.T) {
	addr := startServer(t)
	long := strings.Repeat("X", 5000)
	got := rawLines(t, addr, "FOO bar\nGEN x 1\nGEN 1\nPACE 10 0 5 1\n\n"+long+"\nINCR 2\nINCR\r\nINCR\nQUIT\n", 9)
	want := []string{"ERR unknown", "ERR bad number", "ERR usage: GEN", "ERR chunk", "ERR empty", "ERR line too long", "ERR usage: INCR", "1", "2"}
	for i, w := range want {
		if !strings.HasPrefix(got[i], w) {
			t.Errorf("reply %d = %q, want prefix %q", i, got[i], w)
		}
	}
	// Pipelined data commands keep their boundaries: SINK's payload
	// contains what looks like commands and must be hashed, not executed.
	payload := "INCR\nQUIT\n"
	sum := sha256.Sum256([]byte(payload))
	got = rawLines(t, addr, "SINK 10\n"+payload+"INCR\n", 2)
	if got[0] != hex.EncodeToString(sum[:]) || got[1] != "1" {
		t.Errorf("pipelined SINK = %q", got)
	}
}

func TestPaceEqualsGen(t *testing.T) {
	addr := startServer(t)
	const n, seed = 50_000, 77
	rawGen := rawBytes(t, addr, fmt.Sprintf("GEN %d %d\n", n, seed), n)
	rawPace := rawBytes(t, addr, fmt.Sprintf("PACE %d 777 1 %d\n", n, seed), n)
	if !bytes.Equal(rawGen, rawPace) || !bytes.Equal(rawGen, readAll(t, Stream(n, seed))) {
		t.Fatal("PACE bytes differ from GEN bytes")
	}
	// Pacing shows in the timing, not in the bytes.
	c := dial(t, addr)
	res, err := Download(c, 5000, seed, &Pace{Chunk: 1000, Delay: 40 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.SHA256 != StreamHash(5000, seed) {
		t.Error("paced download hash differs")
	}
	if res.Duration < 4*40*time.Millisecond || res.MaxGap < 30*time.Millisecond {
		t.Errorf("paced download too fast: %+v (4 pauses of 40ms)", res)
	}
	if _, err := Download(c, 10, 1, &Pace{Chunk: 0}); err == nil {
		t.Error("Download accepted a zero chunk")
	}
}

func rawBytes(t *testing.T, addr, req string, n int) []byte {
	t.Helper()
	c := dial(t, addr)
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatal(err)
	}
	return b
}

// fakeServer accepts one connection, reads one line and hands both to fn.
func fakeServer(t *testing.T, fn func(c net.Conn, br *bufio.Reader, line string)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		br := bufio.NewReader(c)
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		fn(c, br, strings.TrimSpace(line))
	}()
	return l.Addr().String()
}

func TestClientDetectsMismatch(t *testing.T) {
	const n, seed, bad = 200_000, 5, 123_457
	corrupt := func(b []byte, off int) []byte {
		b = append([]byte(nil), b...)
		b[off] ^= 0x01
		return b
	}
	stream := readAll(t, Stream(n, seed))

	t.Run("download", func(t *testing.T) {
		addr := fakeServer(t, func(c net.Conn, _ *bufio.Reader, _ string) {
			c.Write(corrupt(stream, bad))
		})
		_, err := Download(dial(t, addr), n, seed, nil)
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("byte %d ", bad)) {
			t.Errorf("Download = %v, want a mismatch at byte %d", err, bad)
		}
	})
	t.Run("download-short", func(t *testing.T) {
		addr := fakeServer(t, func(c net.Conn, _ *bufio.Reader, _ string) { c.Write(stream[:1000]) })
		res, err := Download(dial(t, addr), n, seed, nil)
		if err == nil || res.Bytes != 1000 {
			t.Errorf("short Download = %+v, %v", res, err)
		}
	})
	t.Run("download-err-line", func(t *testing.T) {
		addr := fakeServer(t, func(c net.Conn, _ *bufio.Reader, _ string) { io.WriteString(c, "ERR nope\n") })
		_, err := Download(dial(t, addr), n, seed, nil)
		if err == nil || !strings.Contains(err.Error(), "ERR nope") {
			t.Errorf("Download = %v, want the server's ERR quoted", err)
		}
	})
	t.Run("upload", func(t *testing.T) {
		addr := fakeServer(t, func(c net.Conn, br *bufio.Reader, _ string) {
			b := make([]byte, n)
			io.ReadFull(br, b)
			sum := sha256.Sum256(corrupt(b, bad))
			fmt.Fprintf(c, "%x\n", sum)
		})
		if _, err := Upload(dial(t, addr), Stream(n, seed), n); err == nil {
			t.Error("Upload accepted a wrong hash")
		}
	})
	t.Run("upload-short-source", func(t *testing.T) {
		addr := startServer(t)
		if _, err := Upload(dial(t, addr), Stream(10, 1), 20); err == nil {
			t.Error("Upload accepted a source shorter than n")
		}
	})
	t.Run("echo", func(t *testing.T) {
		addr := fakeServer(t, func(c net.Conn, br *bufio.Reader, _ string) {
			b := make([]byte, n)
			io.ReadFull(br, b)
			c.Write(corrupt(b, bad))
		})
		_, err := Echo(dial(t, addr), n, seed)
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("byte %d ", bad)) {
			t.Errorf("Echo = %v, want a mismatch at byte %d", err, bad)
		}
	})
	t.Run("incr-skip", func(t *testing.T) {
		addr := fakeServer(t, func(c net.Conn, br *bufio.Reader, _ string) {
			io.WriteString(c, "1\n")
			br.ReadString('\n')
			io.WriteString(c, "3\n")
		})
		if last, _, err := Incr(dial(t, addr), 2); err == nil {
			t.Errorf("Incr accepted 1 then 3 (last %d)", last)
		}
	})
	t.Run("incr-repeat", func(t *testing.T) {
		addr := fakeServer(t, func(c net.Conn, br *bufio.Reader, _ string) {
			io.WriteString(c, "4\n")
			br.ReadString('\n')
			io.WriteString(c, "4\n")
		})
		if _, _, err := Incr(dial(t, addr), 2); err == nil {
			t.Error("Incr accepted a repeated value")
		}
	})
	t.Run("quit-rst", func(t *testing.T) {
		addr := fakeServer(t, func(c net.Conn, _ *bufio.Reader, _ string) {
			io.WriteString(c, "BYE\n")
			time.Sleep(50 * time.Millisecond)
			c.(*net.TCPConn).SetLinger(0) // close with RST
		})
		if err := Quit(dial(t, addr)); err == nil {
			t.Error("Quit accepted an RST as a clean close")
		}
	})
	t.Run("quit-trailing-data", func(t *testing.T) {
		addr := fakeServer(t, func(c net.Conn, _ *bufio.Reader, _ string) {
			io.WriteString(c, "BYE\n")
			time.Sleep(50 * time.Millisecond)
			io.WriteString(c, "more")
		})
		if err := Quit(dial(t, addr)); err == nil {
			t.Error("Quit accepted data after BYE")
		}
	})
}

func TestQuitClosesCleanly(t *testing.T) {
	addr := startServer(t)
	c := dial(t, addr)
	if _, _, err := Incr(c, 3); err != nil {
		t.Fatal(err)
	}
	if err := Quit(c); err != nil {
		t.Fatal(err)
	}
	// Our side can still close without the server having reset anything.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

// fakeRedis answers RESP INCR requests (5 lines each; fakeServer has
// already read the first line of the first) with the given replies.
func fakeRedis(t *testing.T, replies ...string) string {
	return fakeServer(t, func(c net.Conn, br *bufio.Reader, _ string) {
		skip := 4
		for _, r := range replies {
			for j := 0; j < skip; j++ {
				if _, err := br.ReadString('\n'); err != nil {
					return
				}
			}
			skip = 5
			io.WriteString(c, r)
		}
	})
}

func TestRedisIncr(t *testing.T) {
	if last, _, err := RedisIncr(dial(t, fakeRedis(t, ":41\r\n", ":42\r\n", ":43\r\n")), "k", 3); err != nil || last != 43 {
		t.Errorf("RedisIncr = %d, %v; want 43", last, err)
	}
	for name, replies := range map[string][]string{
		"gap":    {":1\r\n", ":3\r\n"},
		"repeat": {":1\r\n", ":1\r\n"},
		"error":  {":1\r\n", "-ERR value is not an integer\r\n"},
		"bulk":   {"$1\r\n"},
		"no-cr":  {":1\n"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := RedisIncr(dial(t, fakeRedis(t, replies...)), "k", len(replies)); err == nil {
				t.Errorf("RedisIncr accepted %q", replies)
			}
		})
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startCmd starts a server binary in its own process group and at cleanup
// kills exactly that group (nginx's worker would otherwise outlive its
// master and keep the output pipe open), then polls the port (bounded).
func startCmd(t *testing.T, port int, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The leader is not reaped yet, so the group ID is still ours.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for i := 0; i < 200; i++ {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("%s never listened on %s: %s", name, addr, out.String())
}

func TestRealRedis(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not installed")
	}
	port := freePort(t)
	startCmd(t, port, "redis-server", "--port", fmt.Sprint(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir())
	c := dial(t, fmt.Sprintf("127.0.0.1:%d", port))
	if last, _, err := RedisIncr(c, "ftb", 50); err != nil || last != 50 {
		t.Fatalf("RedisIncr = %d, %v", last, err)
	}
	if last, _, err := RedisIncr(c, "ftb", 5); err != nil || last != 55 {
		t.Fatalf("RedisIncr again = %d, %v", last, err)
	}
	// A wrong-type key makes redis answer -ERR/-WRONGTYPE.
	if _, err := io.WriteString(c, "*3\r\n$3\r\nSET\r\n$3\r\nstr\r\n$1\r\nx\r\n"); err != nil {
		t.Fatal(err)
	}
	if line, err := readLine(c, "\r\n"); err != nil || line != "+OK" {
		t.Fatalf("SET = %q, %v", line, err)
	}
	if _, _, err := RedisIncr(c, "str", 1); err == nil {
		t.Error("RedisIncr accepted an error reply")
	}
}

func TestNginx(t *testing.T) {
	if _, err := exec.LookPath("nginx"); err != nil {
		t.Skip("nginx not installed")
	}
	dir := t.TempDir()
	docroot := filepath.Join(dir, "www")
	if err := os.Mkdir(docroot, 0o755); err != nil {
		t.Fatal(err)
	}
	const n, seed = 3<<20 + 11, 99
	file := filepath.Join(docroot, "blob.bin")
	if err := WriteDeterministicFile(file, n, seed); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(file); err != nil || st.Size() != n || !st.ModTime().Equal(FixedModTime) {
		t.Fatalf("file %v %v", st, err)
	}
	port := freePort(t)
	conf, err := NginxConfig(filepath.Join(dir, "ngx"), fmt.Sprintf("127.0.0.1:%d", port), docroot)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(conf, dir) {
		t.Errorf("config %s outside %s", conf, dir)
	}
	startCmd(t, port, "nginx", NginxArgs(filepath.Join(dir, "ngx"))...)
	var etags []string
	for i := 0; i < 2; i++ { // second request on the kept-alive connection
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/blob.bin", port))
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET: %d %v", resp.StatusCode, err)
		}
		if sha256.Sum256(body) != StreamHash(n, seed) {
			t.Fatal("nginx body differs from Stream")
		}
		if lm := resp.Header.Get("Last-Modified"); lm != "Sat, 01 Jan 2000 00:00:00 GMT" {
			t.Errorf("Last-Modified %q", lm)
		}
		etags = append(etags, resp.Header.Get("ETag"))
	}
	if want := fmt.Sprintf("%q", fmt.Sprintf("%x-%x", FixedModTime.Unix(), n)); etags[0] != want || etags[1] != want {
		t.Errorf("ETags %q, want %s", etags, want)
	}
	if _, err := NginxConfig(dir, "80; evil", docroot); err == nil {
		t.Error("NginxConfig accepted a directive injection")
	}
}

func TestMainFlags(t *testing.T) {
	if code := Main([]string{"-nosuchflag"}); code != 2 {
		t.Errorf("bad flag: exit %d, want 2", code)
	}
	if code := Main([]string{"extra"}); code != 2 {
		t.Errorf("extra argument: exit %d, want 2", code)
	}
	if code := Main([]string{"-listen", "256.0.0.1:1"}); code != 1 {
		t.Errorf("bad address: exit %d, want 1", code)
	}
	// Main serves until the process dies; the goroutine ends with the test
	// binary.
	port := freePort(t)
	go Main([]string{"-listen", fmt.Sprintf("127.0.0.1:%d", port)})
	var c net.Conn
	var err error
	for i := 0; i < 200; i++ {
		if c, err = net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := Download(c, 1000, 1, nil); err != nil {
		t.Fatal(err)
	}
}
