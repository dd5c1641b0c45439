package failover

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/pkt"
)

// ---------------------------------------------------------------------------
// Recording Output

// sentSeg is a copy of one segment the connection asked to send.
type sentSeg struct {
	H Header
	P []byte
}

func (s sentSeg) String() string {
	return fmt.Sprintf("{seq=%#x ack=%#x %v win=%d ts=%v/%d/%d sack=%d len=%d}",
		s.H.Seq, s.H.Ack, s.H.Flags, s.H.Window, s.H.HasTS, s.H.TSVal, s.H.TSEcr, s.H.NumSACK, len(s.P))
}

// rec is a fake Output that records everything, with cursors so a test can
// look at what one step produced.
type rec struct {
	client []sentSeg
	rep    map[int][]sentSeg // by member index
	events []Event

	ci int
	ri map[int]int
	ei int

	// onClient/onReplica/onEvent are optional hooks (used by the fuzzer).
	onClient func(h *Header, p []byte)
	onEvent  func(ev Event)
}

func newRec() *rec { return &rec{rep: map[int][]sentSeg{}, ri: map[int]int{}} }

func (r *rec) ToClient(c *Conn, h Header, p []byte) {
	if r.onClient != nil {
		r.onClient(&h, p)
	}
	r.client = append(r.client, sentSeg{h, append([]byte(nil), p...)})
}

func (r *rec) ToReplica(c *Conn, m int, h Header, p []byte) {
	r.rep[m] = append(r.rep[m], sentSeg{h, append([]byte(nil), p...)})
}

func (r *rec) Event(c *Conn, ev Event) {
	if r.onEvent != nil {
		r.onEvent(ev)
	}
	r.events = append(r.events, ev)
}

// takeClient returns the client segments since the last call.
func (r *rec) takeClient() []sentSeg {
	s := r.client[r.ci:]
	r.ci = len(r.client)
	return s
}

// takeRep returns member m's segments since the last call.
func (r *rec) takeRep(m int) []sentSeg {
	s := r.rep[m][r.ri[m]:]
	r.ri[m] = len(r.rep[m])
	return s
}

// takeEvents returns the events since the last call.
func (r *rec) takeEvents() []Event {
	s := r.events[r.ei:]
	r.ei = len(r.events)
	return s
}

// drain forgets everything produced so far.
func (r *rec) drain() {
	r.takeClient()
	r.takeEvents()
	for m := range r.rep {
		r.takeRep(m)
	}
}

// ---------------------------------------------------------------------------
// Fixture

// repCfg describes one replica's SYN-ACK.
type repCfg struct {
	id   int
	isn  uint32
	mss  uint16
	ws   int // -1: no window scale option
	sack bool
	ts   uint32 // TSval of its SYN-ACK
	noTS bool
	win  uint16 // SYN-ACK window
}

func rc(id int, isn uint32, ts uint32) repCfg {
	return repCfg{id: id, isn: isn, mss: 1460, ws: 7, sack: true, ts: ts, win: 65535}
}

type cliCfg struct {
	isn  uint32
	mss  uint16
	ws   int
	sack bool
	ts   uint32
	noTS bool
	win  uint16
	ecn  bool
}

func defaultCli() cliCfg {
	return cliCfg{isn: 1000, mss: 1460, ws: 7, sack: true, ts: 5000, win: 65535}
}

var t0 = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

type fix struct {
	t    testing.TB
	now  time.Time
	p    *Params
	o    *rec
	c    *Conn
	cli  cliCfg
	reps []repCfg

	cTS   uint32   // the client's clock (next TSval it sends)
	rTS   []uint32 // each replica's clock
	cOff  uint32   // client bytes sent so far (offset from cISN+1)
	vISN  uint32
	lastT uint32 // last TSval the client received
}

func testParams() *Params {
	p := DefaultParams()
	p.Hold = &HoldBudget{Max: 1 << 30}
	return p
}

func testKey() Key {
	return Key{
		Client:  netip.MustParseAddrPort("192.0.2.10:40000"),
		Service: netip.MustParseAddrPort("198.51.100.1:80"),
	}
}

func (cc cliCfg) syn() *Segment {
	s := &Segment{Seq: cc.isn, Flags: pkt.TCPFlagSyn, Window: cc.win,
		MSS: cc.mss, HasMSS: cc.mss != 0, SACKPermitted: cc.sack}
	if cc.ws >= 0 {
		s.HasWScale, s.WScale = true, uint8(cc.ws)
	}
	if !cc.noTS {
		s.HasTS, s.TSVal = true, cc.ts
	}
	if cc.ecn {
		s.Flags |= pkt.TCPFlagEce | pkt.TCPFlagCwr
	}
	return s
}

func (r repCfg) synAck(cISN uint32, cTS uint32) *Segment {
	s := &Segment{Seq: r.isn, Ack: cISN + 1, Flags: pkt.TCPFlagSyn | pkt.TCPFlagAck, Window: r.win,
		MSS: r.mss, HasMSS: r.mss != 0, SACKPermitted: r.sack}
	if r.ws >= 0 {
		s.HasWScale, s.WScale = true, uint8(r.ws)
	}
	if !r.noTS {
		s.HasTS, s.TSVal, s.TSEcr = true, r.ts, cTS
	}
	return s
}

// newConnOnly sends the client's SYN and nothing else.
func newConnOnly(t testing.TB, p *Params, cli cliCfg, reps ...repCfg) *fix {
	f := &fix{t: t, now: t0, p: p, o: newRec(), cli: cli, reps: reps, cTS: cli.ts}
	ids := make([]int, len(reps))
	for i, r := range reps {
		ids[i] = r.id
		f.rTS = append(f.rTS, r.ts)
	}
	f.c = NewConn(f.now, testKey(), pkt.MAC{2, 0, 0, 0, 0, 1}, cli.syn(), ids, p, f.o)
	return f
}

// newFix establishes a connection over reps (member i = reps[i]) and
// completes the client's handshake ACK. Outputs are drained.
func newFix(t testing.TB, p *Params, cli cliCfg, reps ...repCfg) *fix {
	f := newConnOnly(t, p, cli, reps...)
	for i, r := range reps {
		f.c.FromReplica(f.now, i, r.synAck(cli.isn, cli.ts), f.o)
	}
	if f.c.State() != StateEstablished {
		t.Fatalf("handshake did not complete: state %v", f.c.State())
	}
	f.vISN = reps[f.c.Primary()].isn
	sa := f.o.takeClient()
	if len(sa) != 1 {
		t.Fatalf("want 1 SYN-ACK, got %v", sa)
	}
	f.lastT = sa[0].H.TSVal
	// The client's third ACK.
	f.cTS++
	f.fromClient(f.cseg(0, 0, "", pkt.TCPFlagAck))
	f.o.drain()
	return f
}

func newFix2(t testing.TB, p *Params) *fix {
	return newFix(t, p, defaultCli(), rc(10, 0xFFFFFFF0, 1_000_000), rc(11, 0x00000100, 77))
}

func newFix3(t testing.TB, p *Params) *fix {
	return newFix(t, p, defaultCli(), rc(10, 0xFFFFFFF0, 1_000_000), rc(11, 0x00000100, 77), rc(12, 0x7FFFFFFF, 0xFFFFFF00))
}

func (f *fix) adv(d time.Duration) { f.now = f.now.Add(d) }

// cseg makes a client segment at client offset seqOff acknowledging view
// offset ackOff (both relative to ISN+1).
func (f *fix) cseg(seqOff, ackOff uint32, data string, flags pkt.TCPFlags) *Segment {
	s := &Segment{Seq: f.cli.isn + 1 + seqOff, Ack: f.vISN + 1 + ackOff, Flags: flags, Window: 0xFFFF,
		Payload: []byte(data)}
	if !f.cli.noTS {
		s.HasTS, s.TSVal, s.TSEcr = true, f.cTS, f.lastT
		f.cTS++
	}
	return s
}

func (f *fix) fromClient(s *Segment) {
	f.c.FromClient(f.now, s, f.o)
	if e := uint32(len(s.Payload)) + s.Seq - (f.cli.isn + 1); int32(e-f.cOff) > 0 {
		f.cOff = e
	}
}

// clientData sends len(data) new client bytes, acknowledging view offset ackOff.
func (f *fix) clientData(ackOff uint32, data string) {
	f.fromClient(f.cseg(f.cOff, ackOff, data, pkt.TCPFlagAck|pkt.TCPFlagPsh))
}

// clientAck sends a pure ACK of view offset ackOff.
func (f *fix) clientAck(ackOff uint32) {
	f.fromClient(f.cseg(f.cOff, ackOff, "", pkt.TCPFlagAck))
}

// rseg makes a segment from member i at its view offset off, acknowledging
// client offset ackOff, with window field win.
func (f *fix) rseg(i int, off, ackOff uint32, data string, flags pkt.TCPFlags, win uint16) *Segment {
	r := f.reps[i]
	s := &Segment{Seq: r.isn + 1 + off, Ack: f.cli.isn + 1 + ackOff, Flags: flags, Window: win,
		Payload: []byte(data)}
	if !r.noTS {
		f.rTS[i]++
		s.HasTS, s.TSVal, s.TSEcr = true, f.rTS[i], f.cTS-1
	}
	return s
}

func (f *fix) fromRep(i int, s *Segment) { f.c.FromReplica(f.now, i, s, f.o) }

// repData: member i sends data at view offset off, acknowledging all client data.
func (f *fix) repData(i int, off uint32, data string) {
	f.fromRep(i, f.rseg(i, off, f.cOff, data, pkt.TCPFlagAck|pkt.TCPFlagPsh, 0xFFFF))
}

// repAck: member i acknowledges client offset ackOff with window field win.
func (f *fix) repAck(i int, ackOff uint32, win uint16) {
	f.fromRep(i, f.rseg(i, 0, ackOff, "", pkt.TCPFlagAck, win))
}

// repAckAt: pure ACK with an explicit sequence offset.
func (f *fix) repAckAt(i int, seqOff, ackOff uint32, win uint16) {
	f.fromRep(i, f.rseg(i, seqOff, ackOff, "", pkt.TCPFlagAck, win))
}

func (f *fix) tick() { f.c.Tick(f.now, f.o) }

// ---------------------------------------------------------------------------
// Assertion helpers

func dataSegs(ss []sentSeg) []sentSeg {
	var out []sentSeg
	for _, s := range ss {
		if len(s.P) > 0 {
			out = append(out, s)
		}
	}
	return out
}

func withFlag(ss []sentSeg, fl pkt.TCPFlags) []sentSeg {
	var out []sentSeg
	for _, s := range ss {
		if s.H.Flags.Has(fl) {
			out = append(out, s)
		}
	}
	return out
}

func eventsOf(evs []Event, k EventKind) []Event {
	var out []Event
	for _, e := range evs {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}

// wantOneData asserts ss holds exactly one data segment at view offset off
// with payload data, and returns it.
func (f *fix) wantOneData(ss []sentSeg, off uint32, data string) sentSeg {
	f.t.Helper()
	d := dataSegs(ss)
	if len(d) != 1 {
		f.t.Fatalf("want exactly 1 data segment to the client, got %d: %v", len(d), ss)
	}
	if d[0].H.Seq != f.vISN+1+off {
		f.t.Errorf("data seq = %#x, want %#x (view offset %d)", d[0].H.Seq, f.vISN+1+off, off)
	}
	if !bytes.Equal(d[0].P, []byte(data)) {
		f.t.Errorf("data payload = %q, want %q", d[0].P, data)
	}
	return d[0]
}

func pattern(off, n int, salt byte) string {
	b := make([]byte, n)
	for k := range b {
		b[k] = byte((off+k)*7+3) ^ salt
	}
	return string(b)
}
