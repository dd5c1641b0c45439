package failover

import (
	"fmt"
	"testing"

	"github.com/ftbridge/ftbridge/dataplane/pkt"
)

// Micro-benchmarks of translation in steady state: an established
// connection over 1, 2 or 3 replicas moving bulk data in one direction,
// driven with crafted segments through FromReplica and FromClient into an
// Output that does nothing. What they measure is the state machine alone:
// no parsing, no frame building, no I/O.

// nopOutput discards everything and counts calls, so the compiler cannot
// drop the work and a benchmark can check that segments did go out.
type nopOutput struct{ client, replica, events int }

func (o *nopOutput) ToClient(*Conn, Header, []byte)       { o.client++ }
func (o *nopOutput) ToReplica(*Conn, int, Header, []byte) { o.replica++ }
func (o *nopOutput) Event(*Conn, Event)                   { o.events++ }

// steady is an established connection plus the reusable segments that
// move its data. Its methods reuse the same Segment values every round, so
// whatever allocates is the connection itself.
type steady struct {
	f    *fix
	out  nopOutput
	rseg []Segment // per member
	cseg Segment
	data []byte
	off  uint32 // bytes moved so far in the direction under test
}

// newSteady establishes a connection over n replicas (with distinct ISNs
// and timestamp clocks, one near the 2^32 wrap) with the given release
// policy and a payload of size bytes per segment (a GSO super-frame when
// size exceeds the MSS).
func newSteady(tb testing.TB, n int, immediate bool, size int) *steady {
	p := testParams()
	p.Immediate = immediate
	reps := []repCfg{rc(10, 0xFFFFFFF0, 1_000_000), rc(11, 0x00000100, 77), rc(12, 0x7FFFFFFF, 0xFFFFFF00)}[:n]
	f := newFix(tb, p, defaultCli(), reps...)
	s := &steady{f: f, rseg: make([]Segment, n), data: make([]byte, size)}
	for i := range s.data {
		s.data[i] = byte(i * 7)
	}
	return s
}

// download moves one segment of server output: every member sends it at
// the same offset, then the client acknowledges it.
func (s *steady) download() {
	f := s.f
	n := uint32(len(s.data))
	for i, r := range f.reps {
		f.rTS[i]++
		seg := &s.rseg[i]
		*seg = Segment{Seq: r.isn + 1 + s.off, Ack: f.cli.isn + 1, Flags: pkt.TCPFlagAck | pkt.TCPFlagPsh,
			Window: 0xFFFF, HasTS: true, TSVal: f.rTS[i], TSEcr: f.cTS - 1, Payload: s.data}
		if n > 1448 {
			seg.GSOSize = 1448
		}
		f.c.FromReplica(f.now, i, seg, &s.out)
	}
	s.off += n
	f.cTS++
	s.cseg = Segment{Seq: f.cli.isn + 1, Ack: f.vISN + 1 + s.off, Flags: pkt.TCPFlagAck, Window: 0xFFFF,
		HasTS: true, TSVal: f.cTS, TSEcr: f.lastT}
	f.c.FromClient(f.now, &s.cseg, &s.out)
}

// upload moves one segment of client input: the client sends it, every
// member acknowledges it.
func (s *steady) upload() {
	f := s.f
	n := uint32(len(s.data))
	f.cTS++
	s.cseg = Segment{Seq: f.cli.isn + 1 + s.off, Ack: f.vISN + 1, Flags: pkt.TCPFlagAck | pkt.TCPFlagPsh,
		Window: 0xFFFF, HasTS: true, TSVal: f.cTS, TSEcr: f.lastT, Payload: s.data}
	if n > 1448 {
		s.cseg.GSOSize = 1448
	}
	f.c.FromClient(f.now, &s.cseg, &s.out)
	s.off += n
	for i, r := range f.reps {
		f.rTS[i]++
		seg := &s.rseg[i]
		*seg = Segment{Seq: r.isn + 1, Ack: f.cli.isn + 1 + s.off, Flags: pkt.TCPFlagAck,
			Window: 0xFFFF, HasTS: true, TSVal: f.rTS[i], TSEcr: f.cTS}
		f.c.FromReplica(f.now, i, seg, &s.out)
	}
}

// check fails if the connection stopped passing data (a benchmark of a
// connection that drops everything would be meaningless).
func (s *steady) check(tb testing.TB, rounds int, download bool) {
	tb.Helper()
	if s.f.c.State() != StateEstablished {
		tb.Fatalf("connection left ESTABLISHED: %v", s.f.c.State())
	}
	if download && s.out.client < rounds {
		tb.Fatalf("%d segments to the client after %d rounds", s.out.client, rounds)
	}
	if !download && s.out.replica < rounds*len(s.f.reps) {
		tb.Fatalf("%d segments to replicas after %d rounds", s.out.replica, rounds)
	}
	if s.f.c.HeldBytes() != 0 {
		tb.Fatalf("%d bytes still held after the client acknowledged everything", s.f.c.HeldBytes())
	}
}

// BenchmarkTranslate is one round of steady-state translation per op:
// download (every member's copy of a segment in, released to the client,
// client ACK in) or upload (client segment out to every member, every
// member's ACK in), for 1-3 replicas, both release policies, an MSS-sized
// segment and a 64 KiB GSO super-frame.
func BenchmarkTranslate(b *testing.B) {
	for _, dir := range []string{"download", "upload"} {
		for _, n := range []int{1, 2, 3} {
			for _, pol := range []string{"matched", "immediate"} {
				for _, size := range []int{1448, 65160} {
					name := fmt.Sprintf("%s/replicas=%d/%s/size=%d", dir, n, pol, size)
					b.Run(name, func(b *testing.B) {
						s := newSteady(b, n, pol == "immediate", size)
						step := s.download
						if dir == "upload" {
							step = s.upload
						}
						b.ReportAllocs()
						b.SetBytes(int64(size))
						rounds := 0
						for b.Loop() {
							step()
							rounds++
						}
						s.check(b, rounds, dir == "download")
					})
				}
			}
		}
	}
}

// knownTranslateAllocs is the allocation count per steady-state round:
// none. (Output takes Header by value: a pointer passed to an interface
// method would move every Header to the heap.)
const knownTranslateAllocs = 0

// TestTranslateAllocs bounds the allocations of steady-state translation of
// MSS-sized segments, in either direction, for 1-3 replicas: no more than
// the known Header escapes (see knownTranslateAllocs), so anything new that
// allocates per segment fails here.
//
// GSO super-frames are reported by BenchmarkTranslateHeldOver64K instead
// of asserted: the held-output stream returns a buffer over 64 KiB to the
// heap whenever it empties (stream.trim), so when more than 64 KiB is in
// flight between two client ACKs (the normal case of a bulk download) every
// ACK that empties it costs a fresh allocation of the whole buffer.
func TestTranslateAllocs(t *testing.T) {
	for _, n := range []int{1, 2, 3} {
		for _, dir := range []string{"download", "upload"} {
			s := newSteady(t, n, false, 1448)
			step := s.download
			if dir == "upload" {
				step = s.upload
			}
			step() // first round sizes the held-output buffer
			a := testing.AllocsPerRun(500, step)
			if a > knownTranslateAllocs {
				t.Errorf("%s over %d replicas: %v allocations per segment, want <= %d", dir, n, a, knownTranslateAllocs)
			}
			s.check(t, 500, dir == "download")
		}
	}
}

// BenchmarkTranslateHeldOver64K is the download round with 128 KiB of
// output held between client ACKs (two super-frames): once the held
// stream's buffer is over 64 KiB, stream.trim frees it whenever the client
// acknowledges everything, and the next round allocates (and zeroes) it
// again. Compare ns/op and B/op per byte with the 64 KiB case of
// BenchmarkTranslate.
func BenchmarkTranslateHeldOver64K(b *testing.B) {
	for _, n := range []int{1, 2} {
		b.Run(fmt.Sprintf("replicas=%d", n), func(b *testing.B) {
			s := newSteady(b, n, false, 2*65160)
			b.ReportAllocs()
			b.SetBytes(2 * 65160)
			rounds := 0
			for b.Loop() {
				s.download()
				rounds++
			}
			s.check(b, rounds, true)
		})
	}
}
