package impair

import (
	"encoding/binary"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/link"
)

// sent is one frame a shaper let out: its id and when.
type sent struct {
	id uint32
	at time.Duration
}

// sim drives a shaper on a fake clock with numbered frames.
type sim struct {
	t     *testing.T
	s     *shaper
	c     counters
	now   time.Duration
	out   []sent
	frame []byte // scratch read buffer, reused like a real read buffer
}

func newSim(t *testing.T, spec Spec) *sim {
	m := &sim{t: t, frame: make([]byte, 200)}
	m.s = newShaper(ToBox, false, &m.c)
	spec.Dir = ToBox
	m.s.setSpec(spec)
	return m
}

// arrive feeds frame id of n bytes at the current time.
func (m *sim) arrive(id uint32, n int) {
	if cap(m.frame) < n {
		m.frame = make([]byte, n)
	}
	b := m.frame[:n]
	binary.BigEndian.PutUint32(b, id)
	m.s.arrive(b, m.now)
	m.flush()
	// The caller reuses its read buffer: anything not copied is clobbered.
	binary.BigEndian.PutUint32(b, 0xdeadbeef)
}

// flush releases what is due and records the output, checking that the
// recorded lengths match the frames.
func (m *sim) flush() {
	m.s.release(m.now)
	for i, b := range m.s.out {
		if m.s.outLen[i] != len(b) {
			m.t.Fatalf("outLen %d for a %d-byte frame", m.s.outLen[i], len(b))
		}
		m.out = append(m.out, sent{binary.BigEndian.Uint32(b), m.now})
	}
	m.s.recycle()
}

// advance moves the clock to t in 100µs steps, releasing as it goes.
func (m *sim) advance(t time.Duration) {
	for m.now < t {
		m.now = min(m.now+100*time.Microsecond, t)
		m.flush()
	}
}

// drain runs the clock until nothing is queued (bounded).
func (m *sim) drain() {
	for i := 0; i < 1e6; i++ {
		next, ok := m.s.next()
		if !ok {
			return
		}
		m.now = max(m.now, next)
		m.flush()
	}
	m.t.Fatal("shaper never drained")
}

func (m *sim) ids() []uint32 {
	ids := make([]uint32, len(m.out))
	for i, o := range m.out {
		ids[i] = o.id
	}
	return ids
}

func seq(n int) []uint32 {
	s := make([]uint32, n)
	for i := range s {
		s[i] = uint32(i + 1)
	}
	return s
}

func TestZeroSpecPassesAtOnceWithoutCopy(t *testing.T) {
	m := newSim(t, Spec{})
	b := make([]byte, 100)
	m.s.arrive(b, 0)
	if len(m.s.out) != 1 || &m.s.out[0][0] != &b[0] || len(m.s.outOwned) != 0 {
		t.Fatalf("zero spec: out %d frames, owned %d; want the read buffer itself", len(m.s.out), len(m.s.outOwned))
	}
	if m.s.outLen[0] != 100 {
		t.Errorf("outLen = %d, want the size given", m.s.outLen[0])
	}
	m.s.recycle()
	for i := range 1000 {
		m.arrive(uint32(i+1), 60)
	}
	if !slices.Equal(m.ids(), seq(1000)) {
		t.Error("zero spec changed the frames or their order")
	}
	c := m.c.snapshot()
	if c.Received != 1001 || c.Lost+c.Delayed+c.Duplicated+c.Reordered+c.Overflow != 0 {
		t.Errorf("counters %+v", c)
	}
	if _, ok := m.s.next(); ok {
		t.Error("zero spec queued something")
	}
}

// run feeds n frames, one every gap, and drains.
func run(t *testing.T, spec Spec, n int, gap time.Duration) *sim {
	m := newSim(t, spec)
	for i := range n {
		m.advance(time.Duration(i) * gap)
		m.arrive(uint32(i+1), 100)
	}
	m.drain()
	return m
}

func TestLossRateAndReproducibility(t *testing.T) {
	const n = 20000
	a := run(t, Spec{Loss: 0.05}, n, 0)
	c := a.c.snapshot()
	if c.Lost+uint64(len(a.out)) != n {
		t.Fatalf("lost %d + out %d != %d", c.Lost, len(a.out), n)
	}
	// 5% of 20000 is 1000 with a standard deviation of about 31.
	if c.Lost < 850 || c.Lost > 1150 {
		t.Errorf("lost %d of %d at 5%%", c.Lost, n)
	}
	if !slices.IsSorted(a.ids()) {
		t.Error("loss reordered frames")
	}
	b := run(t, Spec{Loss: 0.05}, n, 0)
	if !slices.Equal(a.ids(), b.ids()) {
		t.Error("same spec and seed made different decisions")
	}
	other := run(t, Spec{Loss: 0.05, Seed: 99}, n, 0)
	if slices.Equal(a.ids(), other.ids()) {
		t.Error("another seed made the same decisions")
	}
	all := run(t, Spec{Loss: 1}, 100, 0)
	if len(all.out) != 0 {
		t.Errorf("loss 1 let %d frames through", len(all.out))
	}
}

func TestDirectionsDecideDifferently(t *testing.T) {
	var ca, cb counters
	a, b := newShaper(ToBox, false, &ca), newShaper(FromBox, false, &cb)
	a.setSpec(Spec{Dir: ToBox, Loss: 0.5})
	b.setSpec(Spec{Dir: FromBox, Loss: 0.5})
	same := 0
	for range 200 {
		a.arrive(make([]byte, 60), 0)
		b.arrive(make([]byte, 60), 0)
		if len(a.out) == len(b.out) {
			same++
		}
		a.recycle()
		b.recycle()
	}
	if same == 200 {
		t.Error("both directions of one spec drop exactly the same frames")
	}
}

func TestDuplicate(t *testing.T) {
	const n = 10000
	m := run(t, Spec{Duplicate: 0.1}, n, 0)
	c := m.c.snapshot()
	if uint64(len(m.out)) != n+c.Duplicated {
		t.Fatalf("out %d, want %d + %d duplicates", len(m.out), n, c.Duplicated)
	}
	if c.Duplicated < 850 || c.Duplicated > 1150 {
		t.Errorf("duplicated %d of %d at 10%%", c.Duplicated, n)
	}
	// Each duplicate directly follows its original; nothing else changes.
	ids := slices.Compact(m.ids())
	if !slices.Equal(ids, seq(n)) {
		t.Error("duplication lost or reordered frames")
	}
}

func TestDelayAndJitterKeepOrder(t *testing.T) {
	m := newSim(t, Spec{Delay: 20 * time.Millisecond})
	m.arrive(1, 100)
	m.advance(19900 * time.Microsecond)
	if len(m.out) != 0 {
		t.Fatalf("frame left after %v of a 20ms delay", m.out[0].at)
	}
	m.advance(20 * time.Millisecond)
	if len(m.out) != 1 || m.out[0].at != 20*time.Millisecond {
		t.Fatalf("out %+v, want frame 1 at 20ms", m.out)
	}
	if c := m.c.snapshot(); c.Delayed != 1 {
		t.Errorf("delayed = %d", c.Delayed)
	}

	const n = 2000
	gap := 200 * time.Microsecond
	j := run(t, Spec{Delay: 10 * time.Millisecond, Jitter: 8 * time.Millisecond}, n, gap)
	if !slices.Equal(j.ids(), seq(n)) {
		t.Fatal("jitter reordered or lost frames")
	}
	var minLat, maxLat time.Duration = math.MaxInt64, 0
	for _, o := range j.out {
		lat := o.at - time.Duration(o.id-1)*gap
		minLat, maxLat = min(minLat, lat), max(maxLat, lat)
	}
	// Uniform in [2ms, 18ms], but never ahead of the frame before, so
	// the spread shrinks from below; 100µs is the sim's step.
	if minLat < 2*time.Millisecond || maxLat > 18*time.Millisecond+100*time.Microsecond {
		t.Errorf("latency range [%v, %v], want within [2ms, 18ms]", minLat, maxLat)
	}
	if maxLat-minLat < 4*time.Millisecond {
		t.Errorf("latency range [%v, %v]: jitter had no effect", minLat, maxLat)
	}
}

func TestJitterLargerThanDelay(t *testing.T) {
	m := run(t, Spec{Delay: time.Millisecond, Jitter: 5 * time.Millisecond}, 500, 100*time.Microsecond)
	if !slices.Equal(m.ids(), seq(500)) {
		t.Error("frames lost or reordered")
	}
}

func TestReorder(t *testing.T) {
	const n = 5000
	m := run(t, Spec{Reorder: 0.05, ReorderGap: 3}, n, 50*time.Microsecond)
	ids := m.ids()
	if !slices.Equal(slices.Sorted(slices.Values(ids)), seq(n)) {
		t.Fatal("reordering lost or duplicated frames")
	}
	// Count frames that left after a frame that arrived later.
	late, maxID := uint64(0), uint32(0)
	for _, id := range ids {
		if id < maxID {
			late++
		}
		maxID = max(maxID, id)
	}
	c := m.c.snapshot()
	if c.Reordered != late {
		t.Errorf("Reordered = %d, but %d frames left after a later one", c.Reordered, late)
	}
	if c.Reordered < 150 || c.Reordered > 350 {
		t.Errorf("reordered %d of %d at 5%%", c.Reordered, n)
	}
	// A frame held back lets exactly 3 later frames pass when traffic
	// keeps coming and no two held frames interact.
	pos := map[uint32]int{}
	for i, id := range ids {
		pos[id] = i
	}
	exact := 0
	for id := uint32(1); id <= n-10; id++ {
		if d := pos[id] - int(id-1); d == 3 {
			exact++
		}
	}
	if exact < int(c.Reordered)/2 {
		t.Errorf("only %d of %d reordered frames moved back by the gap of 3", exact, c.Reordered)
	}
}

func TestReorderHeldFrameLeavesOnQuietLink(t *testing.T) {
	m := newSim(t, Spec{Reorder: 1})
	m.arrive(1, 100)
	if len(m.out) != 0 {
		t.Fatal("held frame left at once")
	}
	m.advance(ReorderHold - 200*time.Microsecond)
	if len(m.out) != 0 {
		t.Fatal("held frame left before ReorderHold")
	}
	m.advance(ReorderHold)
	if len(m.out) != 1 {
		t.Fatalf("held frame still held after ReorderHold")
	}
	if c := m.c.snapshot(); c.Reordered != 0 {
		t.Errorf("a frame nobody overtook counts as reordered (%d)", c.Reordered)
	}
}

func TestRate(t *testing.T) {
	// 1 Mbit/s: a 1000-byte frame takes 8ms on the wire.
	m := newSim(t, Spec{RateBps: 1_000_000})
	for i := range 5 {
		m.arrive(uint32(i+1), 1000)
	}
	m.drain()
	for i, o := range m.out {
		if want := time.Duration(i+1) * 8 * time.Millisecond; o.id != uint32(i+1) || o.at != want {
			t.Errorf("frame %d left at %v, want %v", o.id, o.at, want)
		}
	}
	// An idle wire does not bank credit: a frame after a pause takes its
	// own transmission time from its arrival.
	m.advance(200 * time.Millisecond)
	m.out = nil
	m.arrive(6, 1000)
	m.drain()
	if len(m.out) != 1 || m.out[0].at != 208*time.Millisecond {
		t.Errorf("after idle: %+v, want frame 6 at 208ms", m.out)
	}
}

func TestRateCountsGSOSegments(t *testing.T) {
	b := make([]byte, link.VNetHdrLen+14+20+20+3000)
	link.VNetHeader{GSOType: link.VNetGSOTCPv4, HdrLen: 54, GSOSize: 1000}.Encode(b)
	wire, size := wireSize(b, true)
	if size != 54+3000 || wire != 3*54+3000 {
		t.Errorf("wireSize = %d, %d; want %d, %d", wire, size, 3*54+3000, 54+3000)
	}
	if w, s := wireSize(b[:link.VNetHdrLen+60], false); w != 70 || s != 70 {
		t.Errorf("without vnet: %d, %d", w, s)
	}
	plain := make([]byte, link.VNetHdrLen+60)
	if w, s := wireSize(plain, true); w != 60 || s != 60 {
		t.Errorf("non-GSO: %d, %d", w, s)
	}
}

func TestLimitOverflow(t *testing.T) {
	m := newSim(t, Spec{Delay: 10 * time.Millisecond, Limit: 5})
	for i := range 8 {
		m.arrive(uint32(i+1), 100)
	}
	m.drain()
	c := m.c.snapshot()
	if c.Overflow != 3 || !slices.Equal(m.ids(), seq(5)) {
		t.Errorf("overflow %d, out %v; want 3 dropped and frames 1-5", c.Overflow, m.ids())
	}
	// The byte bound holds whatever the frame limit says.
	big := newSim(t, Spec{Delay: 10 * time.Millisecond, Limit: MaxLimit})
	for i := range 1000 {
		big.arrive(uint32(i+1), 60000)
	}
	if q := big.s.queuedBytes; q > QueueBytes {
		t.Errorf("queued %d bytes, bound %d", q, QueueBytes)
	}
	if c := big.c.snapshot(); c.Overflow == 0 {
		t.Error("1000 queued super-frames never overflowed QueueBytes")
	}
}

func TestSpecChangeDoesNotReorder(t *testing.T) {
	m := newSim(t, Spec{Delay: 50 * time.Millisecond})
	m.arrive(1, 100)
	m.arrive(2, 100)
	m.advance(10 * time.Millisecond)
	m.s.setSpec(Spec{Dir: ToBox})
	m.arrive(3, 100) // must wait behind 1 and 2
	m.advance(49 * time.Millisecond)
	if len(m.out) != 0 {
		t.Fatalf("out %v before the delayed frames were due", m.ids())
	}
	m.advance(50 * time.Millisecond)
	if !slices.Equal(m.ids(), seq(3)) {
		t.Fatalf("out %v, want 1 2 3", m.ids())
	}
	// The queue is empty again: back to the zero-copy path.
	m.s.arrive(make([]byte, 60), m.now)
	if len(m.s.outOwned) != 0 || len(m.s.out) != 1 {
		t.Error("cleared spec still copies")
	}
	m.s.recycle()
}

func TestPoolReuse(t *testing.T) {
	var p pool
	a := p.get(100)
	if cap(a) != smallFrame {
		t.Errorf("small buffer cap %d", cap(a))
	}
	p.put(a)
	if b := p.get(1500); &b[0] != &a[0] || len(b) != 1500 {
		t.Error("small buffer not reused")
	}
	big := p.get(3000)
	if cap(big) != maxFrame {
		t.Errorf("large buffer cap %d", cap(big))
	}
	for range poolKeep + 10 {
		p.put(make([]byte, 0, maxFrame))
	}
	if len(p.large) != poolKeep {
		t.Errorf("pool keeps %d large buffers, bound %d", len(p.large), poolKeep)
	}
}

func BenchmarkShaperZero(b *testing.B) {
	var c counters
	s := newShaper(ToBox, false, &c)
	f := make([]byte, 1500)
	b.ReportAllocs()
	for b.Loop() {
		s.arrive(f, 0)
		s.release(0)
		s.recycle()
	}
}

func BenchmarkShaperDelayed(b *testing.B) {
	var c counters
	s := newShaper(ToBox, false, &c)
	s.setSpec(Spec{Dir: ToBox, Delay: time.Millisecond, Loss: 0.01, Reorder: 0.01})
	f := make([]byte, 1500)
	now := time.Duration(0)
	b.ReportAllocs()
	for b.Loop() {
		now += time.Microsecond
		s.arrive(f, now)
		s.release(now)
		s.recycle()
	}
}
