package impair

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Direction selects which direction(s) of a link a Spec applies to. The
// names are relative to the box: a link joins a host (the client or a
// replica) to a box port.
type Direction int

const (
	// Both applies the spec to both directions.
	Both Direction = iota
	// ToBox is host → box: the client's requests on the client link, a
	// replica's responses on a replica link.
	ToBox
	// FromBox is box → host.
	FromBox
)

// String returns "both", "to-box" or "from-box".
func (d Direction) String() string {
	switch d {
	case Both:
		return "both"
	case ToBox:
		return "to-box"
	case FromBox:
		return "from-box"
	}
	return "Direction(" + strconv.Itoa(int(d)) + ")"
}

// index maps ToBox and FromBox to 0 and 1; Stats and the forwarder keep
// their per-direction state in [2] arrays in that order.
func (d Direction) index() int { return int(d) - 1 }

// dirs lists the directions d covers.
func (d Direction) dirs() []Direction {
	if d == Both {
		return []Direction{ToBox, FromBox}
	}
	return []Direction{d}
}

// Defaults and bounds of a Spec.
const (
	// DefaultLimit is the queue bound, in frames per direction, when
	// Spec.Limit is 0 (netem's default too).
	DefaultLimit = 1000
	// MaxLimit bounds Spec.Limit.
	MaxLimit = 100000
	// QueueBytes bounds the bytes queued per direction whatever the frame
	// limit, so that a queue of 64 KiB GSO super-frames cannot eat the
	// machine's memory.
	QueueBytes = 32 << 20
	// DefaultReorderGap is the number of later frames a held-back frame
	// lets pass when Spec.ReorderGap is 0.
	DefaultReorderGap = 3
	// MaxReorderGap bounds Spec.ReorderGap.
	MaxReorderGap = 1000
	// ReorderHold is how long past its due time a held-back frame waits
	// for later frames to overtake it before it goes out anyway, so that a
	// frame on a link that falls quiet is late but never lost.
	ReorderHold = 10 * time.Millisecond
	// MaxDelay bounds Spec.Delay and Spec.Jitter.
	MaxDelay = 10 * time.Second
	// DefaultSeed seeds the random decisions when Spec.Seed is 0, so that
	// runs are reproducible unless a test asks for another sequence.
	DefaultSeed = 1
)

// Spec is the impairment of one or both directions of a link. The zero
// Spec (with Dir Both) forwards every frame untouched, at once.
//
// For each frame, in this order: it is lost with probability Loss;
// otherwise it is duplicated with probability Duplicate; each copy then
// waits for the link to be free at RateBps (serialisation), then Delay plus
// a uniform jitter in [-Jitter, +Jitter] (never below zero); with
// probability Reorder it is held back until ReorderGap later frames of the
// same direction have been sent. Apart from reordering, frames leave in the
// order they arrived: a frame whose jittered time falls before its
// predecessor's leaves right after it.
//
// On veths the kernel hands over TCP GSO super-frames of up to 64 KiB.
// While Loss, Duplicate or Reorder is set they are split into the MSS-sized
// segments a wire would carry (Counters.Segmented), so those decisions hit
// packets rather than bursts of up to 45 of them; delay and rate act on
// super-frames whole (the rate counting every segment's headers). Other
// GSO frames (UDP) are never split.
type Spec struct {
	// Dir selects the direction(s) this spec sets; the other direction
	// keeps whatever spec it had.
	Dir Direction
	// Loss is the probability, 0..1, that a frame is dropped.
	Loss float64
	// Duplicate is the probability, 0..1, that a frame is sent twice.
	Duplicate float64
	// Reorder is the probability, 0..1, that a frame is held back while
	// ReorderGap later frames pass it.
	Reorder float64
	// ReorderGap is how many later frames overtake a held-back frame;
	// 0 means DefaultReorderGap. A held frame leaves at most ReorderHold
	// after its due time even if fewer frames follow.
	ReorderGap int
	// Delay is added to every frame.
	Delay time.Duration
	// Jitter spreads Delay uniformly over [Delay-Jitter, Delay+Jitter].
	Jitter time.Duration
	// RateBps limits the direction to this many bits per second of frame
	// bytes (Ethernet header and payload, counting the headers of every
	// segment of a GSO super-frame); 0 means unlimited.
	RateBps int64
	// Limit bounds the frames waiting in the direction's queue (delayed,
	// rate-limited or held back); a frame beyond it is dropped and counted
	// as Overflow, as a full router buffer would. 0 means DefaultLimit.
	// Split super-frames count as their segments, so with Delay and a
	// per-frame decision together the default holds about 1.5 MB: a bulk
	// transfer faster than 1.5 MB per Delay overflows it. The queue also
	// never holds more than QueueBytes.
	Limit int
	// Seed seeds the direction's random decisions; 0 means DefaultSeed.
	// Setting a spec restarts the sequence, so the same spec over the same
	// frames makes the same decisions.
	Seed uint64
}

// IsZero reports whether s forwards frames untouched (Dir, Limit and Seed
// do not matter).
func (s Spec) IsZero() bool {
	return s.Loss == 0 && s.Duplicate == 0 && s.Reorder == 0 && s.Delay == 0 && s.Jitter == 0 && s.RateBps == 0
}

// Validate reports the first out-of-range field.
func (s Spec) Validate() error {
	if s.Dir < Both || s.Dir > FromBox {
		return fmt.Errorf("impair: direction %d out of range", int(s.Dir))
	}
	for _, p := range []struct {
		name string
		v    float64
	}{{"loss", s.Loss}, {"duplicate", s.Duplicate}, {"reorder", s.Reorder}} {
		// The negated form also rejects NaN.
		if !(p.v >= 0 && p.v <= 1) {
			return fmt.Errorf("impair: %s probability %v not in [0, 1]", p.name, p.v)
		}
	}
	if s.Delay < 0 || s.Delay > MaxDelay {
		return fmt.Errorf("impair: delay %v not in [0, %v]", s.Delay, MaxDelay)
	}
	if s.Jitter < 0 || s.Jitter > MaxDelay {
		return fmt.Errorf("impair: jitter %v not in [0, %v]", s.Jitter, MaxDelay)
	}
	if s.RateBps < 0 {
		return fmt.Errorf("impair: negative rate %d", s.RateBps)
	}
	if s.Limit < 0 || s.Limit > MaxLimit {
		return fmt.Errorf("impair: limit %d not in [0, %d]", s.Limit, MaxLimit)
	}
	if s.ReorderGap < 0 || s.ReorderGap > MaxReorderGap {
		return fmt.Errorf("impair: reorder gap %d not in [0, %d]", s.ReorderGap, MaxReorderGap)
	}
	return nil
}

// String describes s compactly, e.g. "to-box loss=5% delay=20ms±5ms", for
// logs.
func (s Spec) String() string {
	parts := []string{s.Dir.String()}
	pct := func(name string, p float64) {
		if p != 0 {
			parts = append(parts, name+"="+strconv.FormatFloat(p*100, 'g', -1, 64)+"%")
		}
	}
	pct("loss", s.Loss)
	pct("dup", s.Duplicate)
	if s.Reorder != 0 {
		pct("reorder", s.Reorder)
		parts = append(parts, "gap="+strconv.Itoa(s.gap()))
	}
	if s.Delay != 0 || s.Jitter != 0 {
		d := "delay=" + s.Delay.String()
		if s.Jitter != 0 {
			d += "±" + s.Jitter.String()
		}
		parts = append(parts, d)
	}
	if s.RateBps != 0 {
		parts = append(parts, "rate="+strconv.FormatInt(s.RateBps, 10)+"bit/s")
	}
	if s.IsZero() {
		parts = append(parts, "clear")
	}
	if s.Limit != 0 {
		parts = append(parts, "limit="+strconv.Itoa(s.Limit))
	}
	if s.Seed != 0 {
		parts = append(parts, "seed="+strconv.FormatUint(s.Seed, 10))
	}
	return strings.Join(parts, " ")
}

func (s Spec) gap() int {
	if s.ReorderGap == 0 {
		return DefaultReorderGap
	}
	return s.ReorderGap
}

func (s Spec) limit() int {
	if s.Limit == 0 {
		return DefaultLimit
	}
	return s.Limit
}

func (s Spec) seed() uint64 {
	if s.Seed == 0 {
		return DefaultSeed
	}
	return s.Seed
}

// specJSON is the wire form: durations as Go duration strings ("20ms") and
// the direction by name, so that a spec is readable in logs and writable by
// hand on the command line.
type specJSON struct {
	Dir        string  `json:"dir,omitempty"`
	Loss       float64 `json:"loss,omitempty"`
	Duplicate  float64 `json:"duplicate,omitempty"`
	Reorder    float64 `json:"reorder,omitempty"`
	ReorderGap int     `json:"reorder_gap,omitempty"`
	Delay      string  `json:"delay,omitempty"`
	Jitter     string  `json:"jitter,omitempty"`
	RateBps    int64   `json:"rate_bps,omitempty"`
	Limit      int     `json:"limit,omitempty"`
	Seed       uint64  `json:"seed,omitempty"`
}

// MarshalJSON encodes s with durations as strings such as "20ms".
func (s Spec) MarshalJSON() ([]byte, error) {
	j := specJSON{
		Loss: s.Loss, Duplicate: s.Duplicate, Reorder: s.Reorder, ReorderGap: s.ReorderGap,
		RateBps: s.RateBps, Limit: s.Limit, Seed: s.Seed,
	}
	if s.Dir != Both {
		j.Dir = s.Dir.String()
	}
	if s.Delay != 0 {
		j.Delay = s.Delay.String()
	}
	if s.Jitter != 0 {
		j.Jitter = s.Jitter.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes the form MarshalJSON writes; unknown fields are
// errors, so that a misspelt impairment cannot silently do nothing.
func (s *Spec) UnmarshalJSON(b []byte) error {
	var j specJSON
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return fmt.Errorf("impair: spec: %w", err)
	}
	out := Spec{
		Loss: j.Loss, Duplicate: j.Duplicate, Reorder: j.Reorder, ReorderGap: j.ReorderGap,
		RateBps: j.RateBps, Limit: j.Limit, Seed: j.Seed,
	}
	switch j.Dir {
	case "", "both":
		out.Dir = Both
	case "to-box":
		out.Dir = ToBox
	case "from-box":
		out.Dir = FromBox
	default:
		return fmt.Errorf("impair: spec: unknown direction %q (want both, to-box or from-box)", j.Dir)
	}
	var err error
	if out.Delay, err = parseDuration("delay", j.Delay); err != nil {
		return err
	}
	if out.Jitter, err = parseDuration("jitter", j.Jitter); err != nil {
		return err
	}
	*s = out
	return nil
}

func parseDuration(name, v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("impair: spec: %s: %w", name, err)
	}
	return d, nil
}

// Counters count what one direction of a forwarder did with its frames.
type Counters struct {
	// Received counts frames read from the direction's input interface, a
	// split super-frame (see Segmented) counting as its segments.
	Received uint64 `json:"received"`
	// Segmented counts TCP GSO super-frames split into segments before
	// Loss, Duplicate or Reorder decided about them.
	Segmented uint64 `json:"segmented"`
	// Forwarded counts frames written to the output interface, duplicates
	// included.
	Forwarded uint64 `json:"forwarded"`
	// Bytes counts the frame bytes of Forwarded.
	Bytes uint64 `json:"bytes"`
	// Lost counts frames dropped by Spec.Loss.
	Lost uint64 `json:"lost"`
	// Duplicated counts the extra copies made by Spec.Duplicate.
	Duplicated uint64 `json:"duplicated"`
	// Reordered counts frames that left after at least one frame that
	// arrived after them.
	Reordered uint64 `json:"reordered"`
	// Delayed counts frames that waited in the queue (Delay, Jitter,
	// RateBps, or queued behind such frames) instead of leaving at once.
	Delayed uint64 `json:"delayed"`
	// Overflow counts frames dropped because the queue was full.
	Overflow uint64 `json:"overflow"`
	// Errors counts frames lost to the host: truncated on read, or refused
	// on write (link down, transmit backpressure, oversized).
	Errors uint64 `json:"errors"`
}

// Add returns the field-wise sum of c and o.
func (c Counters) Add(o Counters) Counters {
	return Counters{
		Received: c.Received + o.Received, Segmented: c.Segmented + o.Segmented, Forwarded: c.Forwarded + o.Forwarded, Bytes: c.Bytes + o.Bytes,
		Lost: c.Lost + o.Lost, Duplicated: c.Duplicated + o.Duplicated, Reordered: c.Reordered + o.Reordered,
		Delayed: c.Delayed + o.Delayed, Overflow: c.Overflow + o.Overflow, Errors: c.Errors + o.Errors,
	}
}

// Sub returns the field-wise difference c - o, e.g. the counters of one
// transfer from snapshots taken before and after it.
func (c Counters) Sub(o Counters) Counters {
	return Counters{
		Received: c.Received - o.Received, Segmented: c.Segmented - o.Segmented, Forwarded: c.Forwarded - o.Forwarded,
		Bytes: c.Bytes - o.Bytes, Lost: c.Lost - o.Lost, Duplicated: c.Duplicated - o.Duplicated,
		Reordered: c.Reordered - o.Reordered, Delayed: c.Delayed - o.Delayed, Overflow: c.Overflow - o.Overflow,
		Errors: c.Errors - o.Errors,
	}
}

// Stats are a forwarder's counters and current specs, per direction.
type Stats struct {
	ToBox   Counters `json:"to_box"`
	FromBox Counters `json:"from_box"`
	// Specs are the specs in force, ToBox first; each has Dir set to its
	// own direction.
	Specs [2]Spec `json:"specs"`
}

// Total returns the sum of both directions' counters.
func (s Stats) Total() Counters { return s.ToBox.Add(s.FromBox) }

// Dir returns the counters of one direction (ToBox or FromBox); Both
// returns Total.
func (s Stats) Dir(d Direction) Counters {
	switch d {
	case ToBox:
		return s.ToBox
	case FromBox:
		return s.FromBox
	}
	return s.Total()
}

// errClosed is returned by operations on a closed forwarder.
var errClosed = errors.New("impair: forwarder closed")
