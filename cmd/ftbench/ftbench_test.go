package main

import (
	"bytes"
	"image/png"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// serve runs the load server on one end of an in-memory pipe and returns
// the other end.
func serve(t *testing.T) net.Conn {
	t.Helper()
	c, s := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer s.Close()
		serveConn(s)
	}()
	t.Cleanup(func() {
		c.Close()
		<-done
	})
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

func TestDownloadIsTheOffsetPattern(t *testing.T) {
	c := serve(t)
	const n = 3*patternLen + 12345
	if _, err := c.Write(encodeHdr(opDownload, n, 0)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, n)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	for off := 0; off < n; off += patternLen {
		k := min(patternLen, n-off)
		if !bytes.Equal(got[off:off+k], patternAt(int64(off), k)) {
			t.Fatalf("bytes at %d differ from the pattern", off)
		}
	}
	// A second request on the same connection continues with offset 0
	// of its own stream.
	if _, err := c.Write(encodeHdr(opDownload, 100, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, got[:100]); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:100], patternAt(0, 100)) {
		t.Fatal("second download does not start at offset 0")
	}
}

func TestPacedDownloadVerifiesAndMeasuresGaps(t *testing.T) {
	c := serve(t)
	const n = 40000
	if _, err := c.Write(encodeHdr(opPaced, n, 1000<<32|2000)); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	gap, start, err := readPaced(c, n)
	if err != nil {
		t.Fatal(err)
	}
	if gap < time.Millisecond {
		t.Errorf("longest gap %v, want at least the 2 ms pause", gap)
	}
	if start.Before(before) || time.Since(start) < gap {
		t.Errorf("longest gap began at %v, outside the read (began %v, %v long)", start, before, gap)
	}
}

func TestReadPacedRejectsWrongBytes(t *testing.T) {
	c, s := net.Pipe()
	defer c.Close()
	go func() {
		defer s.Close()
		b := append([]byte(nil), patternAt(0, 5000)...)
		b[4000] ^= 1
		s.Write(b)
	}()
	if _, _, err := readPaced(c, 5000); err == nil || !strings.Contains(err.Error(), "wrong bytes") {
		t.Fatalf("readPaced = %v, want a wrong-bytes error", err)
	}
}

func TestUploadEchoOneShot(t *testing.T) {
	c := serve(t)
	if _, err := c.Write(encodeHdr(opUpload, 70000, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(make([]byte, 70000)); err != nil {
		t.Fatal(err)
	}
	var k [1]byte
	if _, err := io.ReadFull(c, k[:]); err != nil || k[0] != 'K' {
		t.Fatalf("upload reply %q, %v", k[:], err)
	}
	c2 := serve(t)
	if _, err := c2.Write(encodeHdr(opOneShot, 0, 0)); err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(c2); err != nil || string(b) != "K" {
		t.Fatalf("one-shot reply %q, %v", b, err)
	}
	if _, err := c.Write(encodeHdr(opEcho, 0, 64)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		msg := bytes.Repeat([]byte{byte(i)}, 64)
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 64)
		if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("echo %d: %v", i, err)
		}
	}
}

func TestQuantile(t *testing.T) {
	v := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, c := range []struct{ q, want float64 }{{0, 1}, {0.5, 6}, {0.99, 10}, {1, 10}} {
		if got := quantile(v, c.q); got != c.want {
			t.Errorf("quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	if quantile(nil, 0.5) != 0 {
		t.Error("quantile of nothing is not 0")
	}
}

func TestRatioAndTargets(t *testing.T) {
	if ratio(3, 4) != "0.75x" || ratio(0, 4) != "-" || ratio(1, math.NaN()) != "-" {
		t.Errorf("ratio: %q %q", ratio(3, 4), ratio(0, 4))
	}
	r := &report{results: []*topoResult{
		{Name: "kernel", Gbps: map[string]float64{"down1": 10, "down4": 10, "up1": 10, "up4": 10}, P50us: 20, P99us: 40, RRRate: 40000},
		{Name: "haproxy", Gbps: map[string]float64{"down1": 5, "down4": 5, "up1": 5, "up4": 5}},
		{Name: "ftbridge-1", Gbps: map[string]float64{"down1": 8, "down4": 7, "up1": 8, "up4": 8}, P50us: 30, P99us: 200, RRRate: 30000},
		{Name: "ftbridge-2", Gbps: map[string]float64{"down1": 7, "down4": 5, "up1": 7, "up4": 7}, ConnRate: 25000,
			MemPerConn: map[int]float64{10000: 900}, MemConns: map[int]int{10000: 10000}},
	}}
	got := map[string]string{}
	for _, tg := range r.targets() {
		got[tg.what] = tg.verdict
	}
	for what, want := range map[string]string{
		"1 replica bulk down1 >= 0.75x kernel":                              "met",
		"1 replica bulk down4 >= 0.75x kernel":                              "**missed**",
		"2 replicas bulk down1 >= 0.6x kernel and >= 1.2x HAProxy":          "met",
		"2 replicas bulk down4 >= 0.6x kernel and >= 1.2x HAProxy":          "**missed**",
		"ftbridge-1: added RTT p50 <= +20 us":                               "met",
		"ftbridge-1: added RTT p99 <= +80 us":                               "**missed**",
		"2 replicas: >= 20k new connections/s":                              "met",
		"2 replicas: <= 1 KiB box state per connection at 10k connections":  "met",
		"2 replicas: <= 1 KiB box state per connection at 100k connections": "not measured",
		"ftbridge-2: request/response rate >= 0.5x kernel":                  "not measured",
		"ftbridge-1: request/response rate >= 0.5x kernel":                  "met",
		"2 replicas bulk up4 >= 0.6x kernel and >= 1.2x HAProxy":            "met",
		"1 replica bulk up4 >= 0.75x kernel":                                "met",
		"2 replicas bulk up1 >= 0.6x kernel and >= 1.2x HAProxy":            "met",
		"1 replica bulk up1 >= 0.75x kernel":                                "met",
		"ftbridge-2: added RTT p50 <= +20 us":                               "not measured",
		"ftbridge-2: added RTT p99 <= +80 us":                               "not measured",
	} {
		if got[what] != want {
			t.Errorf("%s: %q, want %q", what, got[what], want)
		}
	}
}

func TestHAProxyConfig(t *testing.T) {
	cfg := haproxyConfig(9500)
	for _, want := range []string{"mode tcp", "maxconn 9500", "bind 198.18.0.10:7000", "server a 198.18.1.10:7000", "server b 198.18.2.10:7001"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config lacks %q:\n%s", want, cfg)
		}
	}
	if strings.Contains(cfg, "198.18.2.10:5201") {
		t.Error("iperf3 backend on replica b, which runs no iperf3")
	}
}

func TestPlotsRender(t *testing.T) {
	dir := t.TempDir()
	if err := barChart(filepath.Join(dir, "bars.png"), "Bulk throughput", "Gbit/s", []string{"a", "b"},
		[]string{"kernel", "ftbridge-1"}, [][]float64{{10, 12}, {8, math.NaN()}}); err != nil {
		t.Fatal(err)
	}
	if err := cdfChart(filepath.Join(dir, "cdf.png"), "RTT", "us", []string{"x"}, [][]float64{{1, 2, 3, 50}}, 0.5, 100, true,
		[]float64{1, 10, 100}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"bars.png", "cdf.png"} {
		fh, err := os.Open(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(fh)
		fh.Close()
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		// Something besides the white background was drawn.
		b := img.Bounds()
		inked := 0
		for y := b.Min.Y; y < b.Max.Y; y += 3 {
			for x := b.Min.X; x < b.Max.X; x += 3 {
				if r, g, bb, _ := img.At(x, y).RGBA(); r != 0xffff || g != 0xffff || bb != 0xffff {
					inked++
				}
			}
		}
		if inked < 500 {
			t.Errorf("%s: only %d inked samples", f, inked)
		}
	}
}

func TestFontCoversLabels(t *testing.T) {
	for r, rows := range glyphRows {
		f := strings.Fields(rows)
		if len(f) != 7 {
			t.Errorf("glyph %q has %d rows", r, len(f))
		}
		for _, row := range f {
			if len(row) != 5 {
				t.Errorf("glyph %q row %q is not 5 wide", r, row)
			}
		}
	}
	for _, r := range "Bulk TCP throughput (ms, log scale) 0.5 kill-9 p99 <= 20% us/ftbridge_1" {
		if glyph(r) == glyphs['?'] && r != '?' {
			t.Errorf("no glyph for %q", r)
		}
	}
}
