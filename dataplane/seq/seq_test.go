package seq

import (
	"math/rand"
	"testing"
)

func TestCompare(t *testing.T) {
	tests := []struct {
		name string
		v, w Value
		// less is the expected v.LessThan(w); eq whether they are equal.
		less, eq bool
	}{
		{"small", 1, 2, true, false},
		{"equal", 7, 7, false, true},
		{"equal at max", 0xFFFFFFFF, 0xFFFFFFFF, false, true},
		{"reverse", 2, 1, false, false},
		{"wrap before", 0xFFFFFFF0, 0x10, true, false},
		{"wrap after", 0x10, 0xFFFFFFF0, false, false},
		{"max before zero", 0xFFFFFFFF, 0, true, false},
		{"zero after max", 0, 0xFFFFFFFF, false, false},
		{"half window minus one", 0, 0x7FFFFFFF, true, false},
		{"half window minus one wrapped", 0x80000000, 0xFFFFFFFF, true, false},
		{"far across wrap", 0xC0000000, 0x3FFFFFFF, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			greater := !tt.less && !tt.eq
			if got := tt.v.LessThan(tt.w); got != tt.less {
				t.Errorf("%#x.LessThan(%#x) = %v, want %v", tt.v, tt.w, got, tt.less)
			}
			if got := tt.v.LessThanEq(tt.w); got != (tt.less || tt.eq) {
				t.Errorf("%#x.LessThanEq(%#x) = %v, want %v", tt.v, tt.w, got, tt.less || tt.eq)
			}
			if got := tt.v.GreaterThan(tt.w); got != greater {
				t.Errorf("%#x.GreaterThan(%#x) = %v, want %v", tt.v, tt.w, got, greater)
			}
			if got := tt.v.GreaterThanEq(tt.w); got != (greater || tt.eq) {
				t.Errorf("%#x.GreaterThanEq(%#x) = %v, want %v", tt.v, tt.w, got, greater || tt.eq)
			}
			// Comparisons must be antisymmetric.
			if !tt.eq && tt.v.LessThan(tt.w) == tt.w.LessThan(tt.v) {
				t.Errorf("LessThan not antisymmetric for %#x, %#x", tt.v, tt.w)
			}
			wantMin, wantMax := tt.w, tt.v
			if tt.less {
				wantMin, wantMax = tt.v, tt.w
			}
			if got := Min(tt.v, tt.w); got != wantMin {
				t.Errorf("Min(%#x, %#x) = %#x, want %#x", tt.v, tt.w, got, wantMin)
			}
			if got := Max(tt.v, tt.w); got != wantMax {
				t.Errorf("Max(%#x, %#x) = %#x, want %#x", tt.v, tt.w, got, wantMax)
			}
		})
	}
}

func TestAddSub(t *testing.T) {
	tests := []struct {
		v    Value
		n    uint32
		want Value
	}{
		{0, 0, 0},
		{1, 1, 2},
		{0xFFFFFFF0, 0x20, 0x10},
		{0xFFFFFFFF, 1, 0},
		{0x80000000, 0x80000000, 0},
	}
	for _, tt := range tests {
		got := tt.v.Add(tt.n)
		if got != tt.want {
			t.Errorf("%#x.Add(%#x) = %#x, want %#x", tt.v, tt.n, got, tt.want)
		}
		if d := got.Sub(tt.v); d != tt.n {
			t.Errorf("%#x.Sub(%#x) = %#x, want %#x", got, tt.v, d, tt.n)
		}
		if tt.n > 0 && tt.n < 1<<31 && !tt.v.LessThan(got) {
			t.Errorf("%#x should be before %#x after adding %#x", tt.v, got, tt.n)
		}
	}
	if d := Value(0x10).Sub(0xFFFFFFF0); d != 0x20 {
		t.Errorf("distance across wrap = %#x, want 0x20", d)
	}
}

func TestInRange(t *testing.T) {
	tests := []struct {
		v, a, b Value
		want    bool
	}{
		{5, 0, 10, true},
		{0, 0, 10, true},
		{10, 0, 10, false},
		{11, 0, 10, false},
		{0xFFFFFFFF, 0, 10, false},
		{5, 5, 5, false}, // empty range
		// Ranges straddling 2^32.
		{0xFFFFFFF0, 0xFFFFFFF0, 0x10, true},
		{0xFFFFFFFF, 0xFFFFFFF0, 0x10, true},
		{0, 0xFFFFFFF0, 0x10, true},
		{0xF, 0xFFFFFFF0, 0x10, true},
		{0x10, 0xFFFFFFF0, 0x10, false},
		{0xFFFFFFEF, 0xFFFFFFF0, 0x10, false},
		{0x80000000, 0xFFFFFFF0, 0x10, false},
	}
	for _, tt := range tests {
		if got := tt.v.InRange(tt.a, tt.b); got != tt.want {
			t.Errorf("%#x.InRange(%#x, %#x) = %v, want %v", tt.v, tt.a, tt.b, got, tt.want)
		}
	}
}

// TestRandomConsistency checks the methods against a reference model built on
// 64-bit integers: pick a base anywhere in the space, two offsets within half
// the space, and compare the offsets instead of the wrapped values.
func TestRandomConsistency(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 100000; i++ {
		base := Value(r.Uint32())
		// Offsets below 2^30 keep both values within 2^31 of each other,
		// where the ordering is well defined.
		da, db := int64(r.Int31n(1<<30)), int64(r.Int31n(1<<30))
		x, y := base.Add(uint32(da)), base.Add(uint32(db))
		if got, want := x.LessThan(y), da < db; got != want {
			t.Fatalf("%#x.LessThan(%#x) = %v, want %v", x, y, got, want)
		}
		if got, want := x.GreaterThanEq(y), da >= db; got != want {
			t.Fatalf("%#x.GreaterThanEq(%#x) = %v, want %v", x, y, got, want)
		}
		if da >= db {
			if got := x.Sub(y); int64(got) != da-db {
				t.Fatalf("%#x.Sub(%#x) = %d, want %d", x, y, got, da-db)
			}
		}
		lo, hi := min(da, db), max(da, db)
		v := int64(r.Int31n(1 << 30))
		if got, want := base.Add(uint32(v)).InRange(base.Add(uint32(lo)), base.Add(uint32(hi))), lo <= v && v < hi; got != want {
			t.Fatalf("InRange(base+%d, base+%d, base+%d) = %v, want %v (base %#x)", v, lo, hi, got, want, base)
		}
	}
}
