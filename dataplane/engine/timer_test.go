package engine

import (
	"math/rand/v2"
	"slices"
	"testing"
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
