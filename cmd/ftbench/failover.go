package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"slices"
	"syscall"
	"time"
)

// A failover trial: a paced download from the preferred primary (replica
// "a") of a 2-replica box, a fault injected on that replica in the middle
// of it, and the client's longest wait between two reads as the stall. The
// download is verified byte for byte; a trial counts only if the box
// reports a failover for it and the bytes are right.
const (
	paceChunk = 4096
	pacePause = time.Millisecond // ~4 MB/s: the no-fault gap is about 1 ms
	paceBytes = 4 << 20          // ~1 s per trial
	faultAt   = 300 * time.Millisecond
)

// faultKind is one way a replica fails.
type faultKind struct {
	name string
	// config is added to the daemon's configuration for this series.
	config  string
	inject  func(b *bench, t *topo) error
	restore func(b *bench, t *topo) error
	note    string
}

var faultKinds = []faultKind{
	{
		name:    "kill-9",
		inject:  func(b *bench, t *topo) error { return t.servers[0].Signal(syscall.SIGKILL) },
		restore: func(b *bench, t *topo) error { return b.restartServer(t, 0) },
		note:    "the server process on replica a is killed (its kernel closes the connection)",
	},
	{
		name:    "link-down",
		inject:  func(b *bench, t *topo) error { return t.lab.SetLink(t.lab.ReplicaNS[0], "eth0", false) },
		restore: func(b *bench, t *topo) error { return t.lab.SetLink(t.lab.ReplicaNS[0], "eth0", true) },
		note:    "replica a's interface goes down (the box's port loses carrier)",
	},
	{
		name: "sigstop",
		// A replica failed by stall stays out of service for hold_down,
		// doubling on every repeat: with the default (3 s) the series would
		// spend minutes waiting for replica a to come back. It does not
		// change how the stall is detected.
		config:  `, "health": {"hold_down": "1ms"}`,
		inject:  func(b *bench, t *topo) error { return t.servers[0].Signal(syscall.SIGSTOP) },
		restore: func(b *bench, t *topo) error { return b.restartServer(t, 0) },
		note:    "the server process on replica a is stopped (a gray failure: its kernel still ACKs)",
	},
}

// stallResult is one series of trials.
type stallResult struct {
	Kind    string
	Note    string
	Stalls  []float64 // ms, sorted
	Skipped int       // trials without a failover or with a bad stream
	Errors  []string
}

// measureFailover runs the control series (no fault) and every fault kind
// on a fresh 2-replica box.
func (b *bench) measureFailover(count int) ([]stallResult, error) {
	t, err := b.newFTB(2, 0, 0)
	if err != nil {
		return nil, err
	}
	defer t.lab.Close()
	var out []stallResult
	control := stallResult{Kind: "none (control)", Note: "no fault: the pacing gap alone"}
	for i := 0; i < min(5, count); i++ {
		gap, _, err := b.trial(t, nil)
		if err != nil {
			control.Skipped++
			control.Errors = append(control.Errors, err.Error())
			continue
		}
		control.Stalls = append(control.Stalls, gap)
	}
	slices.Sort(control.Stalls)
	out = append(out, control)
	for _, fk := range faultKinds {
		if fk.config != "" {
			if err := b.startDaemon(t, fk.config); err != nil {
				return out, err
			}
		}
		sr := stallResult{Kind: fk.name, Note: fk.note}
		deadline := time.Now().Add(b.failoverBudget)
		for len(sr.Stalls) < count && time.Now().Before(deadline) {
			gap, failedOver, err := b.trial(t, &fk)
			if rerr := fk.restore(b, t); rerr != nil {
				return out, fmt.Errorf("%s: restore: %w", fk.name, rerr)
			}
			switch {
			case err != nil:
				sr.Skipped++
				if len(sr.Errors) < 5 {
					sr.Errors = append(sr.Errors, err.Error())
				}
			case !failedOver:
				sr.Skipped++
				if len(sr.Errors) < 5 {
					sr.Errors = append(sr.Errors, "no failover reported")
				}
			default:
				sr.Stalls = append(sr.Stalls, gap)
			}
			if err := b.waitHealthy(t, 15*time.Second); err != nil {
				return out, err
			}
		}
		slices.Sort(sr.Stalls)
		b.logf("failover %-9s %d trials (%d skipped): min %.1f  p50 %.1f  p99 %.1f  max %.1f ms", fk.name, len(sr.Stalls),
			sr.Skipped, quantile(sr.Stalls, 0), quantile(sr.Stalls, 0.5), quantile(sr.Stalls, 0.99), quantile(sr.Stalls, 1))
		out = append(out, sr)
		if fk.config != "" {
			if err := b.startDaemon(t, ""); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

// trial runs one paced download, injecting fk (if any) at faultAt. It
// returns the longest gap between reads in milliseconds and whether the
// box counted a failover during it.
func (b *bench) trial(t *topo, fk *faultKind) (float64, bool, error) {
	s0, err := b.snapshot(t)
	if err != nil {
		return 0, false, err
	}
	c, err := t.lab.Dial(t.lab.ClientNS, "tcp", fmt.Sprintf("%s:%d", t.target, loadPort), 5*time.Second)
	if err != nil {
		return 0, false, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write(encodeHdr(opPaced, paceBytes, uint64(paceChunk)<<32|uint64(pacePause/time.Microsecond))); err != nil {
		return 0, false, err
	}
	injected := make(chan error, 1)
	var faultTime time.Time
	if fk != nil {
		go func() {
			time.Sleep(faultAt)
			faultTime = time.Now()
			injected <- fk.inject(b, t)
		}()
	} else {
		injected <- nil
	}
	gap, gapStart, rerr := readPaced(c, paceBytes)
	if err := <-injected; err != nil {
		return 0, false, fmt.Errorf("inject: %w", err)
	}
	if rerr != nil {
		return 0, false, rerr
	}
	s1, err := b.snapshot(t)
	if err != nil {
		return 0, false, err
	}
	if fk != nil {
		// Where the longest wait began, seen from the fault: a stall that
		// began long before or after it is the machine's, not the
		// failover's (for reading outliers; the table keeps the longest).
		b.logf("failover %s trial: longest wait %.1f ms, began %+.1f ms from the fault, failovers %d",
			fk.name, float64(gap)/float64(time.Millisecond), float64(gapStart.Sub(faultTime))/float64(time.Millisecond), s1.Failovers-s0.Failovers)
	}
	return float64(gap) / float64(time.Millisecond), s1.Failovers > s0.Failovers, nil
}

// readPaced reads n pattern bytes, checking each, and returns the longest
// time between two reads (from the first byte on) and when it began.
func readPaced(c net.Conn, n int64) (time.Duration, time.Time, error) {
	buf := make([]byte, 64<<10)
	var off int64
	var last, start time.Time
	var gap time.Duration
	for off < n {
		k, err := c.Read(buf[:min(int64(len(buf)), n-off)])
		if k > 0 {
			now := time.Now()
			if !last.IsZero() && now.Sub(last) > gap {
				gap = now.Sub(last)
				start = last
			}
			last = now
			for p := 0; p < k; {
				m := min(k-p, patternLen)
				if !bytes.Equal(buf[p:p+m], patternAt(off, m)) {
					return gap, start, fmt.Errorf("wrong bytes near offset %d", off)
				}
				p += m
				off += int64(m)
			}
		}
		if err != nil && off < n {
			return gap, start, fmt.Errorf("after %d of %d bytes: %w", off, n, err)
		}
	}
	if off != n {
		return gap, start, errors.New("short stream")
	}
	return gap, start, nil
}
