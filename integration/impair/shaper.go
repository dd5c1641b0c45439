package impair

import (
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/link"
)

// maxFrame is the largest frame a forwarder reads: a 64 KiB GSO super-frame
// with its Ethernet header and virtio_net_hdr, plus slack for the headers
// the kernel may count outside the 64 KiB. Larger frames are counted as
// Errors.
const maxFrame = link.VNetHdrLen + 65536 + 256

// smallFrame is the buffer class for ordinary (non-GSO) frames; anything
// larger takes a maxFrame buffer. Two classes keep a queue of small frames
// from pinning 64 KiB each.
const smallFrame = 2048

// poolKeep bounds the idle buffers a pool retains per class, so that a burst
// does not keep its memory for the rest of the run.
const poolKeep = 256

// pool recycles queue buffers. It belongs to one direction's goroutine.
type pool struct{ small, large [][]byte }

func (p *pool) get(n int) []byte {
	list, size := &p.small, smallFrame
	if n > smallFrame {
		list, size = &p.large, maxFrame
	}
	if k := len(*list); k > 0 {
		b := (*list)[k-1]
		*list = (*list)[:k-1]
		return b[:n]
	}
	return make([]byte, n, size)
}

func (p *pool) put(b []byte) {
	list := &p.small
	if cap(b) > smallFrame {
		list = &p.large
	}
	if len(*list) < poolKeep {
		*list = append(*list, b[:0])
	}
}

// counters are one direction's Counters, updated by its goroutine and read
// by Stats from any goroutine.
type counters struct {
	received, segmented, forwarded, bytes, lost, duplicated, reordered, delayed, overflow, errors atomic.Uint64
}

func (c *counters) snapshot() Counters {
	return Counters{
		Received: c.received.Load(), Segmented: c.segmented.Load(), Forwarded: c.forwarded.Load(), Bytes: c.bytes.Load(),
		Lost: c.lost.Load(), Duplicated: c.duplicated.Load(), Reordered: c.reordered.Load(),
		Delayed: c.delayed.Load(), Overflow: c.overflow.Load(), Errors: c.errors.Load(),
	}
}

// frame is one frame on its way through a shaper.
type frame struct {
	b     []byte        // the frame as read, virtio_net_hdr included
	owned bool          // b is a pool buffer (queued), not the caller's read buffer
	due   time.Duration // when it may leave, on the shaper's clock
	seq   uint64        // arrival order; a duplicate counts as arriving after its original
	size  int           // frame bytes (without virtio_net_hdr), for Counters.Bytes
}

// heldFrame is a frame held back for reordering.
type heldFrame struct {
	frame
	passed   int           // later frames that have left before it
	deadline time.Duration // leaves by then however few frames passed
}

// fifo is a ring of frames in due order.
type fifo struct {
	buf        []frame
	head, size int
}

func (q *fifo) empty() bool { return q.size == 0 }

func (q *fifo) front() *frame { return &q.buf[q.head] }

func (q *fifo) push(f frame) {
	if q.size == len(q.buf) {
		n := make([]frame, max(16, 2*len(q.buf)))
		for i := range q.size {
			n[i] = q.buf[(q.head+i)%len(q.buf)]
		}
		q.buf, q.head = n, 0
	}
	q.buf[(q.head+q.size)%len(q.buf)] = f
	q.size++
}

func (q *fifo) pop() frame {
	f := q.buf[q.head]
	q.buf[q.head] = frame{}
	q.head = (q.head + 1) % len(q.buf)
	q.size--
	return f
}

// shaper applies one direction's Spec. It is driven by a single goroutine
// with a monotonic clock (any origin): arrive for each frame read, release
// when time has passed, then the caller writes out in order and calls
// recycle. Frames that leave at once are not copied; queued ones are.
type shaper struct {
	dir   Direction
	vnet  bool // frames start with a virtio_net_hdr
	spec  Spec
	gap   int
	limit int
	rng   *rand.Rand
	c     *counters
	pool  pool

	q    fifo
	held []heldFrame // arrival order

	queued      int // frames in q and held
	queuedBytes int // buffer capacity they pin
	lastDue     time.Duration
	linkFree    time.Duration // when the rate limiter's wire is free again
	seq         uint64
	segs        [][]byte // scratch for segmentTCP

	// out are the frames to write now, in order; outLen their frame
	// bytes; outOwned the pool buffers to recycle once written.
	out      [][]byte
	outLen   []int
	outOwned [][]byte
}

func newShaper(dir Direction, vnet bool, c *counters) *shaper {
	s := &shaper{dir: dir, vnet: vnet, c: c}
	s.setSpec(Spec{Dir: dir})
	return s
}

// setSpec switches to spec for the frames arriving from now on. Frames
// already queued keep their times, and new frames never leave before them,
// so a change (clearing included) does not itself reorder anything.
func (s *shaper) setSpec(spec Spec) {
	s.spec = spec
	s.gap = spec.gap()
	s.limit = spec.limit()
	// The direction is a second seed word so that the two directions of one
	// spec do not make identical decisions.
	s.rng = rand.New(rand.NewPCG(spec.seed(), uint64(s.dir)))
}

// txTime is how long size bytes occupy a wire of RateBps.
func (s *shaper) txTime(size int) time.Duration {
	return time.Duration(int64(size) * 8 * int64(time.Second) / s.spec.RateBps)
}

// arrive takes a frame read at now. b is borrowed: it is either placed in
// out as is (valid until recycle) or copied. When a per-frame random
// decision is on, a TCP super-frame is first split into the segments a wire
// would carry, so that loss, duplication and reordering hit packets, not
// 64 KiB bursts of them.
func (s *shaper) arrive(b []byte, now time.Duration) {
	sp := &s.spec
	if s.vnet && (sp.Loss > 0 || sp.Duplicate > 0 || sp.Reorder > 0) {
		if segs, ok := segmentTCP(b, s.pool.get, s.segs[:0]); ok {
			s.c.segmented.Add(1)
			for _, seg := range segs {
				s.arriveOne(seg, true, now)
			}
			clear(segs)
			s.segs = segs[:0]
			return
		}
	}
	s.arriveOne(b, false, now)
}

// arriveOne shapes one frame; owned says whether b is a pool buffer this
// shaper may keep (a segment) or the caller's read buffer.
func (s *shaper) arriveOne(b []byte, owned bool, now time.Duration) {
	s.c.received.Add(1)
	s.seq++
	wire, size := wireSize(b, s.vnet)
	if s.spec.IsZero() && s.q.empty() {
		s.emit(frame{b: b, owned: owned, seq: s.seq, size: size})
		return
	}
	sp := &s.spec
	if sp.Loss > 0 && s.rng.Float64() < sp.Loss {
		s.c.lost.Add(1)
		if owned {
			s.pool.put(b)
		}
		return
	}
	copies := 1
	if sp.Duplicate > 0 && s.rng.Float64() < sp.Duplicate {
		copies = 2
		s.c.duplicated.Add(1)
	}
	for k := range copies {
		seq, fb, fowned := s.seq, b, owned
		if k > 0 {
			s.seq++
			seq = s.seq
			if owned {
				// Each copy in out must be a buffer of its own, or recycle
				// would return one buffer to the pool twice.
				fb = s.pool.get(len(b))
				copy(fb, b)
			}
		}
		due, linkFree := now, s.linkFree
		if sp.RateBps > 0 {
			linkFree = max(now, linkFree) + s.txTime(wire)
			due = linkFree
		}
		if sp.Delay > 0 || sp.Jitter > 0 {
			d := sp.Delay
			if sp.Jitter > 0 {
				d += time.Duration(s.rng.Int64N(2*int64(sp.Jitter)+1)) - sp.Jitter
			}
			due += max(d, 0)
		}
		due = max(due, s.lastDue)
		hold := sp.Reorder > 0 && s.rng.Float64() < sp.Reorder
		if !hold && due <= now && s.q.empty() {
			s.linkFree, s.lastDue = linkFree, due
			s.emit(frame{b: fb, owned: fowned, seq: seq, size: size})
			continue
		}
		bufCap := smallFrame
		if len(fb) > smallFrame {
			bufCap = maxFrame
		}
		if s.queued >= s.limit || s.queuedBytes+bufCap > QueueBytes {
			// Dropped before taking wire time or a place in the order.
			s.c.overflow.Add(1)
			if fowned {
				s.pool.put(fb)
			}
			continue
		}
		s.linkFree, s.lastDue = linkFree, due
		c := fb
		if !fowned {
			c = s.pool.get(len(fb))
			copy(c, fb)
		}
		f := frame{b: c, owned: true, due: due, seq: seq, size: size}
		s.queued++
		s.queuedBytes += cap(c)
		if hold {
			if due > now {
				s.c.delayed.Add(1)
			}
			s.held = append(s.held, heldFrame{frame: f, deadline: due + ReorderHold})
			continue
		}
		s.c.delayed.Add(1)
		s.q.push(f)
	}
}

// release moves every frame due by now to out: the queue in order, then
// held frames whose deadline has passed.
func (s *shaper) release(now time.Duration) {
	for !s.q.empty() && s.q.front().due <= now {
		f := s.q.pop()
		s.unqueue(f)
		s.emit(f)
	}
	for {
		i := -1
		for j := range s.held {
			if s.held[j].deadline <= now {
				i = j
				break
			}
		}
		if i < 0 {
			return
		}
		s.emitHeld(i)
		s.drainPassed()
	}
}

// next returns when release next has something to do, if anything waits.
func (s *shaper) next() (time.Duration, bool) {
	var t time.Duration
	ok := false
	if !s.q.empty() {
		t, ok = s.q.front().due, true
	}
	for i := range s.held {
		if d := s.held[i].deadline; !ok || d < t {
			t, ok = d, true
		}
	}
	return t, ok
}

func (s *shaper) unqueue(f frame) {
	s.queued--
	s.queuedBytes -= cap(f.b)
}

// emit appends f to out; held frames that f completes follow it.
func (s *shaper) emit(f frame) {
	s.put(f)
	s.drainPassed()
}

// drainPassed releases the held frames that enough later frames have
// passed, oldest first; each one released may complete another.
func (s *shaper) drainPassed() {
	for {
		i := -1
		for j := range s.held {
			if s.held[j].passed >= s.gap {
				i = j
				break
			}
		}
		if i < 0 {
			return
		}
		s.emitHeld(i)
	}
}

// emitHeld releases held frame i.
func (s *shaper) emitHeld(i int) {
	h := s.held[i]
	s.held = append(s.held[:i], s.held[i+1:]...)
	s.unqueue(h.frame)
	if h.passed > 0 {
		s.c.reordered.Add(1)
	}
	s.put(h.frame)
}

// put appends f to out and counts it as passing every held frame that
// arrived before it.
func (s *shaper) put(f frame) {
	s.out = append(s.out, f.b)
	s.outLen = append(s.outLen, f.size)
	if f.owned {
		s.outOwned = append(s.outOwned, f.b)
	}
	for j := range s.held {
		if s.held[j].seq < f.seq {
			s.held[j].passed++
		}
	}
}

// recycle returns written frames' buffers to the pool and empties out.
func (s *shaper) recycle() {
	for i, b := range s.outOwned {
		s.pool.put(b)
		s.outOwned[i] = nil
	}
	clear(s.out)
	s.out, s.outLen, s.outOwned = s.out[:0], s.outLen[:0], s.outOwned[:0]
}
