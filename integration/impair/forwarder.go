package impair

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/link"
)

const (
	// batch is the frames one read or write system call moves at most.
	batch = 64
	// idleWait bounds a poll when nothing is queued; spec changes and
	// Close wake the poller anyway, so this is only a safety net.
	idleWait = time.Second
	// errorPause slows a loop that keeps failing to read for a reason
	// other than a down link, so that it cannot spin a CPU.
	errorPause = 10 * time.Millisecond
	// applyWait bounds how long Set waits for a running loop to take a
	// new spec; a loop wakes for it at once, so this only guards against
	// a wedged forwarder.
	applyWait = 2 * time.Second
	// applyPoll is how often Set checks whether the spec was taken.
	applyPoll = 100 * time.Microsecond
	// downCheck is how often a direction whose input is down asks the
	// kernel whether it came back or disappeared: a packet socket hears of
	// a link going down once, and of its deletion not at all if that came
	// a moment later.
	downCheck = 100 * time.Millisecond
)

// Forwarder is a two-port frame forwarder that impairs each direction
// according to its Spec. It is created in the network namespace holding
// both interfaces and needs CAP_NET_RAW (and CAP_NET_ADMIN for large socket
// buffers).
type Forwarder struct {
	host, box *link.Port
	dirs      [2]*direction
	start     time.Time

	mu      sync.Mutex
	specs   [2]Spec
	gen     uint64 // counts Set calls; a direction's applied catches up
	running bool
	closed  bool
}

// direction is the state of one direction; its shaper and buffers belong
// to the goroutine running loop.
type direction struct {
	dir      Direction
	in, out  *link.Port
	poller   *link.Poller
	pending  atomic.Pointer[pendingSpec] // set by Set, taken by loop
	applied  atomic.Uint64               // gen of the last spec loop took
	stopped  chan struct{}               // closed when loop has returned
	counters counters
	sh       *shaper
}

// pendingSpec is a spec on its way from Set to a direction's loop.
type pendingSpec struct {
	spec Spec
	gen  uint64
}

// New opens AF_PACKET ports (virtio_net_hdr on, so GSO super-frames and
// partial checksums pass through unchanged, and promiscuous, so frames for
// any MAC are seen) on hostIf, the interface facing the client or replica,
// and boxIf, the interface facing the box, in the calling thread's network
// namespace. Both directions start with the zero Spec.
func New(hostIf, boxIf string) (*Forwarder, error) {
	f := &Forwarder{start: time.Now()}
	opts := &link.Options{VNetHdr: true, Promisc: true}
	var err error
	if f.host, err = link.Open(hostIf, opts); err != nil {
		return nil, fmt.Errorf("impair: %w", err)
	}
	if f.box, err = link.Open(boxIf, opts); err != nil {
		f.host.Close()
		return nil, fmt.Errorf("impair: %w", err)
	}
	ends := [2][2]*link.Port{{f.host, f.box}, {f.box, f.host}}
	for i, d := range []Direction{ToBox, FromBox} {
		p, err := link.NewPoller()
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("impair: %w", err)
		}
		dir := &direction{dir: d, in: ends[i][0], out: ends[i][1], poller: p, stopped: make(chan struct{})}
		dir.sh = newShaper(d, dir.in.VNetHdr(), &dir.counters)
		f.dirs[i] = dir
		f.specs[i] = Spec{Dir: d}
	}
	return f, nil
}

// Set validates spec and applies it to the direction(s) spec.Dir selects;
// the other direction is unchanged. While Run runs, Set returns once the
// direction loops have taken the spec, so every frame read after Set
// returns is shaped by it. It is safe for concurrent use.
func (f *Forwarder) Set(spec Spec) error {
	if err := spec.Validate(); err != nil {
		return err
	}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return errClosed
	}
	f.gen++
	gen := f.gen
	var dirs []*direction
	for _, d := range spec.Dir.dirs() {
		s := spec
		s.Dir = d
		f.specs[d.index()] = s
		dir := f.dirs[d.index()]
		dir.pending.Store(&pendingSpec{spec: s, gen: gen})
		dir.poller.Wake()
		dirs = append(dirs, dir)
	}
	running := f.running
	f.mu.Unlock()
	if !running {
		// A loop not started yet takes the spec before its first read.
		return nil
	}
	deadline := time.Now().Add(applyWait)
	for _, d := range dirs {
		for d.applied.Load() < gen {
			select {
			case <-d.stopped:
				return nil
			default:
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("impair: %s did not take the spec within %v", d.dir, applyWait)
			}
			time.Sleep(applyPoll)
		}
	}
	return nil
}

// Stats returns the counters and the specs in force. It is safe for
// concurrent use.
func (f *Forwarder) Stats() Stats {
	f.mu.Lock()
	specs := f.specs
	f.mu.Unlock()
	return Stats{
		ToBox:   f.dirs[ToBox.index()].counters.snapshot(),
		FromBox: f.dirs[FromBox.index()].counters.snapshot(),
		Specs:   specs,
	}
}

// Run forwards frames both ways until ctx is done (it then returns nil) or
// an interface disappears or a port fails for good (it returns the error).
// Frames still queued when Run returns are discarded. Run may be called
// once.
func (f *Forwarder) Run(ctx context.Context) error {
	f.mu.Lock()
	if f.running || f.closed {
		f.mu.Unlock()
		return errors.New("impair: Run called twice or after Close")
	}
	f.running = true
	f.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		for _, d := range f.dirs {
			d.poller.Wake()
		}
	})
	defer stop()
	errs := make(chan error, len(f.dirs))
	for _, d := range f.dirs {
		go func() {
			err := d.loop(ctx, f.clock)
			close(d.stopped)
			// One direction failing ends the link: the other would only
			// forward into a dead wire.
			cancel()
			errs <- err
		}()
	}
	var first error
	for range f.dirs {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// clock is the forwarder's monotonic time, the shapers' time base.
func (f *Forwarder) clock() time.Duration { return time.Since(f.start) }

// Close releases the ports and pollers. It must not be called while Run
// runs; Set fails afterwards.
func (f *Forwarder) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	var errs []error
	for _, p := range []*link.Port{f.host, f.box} {
		if p != nil {
			errs = append(errs, p.Close())
		}
	}
	for _, d := range f.dirs {
		if d != nil {
			errs = append(errs, d.poller.Close())
		}
	}
	return errors.Join(errs...)
}

// loop is one direction: read from in, shape, write to out.
func (d *direction) loop(ctx context.Context, clock func() time.Duration) error {
	bufs := make([][]byte, batch)
	for i := range bufs {
		bufs[i] = make([]byte, maxFrame)
	}
	sizes := make([]int, batch)
	fds, ready := []int{d.in.Fd()}, []bool{false}
	inDown := false
	for ctx.Err() == nil {
		d.takeSpec()
		wait := idleWait
		if inDown {
			wait = downCheck
		}
		if t, ok := d.sh.next(); ok {
			wait = max(min(t-clock(), wait), 0)
		}
		if _, err := d.poller.Wait(fds, ready, wait); err != nil {
			return fmt.Errorf("impair: %s: %w", d.dir, err)
		}
		// Again after the wait, which Set cuts short: frames read next
		// may have been sent after Set returned.
		d.takeSpec()
		if inDown && !ready[0] {
			switch err := d.in.Check(); {
			case errors.Is(err, link.ErrPortGone):
				return fmt.Errorf("impair: %s: %w", d.dir, err)
			case err == nil:
				inDown = false
			}
		}
		if ready[0] {
			n, err := d.in.ReadBatch(bufs, sizes)
			switch {
			case errors.Is(err, link.ErrPortGone):
				return fmt.Errorf("impair: %s: %w", d.dir, err)
			case errors.Is(err, link.ErrLinkDown):
				// The kernel says so once; frames resume when the link
				// comes back, and Check notices if it is deleted.
				inDown = true
			case n > 0:
				inDown = false
			case err != nil:
				d.counters.errors.Add(1)
				time.Sleep(errorPause)
			}
			now := clock()
			for i := range n {
				if sizes[i] < 0 {
					d.counters.errors.Add(1)
					continue
				}
				d.sh.arrive(bufs[i][:sizes[i]], now)
			}
		}
		d.sh.release(clock())
		if err := d.flush(); err != nil {
			return err
		}
	}
	return nil
}

// takeSpec switches the shaper to a spec Set left, and tells Set.
func (d *direction) takeSpec() {
	if p := d.pending.Swap(nil); p != nil {
		d.sh.setSpec(p.spec)
		d.applied.Store(p.gen)
	}
}

// flush writes the shaper's output and recycles it. A frame the output
// refuses is dropped and counted; a down link or lasting backpressure drops
// the rest of the batch, as a full or dead wire would.
func (d *direction) flush() error {
	defer d.sh.recycle()
	out, lens := d.sh.out, d.sh.outLen
	for len(out) > 0 {
		n, err := d.out.WriteBatch(out)
		var bytes uint64
		for _, l := range lens[:n] {
			bytes += uint64(l)
		}
		d.counters.forwarded.Add(uint64(n))
		d.counters.bytes.Add(bytes)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, link.ErrPortGone):
			d.counters.errors.Add(uint64(len(out) - n))
			return fmt.Errorf("impair: %s: %w", d.dir, err)
		case errors.Is(err, link.ErrLinkDown), errors.Is(err, link.ErrBackpressure):
			d.counters.errors.Add(uint64(len(out) - n))
			return nil
		}
		d.counters.errors.Add(1)
		out, lens = out[n+1:], lens[n+1:]
	}
	return nil
}
