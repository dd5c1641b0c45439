package integration_test

// Impaired links (tc netem loss, reordering, delay with jitter) on the
// client's link and on a replica's link, with and without a failover during
// a paced download and an upload.

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ftbridge/ftbridge/integration/impair"
	"github.com/ftbridge/ftbridge/integration/lab"
	"github.com/ftbridge/ftbridge/integration/labsvc"
)

// impairment is one netem setting, and the same for the lab's userspace
// impairer (integration/impair), used where the kernel has no netem.
type impairment struct {
	name string
	args []string
	spec impair.Spec
	// happened reports whether the impairer's counters show the impairment.
	happened func(c impair.Counters) bool
}

var impairments = []impairment{
	{"loss2", []string{"loss", "2%"}, impair.Spec{Loss: 0.02},
		func(c impair.Counters) bool { return c.Lost > 0 }},
	{"reorder25", []string{"delay", "5ms", "reorder", "25%", "50%"}, impair.Spec{Delay: 5 * time.Millisecond, Reorder: 0.25},
		func(c impair.Counters) bool { return c.Reordered > 0 }},
	{"delay20-jitter", []string{"delay", "20ms", "5ms", "distribution", "normal"}, impair.Spec{Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond},
		func(c impair.Counters) bool { return c.Delayed > 0 }},
}

// impairedLink names one lab link: by its box port (for the impairer) and
// by its two ends (netem goes on both, so both directions are impaired).
type impairedLink struct {
	name string
	port string                         // the link's box port
	ends func(b *bridgeLab) [][2]string // {namespace, device}
}

var impairedLinks = []impairedLink{
	{"client", "up0", func(b *bridgeLab) [][2]string {
		return [][2]string{{b.ClientNS, "eth0"}, {b.BoxNS, b.Uplink}}
	}},
	// The primary's link: impaired until the failover.
	{"replica-a", "rp0", func(b *bridgeLab) [][2]string {
		return [][2]string{{b.ReplicaNS[0], "eth0"}, {b.BoxNS, b.ReplicaPorts[0]}}
	}},
	// The backup's link: it lags behind the primary, then carries the
	// stream alone after the failover.
	{"replica-b", "rp1", func(b *bridgeLab) [][2]string {
		return [][2]string{{b.ReplicaNS[1], "eth0"}, {b.BoxNS, b.ReplicaPorts[1]}}
	}},
}

// kernelNetem says whether tc netem works here, probed once in a scratch
// lab.
var kernelNetem struct {
	once sync.Once
	ok   bool
	err  error
}

func haveNetem(t *testing.T) bool {
	t.Helper()
	kernelNetem.once.Do(func() {
		l, err := lab.New(lab.Options{Replicas: 1})
		if err != nil {
			kernelNetem.err = err
			return
		}
		defer l.Close()
		err = l.Netem(l.ClientNS, "eth0", "delay", "1ms")
		switch {
		case err == nil:
			kernelNetem.ok = true
		case !errors.Is(err, errors.ErrUnsupported):
			kernelNetem.err = err
		}
	})
	if kernelNetem.err != nil {
		t.Fatal(kernelNetem.err)
	}
	return kernelNetem.ok
}

// applyNetem impairs both directions of a link: with netem on both ends,
// or, in a lab built with the link impaired, with the lab's impairer.
func (b *bridgeLab) applyNetem(l impairedLink, im impairment, netem bool) {
	b.t.Helper()
	if !netem {
		if err := b.Impair(l.port, im.spec); err != nil {
			b.t.Fatal(err)
		}
		return
	}
	for _, e := range l.ends(b) {
		if err := b.Netem(e[0], e[1], im.args...); err != nil {
			b.t.Fatal(err)
		}
	}
}

func TestNetem(t *testing.T) {
	needLab(t)
	for _, im := range impairments {
		for _, l := range impairedLinks {
			for _, fault := range []string{"none", "kill9"} {
				for _, dir := range []string{"download", "upload"} {
					name := fmt.Sprintf("%s/%s/%s/%s", im.name, l.name, fault, dir)
					t.Run(name, func(t *testing.T) {
						testNetemCase(t, im, l, fault == "kill9", dir == "download")
					})
				}
			}
		}
	}
}

func testNetemCase(t *testing.T, im impairment, l impairedLink, kill, download bool) {
	netem := haveNetem(t)
	var b *bridgeLab
	if netem {
		b = newBridgeLab(t, labOptions{replicas: 2})
	} else {
		t.Logf("no netem in this kernel: impairing %s with the lab's impairer (%v)", l.port, im.spec)
		b = newBridgeLab(t, labOptions{replicas: 2, impaired: []string{l.port}})
	}
	b.logEventsOnFailure()
	b.waitHealthy(7000, "a", "b")
	// Impair after the box found the replicas healthy, with the default
	// health settings: a replica whose link is merely impaired must stay
	// in service.
	b.applyNetem(l, im, netem)
	guard := b.guardResets()
	c := b.dial(7000)
	c.SetDeadline(time.Now().Add(60 * time.Second))
	var injected <-chan error
	if kill {
		injected = b.after(300*time.Millisecond, func() error { return b.server(0).Signal(syscall.SIGKILL) })
	}
	const size = 2 << 20
	var res labsvc.Result
	var err error
	if download {
		res, err = labsvc.Download(c, size, 21, &labsvc.Pace{Chunk: 32 << 10, Delay: 10 * time.Millisecond})
		if err == nil && res.SHA256 != labsvc.StreamHash(size, 21) {
			err = errors.New("download hash mismatch")
		}
	} else {
		res, err = labsvc.Upload(c, &throttled{labsvc.Stream(size, 22), 32 << 10, 10 * time.Millisecond}, size)
		if err == nil && res.SHA256 != labsvc.StreamHash(size, 22) {
			err = errors.New("upload hash mismatch")
		}
	}
	if err != nil {
		t.Fatalf("%v (after %d bytes, %v)", err, res.Bytes, res.Duration.Round(time.Millisecond))
	}
	if injected != nil {
		if err := <-injected; err != nil {
			t.Fatal(err)
		}
	}
	if res.Duration < 400*time.Millisecond && kill {
		t.Errorf("the transfer took %v: over before the kill at 300ms", res.Duration)
	}
	kind := "netem-" + im.name + "-" + l.name
	if kill {
		kind += "-kill9"
	}
	if download {
		kind += "-download"
	} else {
		kind += "-upload"
	}
	logStall(t, kind, res.MaxGap)
	t.Logf("transfer of %d bytes took %v", size, res.Duration.Round(time.Millisecond))
	if !netem {
		st, err := b.ImpairStats(l.port)
		if err != nil {
			t.Fatal(err)
		}
		tot := st.Total()
		t.Logf("impairer on %s: %+v", l.port, tot)
		if !im.happened(tot) {
			t.Errorf("the impairer's counters do not show %s: %+v", im.name, tot)
		}
	}
	if last, _, err := labsvc.Incr(c, 3); err != nil || last != 3 {
		t.Fatalf("incr after the transfer: %d, %v", last, err)
	}
	// An impaired link alone must not take a replica out of the
	// connection; after the kill, b alone carries it.
	if kill {
		b.checkMembers(c, "b")
		if b.findLog(5*time.Second, "failover", "from=a") == "" {
			t.Errorf("no failover from a after the kill: a had left the connection before it: %q",
				findLine(b.daemon.Log(), "member-removed", "replica=a"))
		}
	} else {
		b.checkMembers(c, "a", "b")
	}
	if err := labsvc.Quit(c); err != nil {
		t.Fatal(err)
	}
	if s := b.snapshot(); s.Divergences != 0 {
		t.Errorf("%d divergence(s)", s.Divergences)
	}
	guard.check()
	b.daemonAlive()
}
