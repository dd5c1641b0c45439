//go:build linux

package link

import (
	"testing"
	"time"
)

// A port whose socket queue overflows reports the frames the kernel
// dropped, and each drop once.
func TestReadKernelDrops(t *testing.T) {
	// A small receive buffer on a, which nobody reads.
	_, a, b := pair(t, &Options{RecvBuf: 64 << 10}, nil)
	if n, err := a.ReadKernelDrops(); err != nil || n != 0 {
		t.Fatalf("ReadKernelDrops before any traffic = %d, %v; want 0, nil", n, err)
	}
	const n = 2000
	frames := make([][]byte, 0, 64)
	sent := 0
	for sent < n {
		frames = frames[:0]
		for i := 0; i < 64 && sent+len(frames) < n; i++ {
			frames = append(frames, testFrame(a.MAC(), b.MAC(), 'D', uint16(sent+i), 1000))
		}
		k, err := b.WriteBatch(frames)
		sent += k
		if err != nil {
			t.Fatalf("WriteBatch after %d frames: %v", sent, err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	drops, err := a.ReadKernelDrops()
	if err != nil {
		t.Fatal(err)
	}
	// 2000 frames of 1 KiB cannot fit in 64 KiB (the kernel doubles it,
	// and counts each frame's overhead): most were dropped.
	if drops < n/2 || drops > n {
		t.Errorf("kernel drops = %d for %d frames into a 64 KiB queue nobody reads", drops, n)
	}
	if again, err := a.ReadKernelDrops(); err != nil || again != 0 {
		t.Errorf("second ReadKernelDrops = %d, %v; want 0 (each drop reported once)", again, err)
	}
}
