package engine

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/ftbridge/ftbridge/dataplane/pkt"
)

// TestTimerHeapOrder pushes and pops random deadlines, interleaved, and
// checks that every pop returns the smallest deadline left.
func TestTimerHeapOrder(t *testing.T) {
	var h timerHeap
	var ref []int64
	r := rand.New(rand.NewPCG(1, 2))
	for step := 0; step < 20000; step++ {
		if len(ref) == 0 || r.IntN(3) > 0 {
			at := r.Int64N(1000) + 1
			h.push(timerItem{at: at})
			ref = append(ref, at)
			continue
		}
		got := h.pop().at
		i := slices.Index(ref, slices.Min(ref))
		if got != ref[i] {
			t.Fatalf("step %d: pop() = %d, want the minimum %d", step, got, ref[i])
		}
		ref = slices.Delete(ref, i, i+1)
		if len(h) != len(ref) {
			t.Fatalf("step %d: heap has %d items, want %d", step, len(h), len(ref))
		}
	}
	if allocs := testing.AllocsPerRun(1000, func() { h.push(timerItem{at: 5}); h.pop() }); allocs != 0 {
		t.Errorf("push+pop: %v allocations, want 0", allocs)
	}
}

// TestTimerHeapBoundedUnderChurn: connections that open, move data and
// close leave their earlier deadlines in the heap (stale entries are
// skipped when they come due, which for the idle timeout is hours away).
// The heap must not grow with the connections a box has ever carried, nor
// keep closed connections reachable.
func TestTimerHeapBoundedUnderChurn(t *testing.T) {
	bb := newBenchBox(t, 2)
	e := bb.e
	svc := netip.AddrPortFrom(benchVIP, benchPort)
	const n = 6000
	for i := 0; i < n; i++ {
		f := bb.open(t, clientAddr(i))
		f.prepare(true, 1000)
		f.download(1000)
		rst := makeSeg(bb.cliMAC, e.vipMAC, f.client, svc, pkt.TCPFlagRst, benchCliISN+1, 0, 0)
		e.handleFrame(e.uplink, rst.b)
		bb.discard()
	}
	if len(e.conns) != 0 {
		t.Fatalf("%d connections left after every client reset", len(e.conns))
	}
	if len(e.timers) > 2*maxStaleTimers {
		t.Fatalf("timer heap holds %d entries after %d connections came and went (none open)", len(e.timers), n)
	}
	for _, it := range e.timers {
		if it.e.conn != nil {
			t.Fatal("a stale timer keeps a closed connection reachable")
		}
	}
	// The loop's periodic pass empties the heap of an idle box.
	e.now = e.now.Add(2 * kernelStatsEvery)
	e.maintain()
	if len(e.timers) != 0 {
		t.Fatalf("%d stale timers left on an idle box after the periodic pass", len(e.timers))
	}
}
