package pkt

import (
	"testing"
)

func TestParseTCPOptionsValid(t *testing.T) {
	tests := []struct {
		name string
		opts []byte
		want TCPOptions
	}{
		{
			name: "empty",
			opts: nil,
			want: TCPOptions{TimestampOffset: -1, SACKOffset: -1, FastOpenOffset: -1},
		},
		{
			name: "linux syn",
			// MSS 1460, SACK-permitted, TS 1/0, NOP, WScale 7.
			opts: []byte{2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7},
			want: TCPOptions{MSS: 1460, HasMSS: true, SACKPermitted: true, HasTimestamp: true, TSVal: 1,
				TimestampOffset: 6, WScale: 7, HasWScale: true, SACKOffset: -1, FastOpenOffset: -1},
		},
		{
			name: "nop nop timestamp",
			opts: []byte{1, 1, 8, 10, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04},
			want: TCPOptions{HasTimestamp: true, TSVal: 0xdeadbeef, TSEcr: 0x01020304, TimestampOffset: 2,
				SACKOffset: -1, FastOpenOffset: -1},
		},
		{
			name: "sack two blocks",
			opts: []byte{1, 1, 5, 18, 0, 0, 0, 10, 0, 0, 0, 20, 0xff, 0xff, 0xff, 0xf0, 0, 0, 0, 0x10},
			want: TCPOptions{SACK: [4]SACKBlock{{10, 20}, {0xfffffff0, 0x10}}, NumSACK: 2, SACKOffset: 2,
				TimestampOffset: -1, FastOpenOffset: -1},
		},
		{
			name: "sack four blocks",
			opts: append([]byte{5, 34}, make([]byte, 32)...),
			want: TCPOptions{NumSACK: 4, SACKOffset: 0, TimestampOffset: -1, FastOpenOffset: -1},
		},
		{
			name: "eol stops parsing",
			// Garbage after EOL (a zero-length option) is padding.
			opts: []byte{2, 4, 1, 0, 0, 2, 0, 0xff},
			want: TCPOptions{MSS: 256, HasMSS: true, TimestampOffset: -1, SACKOffset: -1, FastOpenOffset: -1},
		},
		{
			name: "eol in the middle hides later options",
			opts: []byte{1, 0, 2, 4, 5, 0xb4},
			want: TCPOptions{TimestampOffset: -1, SACKOffset: -1, FastOpenOffset: -1},
		},
		{
			name: "unknown kind skipped",
			opts: []byte{99, 5, 1, 2, 3, 3, 3, 14},
			want: TCPOptions{WScale: 14, HasWScale: true, TimestampOffset: -1, SACKOffset: -1, FastOpenOffset: -1},
		},
		{
			name: "duplicate last wins",
			opts: []byte{2, 4, 0, 1, 2, 4, 0, 2, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2, 5, 10, 0, 0, 0, 3, 0, 0, 0, 4},
			want: TCPOptions{MSS: 2, HasMSS: true, SACK: [4]SACKBlock{{3, 4}}, NumSACK: 1, SACKOffset: 18,
				TimestampOffset: -1, FastOpenOffset: -1},
		},
		{
			name: "duplicate sack clears extra blocks",
			opts: []byte{5, 18, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 5, 10, 0, 0, 0, 5, 0, 0, 0, 6},
			want: TCPOptions{SACK: [4]SACKBlock{{5, 6}}, NumSACK: 1, SACKOffset: 18,
				TimestampOffset: -1, FastOpenOffset: -1},
		},
		{
			name: "fast open cookie",
			opts: []byte{1, 1, 34, 10, 1, 2, 3, 4, 5, 6, 7, 8},
			want: TCPOptions{FastOpen: true, FastOpenOffset: 2, FastOpenLen: 10, TimestampOffset: -1, SACKOffset: -1},
		},
		{
			name: "fast open request",
			opts: []byte{34, 2, 1, 1},
			want: TCPOptions{FastOpen: true, FastOpenOffset: 0, FastOpenLen: 2, TimestampOffset: -1, SACKOffset: -1},
		},
		{
			name: "experimental fast open",
			opts: []byte{254, 8, 0xf9, 0x89, 1, 2, 3, 4},
			want: TCPOptions{FastOpen: true, FastOpenOffset: 0, FastOpenLen: 8, TimestampOffset: -1, SACKOffset: -1},
		},
		{
			name: "other experiment is not fast open",
			opts: []byte{254, 6, 0x12, 0x34, 1, 2, 254, 2},
			want: TCPOptions{TimestampOffset: -1, SACKOffset: -1, FastOpenOffset: -1},
		},
		{
			name: "mss zero and wscale above 14 are reported as sent",
			opts: []byte{2, 4, 0, 0, 3, 3, 200, 1},
			want: TCPOptions{HasMSS: true, WScale: 200, HasWScale: true, TimestampOffset: -1, SACKOffset: -1, FastOpenOffset: -1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o TCPOptions
			// Stale state must be cleared by the parser.
			o.HasMSS, o.MSS, o.NumSACK, o.SACKOffset = true, 9, 3, 5
			if err := ParseTCPOptions(tt.opts, &o); err != nil {
				t.Fatalf("ParseTCPOptions(%x) = %v", tt.opts, err)
			}
			if o != tt.want {
				t.Errorf("ParseTCPOptions(%x)\n got %+v\nwant %+v", tt.opts, o, tt.want)
			}
		})
	}
}

func TestParseTCPOptionsMalformed(t *testing.T) {
	tests := []struct {
		name string
		opts []byte
	}{
		{"zero length", []byte{2, 0, 0, 0}},
		{"length one", []byte{8, 1, 1, 1}},
		{"unknown kind length one", []byte{99, 1}},
		{"length past end", []byte{8, 10, 0, 0, 0, 1}},
		{"unknown kind past end", []byte{1, 99, 40, 0}},
		{"mss len 3", []byte{2, 3, 5, 1}},
		{"mss len 5", []byte{2, 5, 5, 0xb4, 0}},
		{"wscale len 2", []byte{3, 2, 1, 1}},
		{"wscale len 4", []byte{3, 4, 7, 0}},
		{"sack permitted len 3", []byte{4, 3, 0, 1}},
		{"timestamp len 8", []byte{8, 8, 0, 0, 0, 1, 0, 0}},
		{"timestamp len 12", append([]byte{8, 12}, make([]byte, 10)...)},
		{"sack len 2", []byte{5, 2, 1, 1}},
		{"sack len 11", append([]byte{5, 11}, make([]byte, 9)...)},
		{"sack 5 blocks", append([]byte{5, 42}, make([]byte, 40)...)},
		{"lone kind byte at end", []byte{1, 1, 1, 2}},
		{"lone unknown kind at end", []byte{1, 1, 1, 77}},
		{"good then bad", []byte{2, 4, 5, 0xb4, 3, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o TCPOptions
			if err := ParseTCPOptions(tt.opts, &o); err != ErrBadOption {
				t.Errorf("ParseTCPOptions(%x) = %v, want ErrBadOption", tt.opts, err)
			}
		})
	}
}

func TestPutHelpersRoundTrip(t *testing.T) {
	var b [40]byte
	n := 0
	n += PutMSS(b[n:], 1400)
	n += PutNops(b[n:], 1)
	n += PutWScale(b[n:], 9)
	n += PutSACKPermitted(b[n:])
	n += PutTimestamp(b[n:], 0xfffffff0, 0x10)
	tsOff := n - OptTimestampLen
	blocks := []SACKBlock{{1, 2}, {0x7fffffff, 0x80000000}}
	n += PutSACK(b[n:], blocks)
	sackOff := n - 18
	if n != 4+1+3+2+10+18 {
		t.Fatalf("total written %d", n)
	}
	var o TCPOptions
	if err := ParseTCPOptions(b[:n], &o); err != nil {
		t.Fatal(err)
	}
	want := TCPOptions{
		MSS: 1400, HasMSS: true, WScale: 9, HasWScale: true, SACKPermitted: true,
		HasTimestamp: true, TSVal: 0xfffffff0, TSEcr: 0x10, TimestampOffset: tsOff,
		SACK: [4]SACKBlock{{1, 2}, {0x7fffffff, 0x80000000}}, NumSACK: 2, SACKOffset: sackOff,
		FastOpenOffset: -1,
	}
	if o != want {
		t.Errorf("round trip\n got %+v\nwant %+v", o, want)
	}

	// Rewrite in place through the offset, as the engine does for
	// timestamps.
	PutTimestamp(b[o.TimestampOffset:], 7, 8)
	if err := ParseTCPOptions(b[:n], &o); err != nil || o.TSVal != 7 || o.TSEcr != 8 {
		t.Errorf("in-place rewrite: %v %+v", err, o)
	}

	// Strip SACK in place.
	NopOut(b[:n], o.SACKOffset, 2+8*o.NumSACK)
	if err := ParseTCPOptions(b[:n], &o); err != nil || o.NumSACK != 0 || o.SACKOffset != -1 || !o.HasTimestamp {
		t.Errorf("after NopOut: %v %+v", err, o)
	}
	for _, c := range b[sackOff:n] {
		if c != OptNop {
			t.Fatalf("NopOut left %x", b[sackOff:n])
		}
	}

	var fo [18]byte
	if got := PutFastOpen(fo[:], []byte{1, 2, 3, 4, 5, 6, 7, 8}); got != 10 {
		t.Errorf("PutFastOpen wrote %d", got)
	}
	if err := ParseTCPOptions(fo[:10], &o); err != nil || !o.FastOpen || o.FastOpenLen != 10 {
		t.Errorf("fast open round trip: %v %+v", err, o)
	}
}

func TestPutSACKCapsBlocks(t *testing.T) {
	var b [64]byte
	blocks := make([]SACKBlock, 6)
	if n := PutSACK(b[:], blocks); n != 34 {
		t.Errorf("PutSACK with 6 blocks wrote %d bytes, want 34", n)
	}
}

func TestParseTCPOptionsAllocs(t *testing.T) {
	var b [40]byte
	n := PutMSS(b[:], 1460)
	n += PutSACKPermitted(b[n:])
	n += PutTimestamp(b[n:], 1, 2)
	n += PutNops(b[n:], 2)
	n += PutSACK(b[n:], []SACKBlock{{1, 2}})
	var o TCPOptions
	allocs := testing.AllocsPerRun(1000, func() {
		if err := ParseTCPOptions(b[:n], &o); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("ParseTCPOptions allocates %v times per run", allocs)
	}
}

func BenchmarkParseTCPOptions(b *testing.B) {
	var buf [40]byte
	n := PutNops(buf[:], 2)
	n += PutTimestamp(buf[n:], 1, 2)
	n += PutNops(buf[n:], 2)
	n += PutSACK(buf[n:], []SACKBlock{{1, 2}, {3, 4}})
	var o TCPOptions
	b.ReportAllocs()
	for b.Loop() {
		_ = ParseTCPOptions(buf[:n], &o)
	}
}
