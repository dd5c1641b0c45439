package soak

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/engine"
)

// Fault timing.
const (
	// detectWait is how long the runner waits for the daemon to react to a
	// crash before healing it anyway (a SIGSTOP of a replica that carries
	// no traffic is invisible, by design).
	detectWait = 3 * time.Second
	// recoverWait bounds the wait for every replica to be healthy again.
	recoverWait = 30 * time.Second
)

// faultLoop injects faults until deadline, MaxFaults or ctx ends.
func (r *runner) faultLoop(ctx context.Context, deadline time.Time) {
	// Let the workload ramp up first.
	if !sleepCtx(ctx, min(3*time.Second, time.Until(deadline))) {
		return
	}
	if len(r.cfg.Faults) == 0 {
		sleepCtx(ctx, time.Until(deadline))
		return
	}
	for n := 1; n <= r.cfg.MaxFaults; n++ {
		if ctx.Err() != nil || !time.Now().Before(deadline) {
			return
		}
		if r.b.Daemon.Exited() {
			r.problem("ftbridged died during the run:\n%s", r.b.DeathNote())
			return
		}
		kind := pickWeighted(r.rng, r.cfg.Faults)
		rec := r.fault(ctx, n, kind)
		if rec == nil {
			r.mu.Lock()
			r.skipped++
			r.mu.Unlock()
			n--
		} else {
			r.mu.Lock()
			r.faults = append(r.faults, *rec)
			r.mu.Unlock()
			det := "-"
			if rec.Detected > 0 {
				det = fmtDur(rec.Detected)
			}
			r.say("fault %d %s %s %s: detected %s, recovered %s, failovers %d%s", rec.N, rec.Kind, rec.Target, rec.Detail,
				det, fmtDur(rec.Recovered), rec.Failovers, map[bool]string{true: ", ERROR " + rec.Err, false: ""}[rec.Err != ""])
		}
		gap := r.cfg.FaultGap/2 + time.Duration(r.rng.Int64N(int64(r.cfg.FaultGap)+1))
		if rec == nil {
			gap = 200 * time.Millisecond
		}
		if !sleepCtx(ctx, min(gap, time.Until(deadline))) {
			return
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

func pickWeighted(rng interface{ IntN(int) int }, w map[string]int) string {
	total := 0
	keys := sortedKeys(w)
	for _, k := range keys {
		total += w[k]
	}
	n := rng.IntN(max(total, 1))
	for _, k := range keys {
		if n < w[k] {
			return k
		}
		n -= w[k]
	}
	return keys[0]
}

// safeVictims lists the replicas whose failure leaves every live
// connection a live member and at least one other healthy replica for new
// connections. Replicas in extra are assumed at risk too (an impaired
// link may fail its replica by stall).
func (r *runner) safeVictims(s engine.Snapshot, extra ...string) []string {
	var out []string
	for _, v := range r.b.ReplicaNames() {
		if !r.b.Healthy(s, v) || slices.Contains(extra, v) {
			continue
		}
		risk := append([]string{v}, extra...)
		if r.survivable(s, risk) {
			out = append(out, v)
		}
	}
	return out
}

// survivable reports whether losing every replica in risk at once leaves
// a healthy replica and a live member in every established connection.
func (r *runner) survivable(s engine.Snapshot, risk []string) bool {
	healthy := 0
	for _, n := range r.b.ReplicaNames() {
		if r.b.Healthy(s, n) && !slices.Contains(risk, n) {
			healthy++
		}
	}
	if healthy == 0 {
		return false
	}
	for _, c := range s.Conns {
		// A handshake in progress includes every healthy replica.
		if c.State == "syn-rcvd" {
			continue
		}
		ok := false
		for _, m := range c.Members {
			if m.Live && !slices.Contains(risk, m.Replica) {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// pickVictim prefers the replica that is primary of the most connections
// (that makes failovers rather than backup removals), but not always, so
// backups fail too.
func (r *runner) pickVictim(s engine.Snapshot, cands []string) string {
	if r.rng.Float64() < 0.3 {
		return cands[r.rng.IntN(len(cands))]
	}
	best, most := cands[0], -1
	for _, c := range cands {
		for _, rs := range s.Replicas {
			if rs.Name == c && rs.Primaries > most {
				best, most = c, rs.Primaries
			}
		}
	}
	return best
}

func replicaIndex(name string) int { return int(name[0] - 'a') }

// link returns the lab link of "client" or a replica name.
func (r *runner) link(name string) Link {
	l := r.b.Lab
	if name == "client" {
		return Link{Name: name, Port: l.Uplink}
	}
	return Link{Name: name, Port: l.ReplicaPorts[replicaIndex(name)]}
}

// randomImpairment draws a mild impairment: mild enough that TCP
// recovers within the stall timeout, so it tests translation under
// disorder rather than forcing failovers.
func (r *runner) randomImpairment(kind string) Impairment {
	switch kind {
	case FaultLoss:
		return Impairment{Kind: kind, Prob: float64(1+r.rng.IntN(4)) / 100}
	case FaultDuplicate:
		return Impairment{Kind: kind, Prob: float64(1+r.rng.IntN(5)) / 100}
	case FaultReorder:
		return Impairment{Kind: kind, Prob: float64(10+r.rng.IntN(20)) / 100, Delay: time.Duration(5+r.rng.IntN(15)) * time.Millisecond}
	}
	return Impairment{Kind: FaultDelay, Delay: time.Duration(5+r.rng.IntN(40)) * time.Millisecond, Jitter: time.Duration(r.rng.IntN(5)) * time.Millisecond}
}

// fault injects one fault and returns its record, or nil when no target
// is safe right now.
func (r *runner) fault(ctx context.Context, n int, kind string) *FaultRecord {
	s, err := r.b.Snapshot(5 * time.Second)
	if err != nil {
		r.problem("snapshot before fault %d: %v", n, err)
		return nil
	}
	rec := &FaultRecord{N: n, Kind: kind}
	from := r.b.Log.NumEvents()
	if !isCrash(kind) {
		// An impairment of the client link hits every replica alike; one
		// of a replica link may fail that replica, so it must be a safe
		// victim.
		target := "client"
		if cands := r.safeVictims(s); len(cands) > 0 && r.rng.IntN(2) == 0 {
			target = cands[r.rng.IntN(len(cands))]
		}
		im := r.randomImpairment(kind)
		rec.Target, rec.Detail = target, im.String()
		rec.Start = time.Now()
		undo, err := r.imp.Apply(r.link(target), im)
		if err != nil {
			rec.Err = err.Error()
			r.problem("impairment %s on %s: %v", im, target, err)
			return rec
		}
		sleepCtx(ctx, 2*time.Second+time.Duration(r.rng.Int64N(int64(3*time.Second))))
		if err := undo(); err != nil {
			rec.Err = err.Error()
		}
		rec.Healed = time.Since(rec.Start)
		r.recover(rec, from)
		return rec
	}

	cands := r.safeVictims(s)
	if len(cands) == 0 {
		return nil
	}
	victim := r.pickVictim(s, cands)
	i := replicaIndex(victim)
	rec.Target = victim
	var undoImpair func() error
	if r.cfg.OverlapImpair > 0 && r.rng.Float64() < r.cfg.OverlapImpair {
		im := r.randomImpairment(pickWeighted(r.rng, map[string]int{FaultLoss: 1, FaultDuplicate: 1, FaultReorder: 1, FaultDelay: 1}))
		if undo, err := r.imp.Apply(r.link("client"), im); err == nil {
			undoImpair = undo
			rec.Detail = "client link: " + im.String()
			sleepCtx(ctx, 300*time.Millisecond)
		} else {
			r.problem("impairment %s on the client link: %v", im, err)
		}
	}
	rec.Start = time.Now()
	var heal func() error
	l := r.b.Lab
	switch kind {
	case FaultKill9:
		err = r.b.SignalServers(i, syscall.SIGKILL)
		heal = func() error { return r.b.StartServers(i) }
	case FaultSigstop:
		err = r.b.SignalServers(i, syscall.SIGSTOP)
		heal = func() error { return r.b.SignalServers(i, syscall.SIGCONT) }
	case FaultLinkFlap:
		err = l.SetLink(l.ReplicaNS[i], "eth0", false)
		heal = func() error { return l.SetLink(l.ReplicaNS[i], "eth0", true) }
	case FaultPortFlap:
		err = l.SetLink(l.BoxNS, l.ReplicaPorts[i], false)
		heal = func() error { return l.SetLink(l.BoxNS, l.ReplicaPorts[i], true) }
	case FaultNSDelete:
		err = l.DeleteNS(l.ReplicaNS[i])
		heal = func() error {
			if err := l.RecreateReplica(i); err != nil {
				return err
			}
			return r.b.StartServers(i)
		}
	}
	if err != nil {
		rec.Err = "inject: " + err.Error()
		r.problem("fault %d %s on %s: %v", n, kind, victim, err)
	}
	// Only what the daemon did after the injection counts (an event about
	// the victim may predate it: the overlapping impairment).
	if ev, ok := r.b.Log.WaitEvent(from, detectWait, func(ev engine.Event) bool { return eventAbout(ev, victim) && !ev.Time.Before(rec.Start) }); ok {
		rec.Detected = max(ev.Time.Sub(rec.Start), time.Microsecond)
	}
	// Stay broken a little longer than detection, so the failover happens
	// under the fault and not at the heal.
	sleepCtx(ctx, 100*time.Millisecond+time.Duration(r.rng.Int64N(int64(700*time.Millisecond))))
	if err := heal(); err != nil {
		rec.Err = strings.TrimSpace(rec.Err + " heal: " + err.Error())
		r.problem("healing fault %d %s on %s: %v", n, kind, victim, err)
	}
	rec.Healed = time.Since(rec.Start)
	if undoImpair != nil {
		if err := undoImpair(); err != nil {
			r.problem("clearing the client link impairment: %v", err)
		}
	}
	r.recover(rec, from)
	return rec
}

// recover waits for every replica to be healthy and counts what the
// daemon did about the fault.
func (r *runner) recover(rec *FaultRecord, from int) {
	if err := r.b.WaitHealthy(recoverWait, r.b.ReplicaNames()...); err != nil {
		rec.Err = strings.TrimSpace(rec.Err + " not recovered: " + firstLine(err.Error()))
		r.problem("fault %d %s on %s: replicas not healthy %v after healing", rec.N, rec.Kind, rec.Target, recoverWait)
	}
	r.waitJoined()
	rec.Recovered = time.Since(rec.Start)
	for _, ev := range r.b.Log.Events(from) {
		switch ev.Kind {
		case engine.EventFailover:
			rec.Failovers++
		case engine.EventMemberRemoved:
			rec.Removed++
		}
	}
}

// joinWait bounds the wait for rejoins to finish after a fault.
const joinWait = 10 * time.Second

// waitJoined waits until no connection has a member still joining (with
// rejoin "auto" a recovered replica is replayed into the live connections).
// A joining member cannot take over yet, so until it has joined its peers
// are not safe victims, and the next fault would always hit the replica
// that just came back.
func (r *runner) waitJoined() {
	deadline := time.Now().Add(joinWait)
	for time.Now().Before(deadline) {
		s, err := r.b.Snapshot(5 * time.Second)
		if err != nil {
			return
		}
		joining := false
		for _, c := range s.Conns {
			for _, m := range c.Members {
				joining = joining || m.Joining
			}
		}
		if !joining {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// fill assembles the report from what the run recorded.
func (r *runner) fill(rep *Report) {
	r.mu.Lock()
	defer r.mu.Unlock()
	events := r.b.Log.Events(0)
	rep.EventsTotal = len(events)
	rep.Faults, rep.Skipped, rep.Problems = r.faults, r.skipped, r.problems
	rep.Impair = r.imp.Method()
	if r.cfg.NoImpair {
		rep.Impair = "none (-no-impair: plain veth links, no impairment faults)"
	}
	rep.Memory.Samples = r.samples
	for _, s := range r.samples {
		if s.RSSKiB > rep.Memory.Peak.RSSKiB {
			rep.Memory.Peak.RSSKiB, rep.Memory.Peak.Time = s.RSSKiB, s.Time
		}
		rep.Memory.Peak.Threads = max(rep.Memory.Peak.Threads, s.Threads)
	}

	// Failover events per client address, to join with sessions.
	rep.FailoversByReason = map[string]int{}
	fo := map[string][]time.Time{}
	connEvents := map[string][]engine.Event{}
	var global []engine.Event
	for _, ev := range events {
		client, _, _ := strings.Cut(ev.Conn, "->")
		switch ev.Kind {
		case engine.EventFailover:
			rep.Failovers++
			rep.FailoversByReason[ev.Reason]++
			fo[client] = append(fo[client], ev.Time)
		case engine.EventMemberRemoved:
			rep.MembersRemoved++
		}
		if client != "" {
			connEvents[client] = append(connEvents[client], ev)
		} else if ev.Kind != engine.EventReplicaUp {
			global = append(global, ev)
		}
	}
	rep.FaultCounts = map[string]int{}
	for _, f := range r.faults {
		rep.FaultCounts[f.Kind]++
	}
	faultAt := func(t time.Time) string {
		for _, f := range r.faults {
			if !t.Before(f.Start.Add(-50*time.Millisecond)) && !t.After(f.Start.Add(f.Recovered)) {
				return f.Kind
			}
		}
		return "other"
	}

	rep.ByKind = map[string]KindStats{}
	rep.FailureClass = map[string]int{}
	gaps := map[string][]time.Duration{}
	byFault := map[string][]time.Duration{}
	var all, withFO []time.Duration
	for i := range r.sessions {
		s := &r.sessions[i]
		for _, t := range fo[s.Local] {
			if !t.Before(s.Start.Add(-100*time.Millisecond)) && !t.After(s.End.Add(100*time.Millisecond)) {
				s.Failovers++
				if s.Failovers == 1 {
					byFault[faultAt(t)] = append(byFault[faultAt(t)], s.MaxGap)
				}
			}
		}
		k := rep.ByKind[s.Kind]
		k.Sessions++
		k.Down += s.Down
		k.Up += s.Up
		k.Ops += s.Ops
		rep.Sessions++
		rep.BytesDown += s.Down
		rep.BytesUp += s.Up
		rep.Ops += s.Ops
		if s.Err != "" {
			k.Failed++
			rep.Failed++
			rep.FailureClass[s.Class]++
			rep.Failures = append(rep.Failures, r.failure(*s, connEvents[s.Local], global))
		} else {
			rep.Verified++
			all = append(all, s.MaxGap)
			gaps[s.Kind] = append(gaps[s.Kind], s.MaxGap)
			if s.Failovers > 0 {
				withFO = append(withFO, s.MaxGap)
			}
		}
		rep.ByKind[s.Kind] = k
	}
	for kind, g := range gaps {
		k := rep.ByKind[kind]
		k.Gap = NewDist(g)
		rep.ByKind[kind] = k
	}
	rep.Stalls, rep.FailoverStall = NewDist(all), NewDist(withFO)
	rep.StallByFault = map[string]Dist{}
	for k, g := range byFault {
		rep.StallByFault[k] = NewDist(g)
	}
	det := map[string][]time.Duration{}
	for _, f := range r.faults {
		if f.Detected > 0 && isCrash(f.Kind) {
			det[f.Kind] = append(det[f.Kind], f.Detected)
		}
	}
	rep.DetectByFault = map[string]Dist{}
	for k, d := range det {
		rep.DetectByFault[k] = NewDist(d)
	}
	if len(rep.FailureClass) == 0 {
		rep.FailureClass = nil
	}
	rep.Episodes = r.episodes(rep.Failures, global)
	rep.Pass = rep.Failed == 0 && len(rep.Problems) == 0 && rep.Memory.OK && rep.ClientResets == 0 &&
		rep.FinalConns == 0 && rep.FinalHeld == 0
}

// episodes groups failures that ended within 2 s of each other.
func (r *runner) episodes(fs []Failure, global []engine.Event) []Episode {
	sorted := slices.Clone(fs)
	slices.SortFunc(sorted, func(a, b Failure) int { return a.Session.End.Compare(b.Session.End) })
	var eps []Episode
	for _, f := range sorted {
		s := f.Session
		if n := len(eps); n > 0 && s.End.Sub(eps[n-1].End) < 2*time.Second {
			e := &eps[n-1]
			e.End = s.End
			e.Sessions++
			e.Classes[s.Class]++
			continue
		}
		eps = append(eps, Episode{Start: s.End, End: s.End, Sessions: 1, Classes: map[string]int{s.Class: 1}})
	}
	for i := range eps {
		e := &eps[i]
		from, to := e.Start.Add(-3*time.Second), e.End.Add(time.Second)
		seen := map[string]bool{}
		for _, ev := range global {
			if ev.Time.Before(from) || ev.Time.After(to) {
				continue
			}
			switch ev.Kind {
			case engine.EventReplicaDown, engine.EventPortGone, engine.EventStalled:
			default:
				continue
			}
			line := fmt.Sprintf("%s %s replica=%s", ev.Time.Format("15:04:05.000"), ev.Kind, ev.Replica)
			if ev.Port != "" {
				line += " port=" + ev.Port
			}
			if ev.Reason != "" {
				line += " reason=" + ev.Reason
			}
			if !seen[line] {
				seen[line] = true
				e.Events = append(e.Events, line)
			}
		}
		for _, fr := range r.faults {
			end := fr.Start.Add(fr.Recovered)
			if fr.Start.Before(to) && end.After(from) {
				e.Faults = append(e.Faults, fmt.Sprintf("#%d %s %s %s at +%s (detected %s, recovered %s)", fr.N, fr.Kind, fr.Target, fr.Detail,
					fr.Start.Sub(r.t0).Round(time.Millisecond), fmtDur(fr.Detected), fmtDur(fr.Recovered)))
			}
		}
	}
	return eps
}

// failure describes a failed session with its context.
// evs are the events of its connection, global the replica-wide ones
// (replica down, port gone) of which those near its end are shown.
func (r *runner) failure(s Session, evs, global []engine.Event) Failure {
	f := Failure{Session: s}
	for _, fr := range r.faults {
		end := fr.Start.Add(fr.Recovered)
		if fr.Start.Before(s.End.Add(time.Second)) && end.After(s.Start.Add(-time.Second)) {
			f.Faults = append(f.Faults, fmt.Sprintf("#%d %s %s %s at +%s (detected %s, recovered %s)", fr.N, fr.Kind, fr.Target, fr.Detail,
				fr.Start.Sub(r.t0).Round(time.Millisecond), fmtDur(fr.Detected), fmtDur(fr.Recovered)))
		}
	}
	evs = slices.Clone(evs)
	for _, ev := range global {
		if !ev.Time.Before(s.End.Add(-2*time.Second)) && !ev.Time.After(s.End.Add(time.Second)) {
			evs = append(evs, ev)
		}
	}
	slices.SortStableFunc(evs, func(a, b engine.Event) int { return a.Time.Compare(b.Time) })
	for _, ev := range evs {
		if ev.Time.Before(s.Start.Add(-time.Second)) || ev.Time.After(s.End.Add(time.Second)) {
			continue
		}
		line := fmt.Sprintf("%s %s", ev.Time.Format("15:04:05.000000"), ev.Kind)
		for _, kv := range [][2]string{{"replica", ev.Replica}, {"from", ev.From}, {"conn", ev.Conn}, {"reason", ev.Reason}, {"detail", ev.Detail}} {
			if kv[1] != "" {
				line += " " + kv[0] + "=" + kv[1]
			}
		}
		f.Events = append(f.Events, line)
	}
	return f
}
