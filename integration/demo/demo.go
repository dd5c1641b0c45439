// Package demo is `ftbridge demo`: it builds a lab of network namespaces
// (client, box, two replicas), runs the deterministic demo service on each
// replica and the dataplane with the built-in default configuration in the
// box, streams through the service address, kills the primary mid-stream,
// and reports what the client saw.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/engine"
	"github.com/ftbridge/ftbridge/firmware/config"
	"github.com/ftbridge/ftbridge/integration/lab"
	"github.com/ftbridge/ftbridge/integration/labsvc"
)

// Options configure Run.
type Options struct {
	// Server is the command line that runs the demo service; the listen
	// address is appended as "-listen ADDR". Empty means this executable
	// with the "lab-server" subcommand.
	Server []string
	// Size is the number of bytes the client downloads.
	Size int64
	// KillAfter is when the primary's server is killed.
	KillAfter time.Duration
	// Out receives the narrative.
	Out io.Writer
}

// Result is what the client saw.
type Result struct {
	Bytes      int64
	HashMatch  bool
	MaxStall   time.Duration
	Reconnects int
	Failovers  int
}

// Run runs the demo until it finishes or ctx ends, and always tears the
// lab down.
func Run(ctx context.Context, o Options) (Result, error) {
	var res Result
	if os.Geteuid() != 0 {
		return res, errors.New("the demo needs root: it builds network namespaces and opens raw sockets")
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Size == 0 {
		o.Size = 24 << 20
	}
	if o.KillAfter == 0 {
		o.KillAfter = 1500 * time.Millisecond
	}
	if len(o.Server) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return res, err
		}
		o.Server = []string{exe, "lab-server"}
	}
	say := func(format string, args ...any) { fmt.Fprintf(o.Out, format+"\n", args...) }

	cfg := config.Default()
	l, err := lab.New(lab.Options{Replicas: len(cfg.Replicas)})
	if err != nil {
		return res, err
	}
	defer l.Close()
	say("lab %s: client %s, box %s, replicas %s", l.Name, l.ClientNS, l.BoxNS, strings.Join(l.ReplicaNS, ", "))
	if cfg.Uplink != l.Uplink || cfg.Replicas[0].Interface != l.ReplicaPorts[0] || cfg.Services[0].Address != l.VIP.String() {
		return res, fmt.Errorf("the default configuration does not match the lab (uplink %s, service %s)", cfg.Uplink, cfg.Services[0].Address)
	}

	var servers []*lab.Proc
	for _, ns := range l.ReplicaNS {
		args := append(append([]string{}, o.Server[1:]...), "-listen", l.VIP.String()+":7000")
		p, err := l.Start(ns, o.Server[0], args...)
		if err != nil {
			return res, err
		}
		servers = append(servers, p)
	}

	// The dataplane runs in this process, with its sockets opened inside
	// the box namespace.
	var eng *engine.Engine
	if err := l.InNS(l.BoxNS, func() error {
		var err error
		eng, err = engine.New(cfg.Dataplane())
		return err
	}); err != nil {
		return res, err
	}
	defer eng.Close()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- eng.Run(runCtx) }()
	defer func() { stop(); <-done }()

	events, unsubscribe := eng.Subscribe(1024)
	defer unsubscribe()
	go func() {
		for ev := range events {
			switch ev.Kind {
			case engine.EventReplicaUp, engine.EventReplicaDown, engine.EventFailover, engine.EventDiverged:
				say("  box: %s %s%s%s%s", ev.Kind, ev.Replica, opt(" service ", ev.Port), opt(" from ", ev.From), opt(" (", ev.Reason, ")"))
			}
		}
	}()

	say("waiting for the replicas to be healthy ...")
	if err := waitHealthy(ctx, eng, len(cfg.Replicas)); err != nil {
		return res, err
	}
	primary := cfg.Replicas[0].Name
	say("client: streaming %d MiB from %s:7000 through the box (primary %s)", o.Size>>20, l.VIP, primary)
	c, err := l.Dial(l.ClientNS, "tcp", l.VIP.String()+":7000", 5*time.Second)
	if err != nil {
		return res, err
	}
	defer c.Close()
	go func() {
		select {
		case <-time.After(o.KillAfter):
			say("fault: kill -9 of the server on replica %s (pid %d)", primary, servers[0].Pid())
			servers[0].Kill()
		case <-ctx.Done():
			c.Close()
		}
	}()
	pace := &labsvc.Pace{Chunk: 64 << 10, Delay: 5 * time.Millisecond}
	r, err := labsvc.Download(c, o.Size, 2026, pace)
	if err != nil {
		return res, fmt.Errorf("client: %w", err)
	}
	res.Bytes = r.Bytes
	want := labsvc.StreamHash(o.Size, 2026)
	res.HashMatch = r.SHA256 == want
	res.MaxStall = r.MaxGap
	if err := labsvc.Quit(c); err != nil {
		return res, fmt.Errorf("client: closing: %w", err)
	}
	res.Failovers = int(eng.Counters().Failovers.Load())
	say("")
	say("client saw: %d bytes, sha256 %x.. %s, longest stall %v, reconnects %d, resets 0",
		res.Bytes, r.SHA256[:6], matchWord(res.HashMatch), res.MaxStall.Round(time.Millisecond), res.Reconnects)
	say("box: %d connection failover(s)", res.Failovers)
	if !res.HashMatch {
		return res, fmt.Errorf("the stream differs from what the server sent (want sha256 %x)", want[:6])
	}
	return res, nil
}

func matchWord(ok bool) string {
	if ok {
		return "(matches the server's stream)"
	}
	return "(MISMATCH)"
}

func opt(prefix, v string, suffix ...string) string {
	if v == "" {
		return ""
	}
	return prefix + v + strings.Join(suffix, "")
}

// waitHealthy waits until n replicas serve port 7000.
func waitHealthy(ctx context.Context, eng *engine.Engine, n int) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		s, err := eng.Snapshot(ctx, 0)
		if err != nil {
			return err
		}
		ok := 0
		for _, r := range s.Replicas {
			for _, svc := range r.Services {
				if strings.HasSuffix(svc, ":7000") && r.Up {
					ok++
				}
			}
		}
		if ok == n {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return errors.New("replicas did not become healthy within 20s")
}
