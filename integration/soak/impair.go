package soak

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ftbridge/ftbridge/integration/impair"
	"github.com/ftbridge/ftbridge/integration/lab"
)

// Impairment is a netem-like disturbance of one link, applied in both
// directions.
type Impairment struct {
	// Kind is "loss", "duplicate", "reorder" or "delay".
	Kind string `json:"kind"`
	// Prob is the loss, duplication or reorder probability (0..1).
	Prob float64 `json:"prob,omitempty"`
	// Delay and Jitter are the added latency (reorder and delay).
	Delay  time.Duration `json:"delay_ns,omitempty"`
	Jitter time.Duration `json:"jitter_ns,omitempty"`
}

// String describes the impairment in netem's words.
func (im Impairment) String() string {
	pct := func(p float64) string { return fmt.Sprintf("%.3g%%", p*100) }
	ms := func(d time.Duration) string { return fmt.Sprintf("%dms", d.Milliseconds()) }
	var a []string
	switch im.Kind {
	case "loss":
		a = []string{"loss", pct(im.Prob)}
	case "duplicate":
		a = []string{"duplicate", pct(im.Prob)}
	case "reorder":
		a = []string{"delay", ms(im.Delay), "reorder", pct(im.Prob)}
	default:
		a = []string{"delay", ms(im.Delay)}
		if im.Jitter > 0 {
			a = append(a, ms(im.Jitter))
		}
	}
	return strings.Join(a, " ")
}

// Spec is the impair package's equivalent of im, for both directions.
func (im Impairment) Spec(seed uint64) impair.Spec {
	s := impair.Spec{Dir: impair.Both, Seed: seed}
	switch im.Kind {
	case "loss":
		s.Loss = im.Prob
	case "duplicate":
		s.Duplicate = im.Prob
	case "reorder":
		s.Reorder, s.Delay = im.Prob, im.Delay
	default:
		s.Delay, s.Jitter = im.Delay, im.Jitter
	}
	return s
}

// Link is one cable of the lab, named by its box port ("up0", "rp0", ...).
type Link struct {
	// Name is how reports call it ("client" or a replica's name).
	Name string
	// Port is the box port the cable ends at.
	Port string
}

// Impairer applies impairments through the lab's impairment points
// (package integration/impair: a userspace forwarder between each host and
// its box port, the stand-in for netem, which the lab VM's kernel lacks).
// The Bridge must have been built with BridgeOptions.Impaired.
type Impairer struct {
	l    *lab.Lab
	seed uint64

	mu sync.Mutex
	n  uint64
}

// NewImpairer returns an impairer for l; seed makes its decisions
// repeatable.
func NewImpairer(l *lab.Lab, seed uint64) *Impairer {
	return &Impairer{l: l, seed: seed}
}

// Method says how impairments are applied, for reports.
func (p *Impairer) Method() string {
	return "the lab's userspace impairment forwarder (integration/impair) on every link"
}

// Apply impairs link and returns the function that clears it again.
func (p *Impairer) Apply(link Link, im Impairment) (undo func() error, err error) {
	p.mu.Lock()
	p.n++
	seed := p.seed*1000 + p.n
	p.mu.Unlock()
	if err := p.l.Impair(link.Port, im.Spec(seed)); err != nil {
		return nil, err
	}
	return func() error { return p.l.ClearImpair(link.Port) }, nil
}
