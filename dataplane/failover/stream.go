package failover

import "github.com/ftbridge/ftbridge/dataplane/seq"

// stream holds server output bytes in view sequence space, [base, end).
//
// It is a slice with a moving start: trimming advances off and the live bytes
// are copied down once the dead prefix is larger than the live part, which
// keeps appends and trims amortised O(1) without a ring's wrap cases.
type stream struct {
	buf []byte
	// off is where the live bytes start in buf. 32 bits are plenty (a
	// stream holds at most MaxHold or LogMax bytes) and make the struct
	// 32 bytes instead of 40: a connection has two.
	off  int32
	base seq.Value
}

func (s *stream) reset(base seq.Value) {
	s.base = base
	s.buf = s.buf[:0]
	s.off = 0
}

// len returns the number of bytes held.
func (s *stream) len() int { return len(s.buf) - int(s.off) }

// end returns the sequence number just past the last byte held.
func (s *stream) end() seq.Value { return s.base.Add(uint32(s.len())) }

// slice returns the held bytes [from, to); both must lie within [base, end].
func (s *stream) slice(from, to seq.Value) []byte {
	i := int(s.off) + int(from.Sub(s.base))
	j := int(s.off) + int(to.Sub(s.base))
	return s.buf[i:j]
}

// append adds b at end.
func (s *stream) append(b []byte) {
	if off := int(s.off); off > 0 && off >= len(s.buf)-off && len(s.buf)+len(b) > cap(s.buf) {
		n := copy(s.buf, s.buf[s.off:])
		s.buf = s.buf[:n]
		s.off = 0
	}
	s.buf = append(s.buf, b...)
}

// trim drops the bytes before to (no-op if to <= base).
func (s *stream) trim(to seq.Value) {
	if !to.GreaterThan(s.base) {
		return
	}
	n := int(to.Sub(s.base))
	if n >= s.len() {
		// Emptied: keep the array. A bulk flow empties its buffer on
		// many ACKs and would otherwise reallocate (and copy) up to its
		// whole window every round; the array goes with the connection
		// (or with release, for one that goes quiet).
		s.base = s.end()
		s.buf = s.buf[:0]
		s.off = 0
		return
	}
	s.off += int32(n)
	s.base = to
}

// overwrite replaces held bytes from at with b (b must fit within end).
func (s *stream) overwrite(at seq.Value, b []byte) {
	i := int(s.off) + int(at.Sub(s.base))
	copy(s.buf[i:], b)
}

// release gives the array back to the heap if nothing is held.
func (s *stream) release() {
	if s.len() == 0 {
		s.buf, s.off = nil, 0
	}
}
