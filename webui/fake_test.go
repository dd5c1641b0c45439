package webui_test

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/engine"
	"github.com/ftbridge/ftbridge/firmware/events"
)

// fakeDP is an in-memory dataplane for the browser tests: replicas whose
// state the test changes, a table of connections, traffic counters that
// grow with time, and events published as the management plane's
// forwarder would.
type fakeDP struct {
	mu      sync.Mutex
	ev      *events.Store
	started time.Time
	reps    []engine.ReplicaStatus
	conns   []engine.ConnStatus
	ctr     engine.Counters
}

func newFakeDP(names ...string) *fakeDP {
	d := &fakeDP{started: time.Now().Add(-42 * time.Minute)}
	for i, n := range names {
		d.reps = append(d.reps, engine.ReplicaStatus{
			Name: n, Interface: fmt.Sprintf("port%d", i+1), Up: true, Admin: "enabled", Carrier: true, Port: true,
			Preferred: i == 0, Services: []string{"198.18.0.10:7000", "198.18.0.10:80"}, ProbeRTT: 0.08 + float64(i)*0.03,
			Since: d.started.Add(time.Second),
		})
	}
	t0 := time.Now().Add(-10 * time.Minute)
	for i := 0; i < 60; i++ {
		c := engine.ConnStatus{
			Client: fmt.Sprintf("198.18.0.%d:%d", 1+i%3, 40000+i), Service: "198.18.0.10:7000", State: "established",
			Primary: names[0], BytesIn: uint64(1000 * i), BytesOut: uint64(250000 * i), Created: t0.Add(time.Duration(i) * 5 * time.Second),
			Diverged: i == 7, Redundancy: len(names),
		}
		if i%4 == 3 {
			c.Service = "198.18.0.10:80"
		}
		for j, n := range names {
			c.Members = append(c.Members, engine.MemberStatus{Replica: n, Live: true, Primary: j == 0})
		}
		d.conns = append(d.conns, c)
	}
	d.ctr.Failovers.Store(0)
	return d
}

func (d *fakeDP) Snapshot(ctx context.Context, maxConns int) (engine.Snapshot, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	// About 40 Mbit/s to the clients, 2 Mbit/s from them, wobbling but
	// never going backwards.
	el := now.Sub(d.started).Seconds()
	s := engine.Snapshot{Time: now, Started: d.started, Connections: len(d.conns), Failovers: d.ctr.Failovers.Load(),
		Divergences: d.ctr.Divergences.Load(), Drops: map[string]uint64{"malformed": 0, "table-full": 0}}
	s.Uplink.RxBytes = uint64(el*250000 + 100000*math.Sin(el/2))
	s.Uplink.TxBytes = uint64(el*5000000 + 6000000*math.Sin(el/3))
	for _, r := range d.reps {
		r.Conns, r.Primaries = 0, 0
		for _, c := range d.conns {
			for _, m := range c.Members {
				if m.Replica == r.Name && m.Live {
					r.Conns++
				}
			}
			if c.Primary == r.Name {
				r.Primaries++
			}
		}
		r.RxBytes, r.TxBytes = s.Uplink.TxBytes, s.Uplink.RxBytes
		s.Replicas = append(s.Replicas, r)
	}
	if maxConns > 0 {
		s.Conns = append(s.Conns, d.conns[:min(maxConns, len(d.conns))]...)
	}
	return s, nil
}

func (d *fakeDP) find(name string) (*engine.ReplicaStatus, error) {
	for i := range d.reps {
		if d.reps[i].Name == name {
			return &d.reps[i], nil
		}
	}
	return nil, fmt.Errorf("no replica %q", name)
}

func (d *fakeDP) SetAdmin(ctx context.Context, name string, a engine.Admin) error {
	d.mu.Lock()
	r, err := d.find(name)
	if err == nil {
		r.Admin = a.String()
	}
	d.mu.Unlock()
	if err == nil {
		d.ev.Add(events.Event{Kind: "replica-admin", Replica: name, Detail: a.String()})
	}
	return err
}

func (d *fakeDP) Promote(ctx context.Context, name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	r, err := d.find(name)
	if err != nil {
		return err
	}
	if !r.Up || r.Admin == "disabled" {
		return fmt.Errorf("replica %q is not serving", name)
	}
	for i := range d.reps {
		d.reps[i].Preferred = d.reps[i].Name == name
	}
	return nil
}

func (d *fakeDP) Counters() *engine.Counters { return &d.ctr }
func (d *fakeDP) Restarts() int              { return 0 }

// fail takes replica from down and fails its connections over to the next
// healthy replica, publishing what the dataplane would: replica-down,
// then one failover per connection it was primary of, then the measured
// stall of each.
func (d *fakeDP) fail(from, reason string) {
	d.mu.Lock()
	now := time.Now()
	r, _ := d.find(from)
	r.Up, r.Since, r.Reason, r.Services, r.ProbeRTT = false, now, reason, nil, 0
	r.Preferred = false
	to := ""
	for i := range d.reps {
		if d.reps[i].Up && d.reps[i].Admin != "disabled" && to == "" {
			to = d.reps[i].Name
			d.reps[i].Preferred = true
		}
	}
	var moved []string
	for i := range d.conns {
		c := &d.conns[i]
		for j := range c.Members {
			m := &c.Members[j]
			if m.Replica == from {
				m.Live, m.Primary = false, false
			}
			if m.Replica == to && c.Primary == from {
				m.Primary = true
			}
		}
		if c.Primary == from {
			c.Primary = to
			c.Failovers++
			moved = append(moved, c.Client+"->"+c.Service)
		}
		c.Redundancy--
	}
	d.ctr.Failovers.Add(uint64(len(moved)))
	d.mu.Unlock()
	d.ev.Add(events.Event{Time: now, Kind: "replica-down", Replica: from, Reason: reason})
	for _, k := range moved {
		d.ev.Add(events.Event{Time: now, Kind: "failover", Replica: to, From: from, Conn: k, Reason: "replica-down"})
	}
	for i, k := range moved {
		d.ev.Add(events.Event{Time: now.Add(40 * time.Millisecond), Kind: "failover-done", Replica: to, Conn: k, Detail: fmt.Sprintf("stall %d ms", 60+i)})
	}
}

// recover brings a replica back up (not as primary).
func (d *fakeDP) recover(name string) {
	d.mu.Lock()
	r, _ := d.find(name)
	r.Up, r.Since, r.Reason, r.Services, r.ProbeRTT = true, time.Now(), "", []string{"198.18.0.10:7000", "198.18.0.10:80"}, 0.1
	d.mu.Unlock()
	d.ev.Add(events.Event{Kind: "replica-up", Replica: name})
}
