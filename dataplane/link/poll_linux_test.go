//go:build linux

package link

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pipe returns a non-blocking pipe closed at cleanup.
func pipe(t *testing.T) (r, w int) {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(p[0]); unix.Close(p[1]) })
	return p[0], p[1]
}

func newTestPoller(t *testing.T) *Poller {
	t.Helper()
	p, err := NewPoller()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestPollerReadable(t *testing.T) {
	p := newTestPoller(t)
	r1, _ := pipe(t)
	r2, w2 := pipe(t)
	if _, err := unix.Write(w2, []byte{1}); err != nil {
		t.Fatal(err)
	}
	fds := []int{r1, -1, r2}
	ready := []bool{true, true, false} // stale values must be cleared
	woken, err := p.Wait(fds, ready, time.Second)
	if err != nil || woken {
		t.Fatalf("Wait = %v, %v; want false, nil", woken, err)
	}
	if ready[0] || ready[1] || !ready[2] {
		t.Errorf("ready = %v, want only the third (written) pipe", ready)
	}
}

func TestPollerHangup(t *testing.T) {
	p := newTestPoller(t)
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	r := fds[0]
	defer unix.Close(r)
	unix.Close(fds[1])
	ready := []bool{false}
	if _, err := p.Wait([]int{r}, ready, time.Second); err != nil || !ready[0] {
		t.Errorf("Wait on a hung-up pipe: ready %v, err %v; want ready", ready[0], err)
	}
}

func TestPollerWake(t *testing.T) {
	p := newTestPoller(t)
	r, _ := pipe(t)
	go func() {
		time.Sleep(20 * time.Millisecond)
		p.Wake()
		p.Wake() // coalesces with the first
	}()
	start := time.Now()
	ready := []bool{false}
	woken, err := p.Wait([]int{r}, ready, -1)
	if err != nil || !woken || ready[0] {
		t.Fatalf("Wait = woken %v, ready %v, %v; want woken only", woken, ready[0], err)
	}
	if d := time.Since(start); d < 15*time.Millisecond {
		t.Errorf("Wait returned after %v, before Wake was called", d)
	}
	// Let the second Wake land, then check that it was absorbed: the wake-up
	// is reported once, not again by the next Wait.
	time.Sleep(10 * time.Millisecond)
	woken, err = p.Wait([]int{r}, ready, 0)
	if err != nil {
		t.Fatal(err)
	}
	if woken {
		// The second Wake raced past the first Wait's drain; it must be
		// the last report.
		if woken, _ = p.Wait([]int{r}, ready, 0); woken {
			t.Error("a pair of Wakes was reported more than twice")
		}
	}

	// A Wake before Wait is not lost.
	p.Wake()
	if woken, err := p.Wait(nil, nil, time.Second); err != nil || !woken {
		t.Errorf("Wait after an earlier Wake = %v, %v; want true", woken, err)
	}
	// And after it was reported, a later Wake still works.
	p.Wake()
	if woken, err := p.Wait(nil, nil, time.Second); err != nil || !woken {
		t.Errorf("Wait after a second Wake = %v, %v; want true", woken, err)
	}
}

func TestPollerTimeout(t *testing.T) {
	p := newTestPoller(t)
	r, _ := pipe(t)
	ready := []bool{false}
	start := time.Now()
	woken, err := p.Wait([]int{r}, ready, 50*time.Millisecond)
	d := time.Since(start)
	if err != nil || woken || ready[0] {
		t.Fatalf("Wait = woken %v, ready %v, %v; want nothing", woken, ready[0], err)
	}
	if d < 45*time.Millisecond || d > 2*time.Second {
		t.Errorf("Wait with a 50ms timeout took %v", d)
	}
	start = time.Now()
	if _, err := p.Wait([]int{r}, ready, 0); err != nil || time.Since(start) > 500*time.Millisecond {
		t.Errorf("Wait with zero timeout: %v after %v", err, time.Since(start))
	}
	if _, err := p.Wait([]int{r}, nil, 0); err == nil {
		t.Error("Wait accepted a ready slice of the wrong length")
	}
}

func TestPollerAllocs(t *testing.T) {
	p := newTestPoller(t)
	r, w := pipe(t)
	fds, ready := []int{r, w}, []bool{false, false}
	p.Wait(fds, ready, 0) // sizes the array
	if allocs := testing.AllocsPerRun(100, func() {
		p.Wake()
		if woken, err := p.Wait(fds, ready, time.Second); !woken || err != nil {
			t.Fatalf("Wait = %v, %v", woken, err)
		}
	}); allocs != 0 {
		t.Errorf("Wake+Wait: %v allocations per call, want 0", allocs)
	}
}
