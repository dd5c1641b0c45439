package labsvc

import (
	"crypto/sha256"
	"encoding/binary"
	"io"
)

// word is splitmix64 applied to a counter: word k of the stream depends only
// on (seed, k), so any byte can be produced at any offset without state, and
// chunking, pacing or restarting can never change the bytes.
func word(seed, k uint64) uint64 {
	z := seed + (k+1)*0x9E3779B97F4A7C15
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// fill writes the stream bytes for offsets off .. off+len(p)-1 into p.
func fill(p []byte, seed uint64, off int64) {
	var w [8]byte
	for len(p) > 0 {
		k, in := uint64(off)/8, int(off%8)
		if in == 0 && len(p) >= 8 {
			// Fast path: whole little-endian words.
			binary.LittleEndian.PutUint64(p, word(seed, k))
			p, off = p[8:], off+8
			continue
		}
		binary.LittleEndian.PutUint64(w[:], word(seed, k))
		c := copy(p, w[in:])
		p, off = p[c:], off+int64(c)
	}
}

type streamReader struct {
	seed   uint64
	off, n int64
}

func (s *streamReader) Read(p []byte) (int, error) {
	if s.off >= s.n {
		return 0, io.EOF
	}
	if rem := s.n - s.off; int64(len(p)) > rem {
		p = p[:rem]
	}
	fill(p, s.seed, s.off)
	s.off += int64(len(p))
	return len(p), nil
}

// Stream returns the exact n bytes that GEN and PACE with this seed
// produce. Stream(m, seed) is a prefix of Stream(n, seed) for m <= n.
func Stream(n int64, seed uint64) io.Reader {
	if n < 0 {
		n = 0
	}
	return &streamReader{seed: seed, n: n}
}

// StreamHash is the SHA-256 of Stream(n, seed).
func StreamHash(n int64, seed uint64) [32]byte {
	h := sha256.New()
	buf := make([]byte, 64<<10)
	_, _ = io.CopyBuffer(h, Stream(n, seed), buf) // neither side can fail
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}
