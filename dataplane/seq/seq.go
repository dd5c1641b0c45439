package seq

// Value is a TCP sequence (or acknowledgment) number. Its methods compare and
// move values modulo 2^32.
type Value uint32

// LessThan reports whether v is strictly before w in sequence space.
func (v Value) LessThan(w Value) bool {
	return int32(v-w) < 0
}

// LessThanEq reports whether v is before or equal to w in sequence space.
func (v Value) LessThanEq(w Value) bool {
	return int32(v-w) <= 0
}

// GreaterThan reports whether v is strictly after w in sequence space.
func (v Value) GreaterThan(w Value) bool {
	return int32(v-w) > 0
}

// GreaterThanEq reports whether v is after or equal to w in sequence space.
func (v Value) GreaterThanEq(w Value) bool {
	return int32(v-w) >= 0
}

// Add returns v advanced by n, wrapping around at 2^32.
func (v Value) Add(n uint32) Value {
	return v + Value(n)
}

// Sub returns the forward distance from w to v, that is the number n such
// that w.Add(n) == v. It is meaningful when w is at or before v.
func (v Value) Sub(w Value) uint32 {
	return uint32(v - w)
}

// InRange reports whether a <= v < b in sequence space. The range is taken
// forward from a, so an empty range (a == b) contains nothing and the test
// stays correct when the range straddles 2^32.
func (v Value) InRange(a, b Value) bool {
	// Both distances are measured forward from a, which turns the circular
	// comparison into an ordinary unsigned one.
	return v.Sub(a) < b.Sub(a)
}

// Max returns whichever of a and b is later in sequence space.
func Max(a, b Value) Value {
	if a.GreaterThan(b) {
		return a
	}
	return b
}

// Min returns whichever of a and b is earlier in sequence space.
func Min(a, b Value) Value {
	if a.LessThan(b) {
		return a
	}
	return b
}
