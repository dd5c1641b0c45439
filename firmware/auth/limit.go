package auth

import (
	"sync"
	"time"
)

// Lockout policy: after freeFailures consecutive failures an address is
// locked out for lockBase, doubling with each further failure up to lockMax.
const (
	freeFailures = 5
	lockBase     = 30 * time.Second
	lockMax      = 15 * time.Minute
	// maxTracked bounds the table so that a spray of addresses cannot grow
	// it without limit.
	maxTracked  = 4096
	forgetAfter = time.Hour
)

// Limiter counts failed password attempts per client address and locks out
// addresses that keep failing. Per address rather than per account: a
// per-account lockout would let anyone lock the admin out.
type Limiter struct {
	mu  sync.Mutex
	m   map[string]*attempts
	now func() time.Time
}

type attempts struct {
	fails int
	until time.Time
	last  time.Time
}

// NewLimiter returns an empty limiter.
func NewLimiter() *Limiter {
	return &Limiter{m: make(map[string]*attempts), now: time.Now}
}

// SetClock replaces the limiter's clock (tests).
func (l *Limiter) SetClock(now func() time.Time) {
	l.mu.Lock()
	l.now = now
	l.mu.Unlock()
}

// Allow reports whether addr may try a password now, and if not, how long
// until it may.
func (l *Limiter) Allow(addr string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a, ok := l.m[addr]
	if !ok {
		return true, 0
	}
	if wait := a.until.Sub(l.now()); wait > 0 {
		return false, wait
	}
	return true, 0
}

// Fail records a failed attempt. It returns the lockout it started, or 0.
func (l *Limiter) Fail(addr string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	a, ok := l.m[addr]
	if !ok {
		l.makeRoom(now)
		a = &attempts{}
		l.m[addr] = a
	}
	a.fails++
	a.last = now
	if a.fails < freeFailures {
		return 0
	}
	d := lockBase
	for i := freeFailures; i < a.fails && d < lockMax; i++ {
		d *= 2
	}
	d = min(d, lockMax)
	a.until = now.Add(d)
	return d
}

// Succeed forgets addr's failures.
func (l *Limiter) Succeed(addr string) {
	l.mu.Lock()
	delete(l.m, addr)
	l.mu.Unlock()
}

// makeRoom drops forgotten entries, and the stalest one if still full.
func (l *Limiter) makeRoom(now time.Time) {
	if len(l.m) < maxTracked {
		return
	}
	var stalest string
	var st time.Time
	for k, a := range l.m {
		if now.Sub(a.last) > forgetAfter && now.After(a.until) {
			delete(l.m, k)
			continue
		}
		if stalest == "" || a.last.Before(st) {
			stalest, st = k, a.last
		}
	}
	if len(l.m) >= maxTracked {
		delete(l.m, stalest)
	}
}
