package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/engine"
	"github.com/ftbridge/ftbridge/firmware/hooks"
	"github.com/ftbridge/ftbridge/firmware/mgmt"
	"github.com/ftbridge/ftbridge/firmware/sysd"
)

// version is the firmware version; release builds set it with
// -ldflags "-X main.version=...".
var version = "dev"

// uiHandler is the static web dashboard served at / without
// authentication. The web UI registers it from a file of its own in this
// package (func init() { uiHandler = webui.Handler() }); nil serves
// nothing there.
var uiHandler http.Handler

func ui() http.Handler { return uiHandler }

// runManaged runs the dataplane under the management plane until SIGTERM
// or SIGINT. The event log lines and SIGUSR1 snapshots are those of the
// plain mode.
func runManaged(cfgPath, dataDir string, logger *log.Logger, stderr io.Writer, usr1 <-chan os.Signal, jsonLog, quiet bool) int {
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	events := make(chan engine.Event, 4096)
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		if sysd.JournalStderr() && !jsonLog {
			journalEvents(logger, events, quiet)
			return
		}
		logEvents(logger, stderr, events, jsonLog, quiet)
	}()
	// The gate exists before the plane (events flow from its start); it
	// reaches the plane once Start returned.
	late := &latePlane{bound: make(chan struct{}), ctx: ctx}
	gate := startGate(ctx, late.hooks, late, logger)
	p, err := mgmt.Start(mgmt.Options{
		ConfigPath: cfgPath, DataDir: dataDir, Version: version, UI: ui(),
		Logf: logger.Printf,
		OnEvent: func(ev engine.Event) {
			gate(ev)
			select {
			case events <- ev:
			default: // the log falls behind; the event log still has it
			}
		},
	})
	if err != nil {
		logger.Print(err)
		close(events)
		<-logDone
		return 1
	}
	late.p = p
	close(late.bound)
	go func() {
		for range usr1 {
			sctx, scancel := context.WithTimeout(ctx, 2*time.Second)
			snap, err := p.DP.Snapshot(sctx, 1000)
			scancel()
			if err != nil {
				continue
			}
			b, _ := json.Marshal(snap)
			fmt.Fprintf(stderr, "SNAPSHOT %s\n", b)
		}
	}()
	go releaseWhenIdle(ctx, p.DP.Snapshot)
	cur := p.Config.Current()
	logger.Printf("running: uplink %s, %d replicas, %d services; management API on %v", cur.Config.Uplink, len(cur.Config.Replicas), len(cur.Config.Services), p.Addrs())
	code := 0
	select {
	case <-ctx.Done():
	case err := <-p.DP.Failed():
		logger.Print(err)
		code = 1
	}
	if err := p.Close(); err != nil {
		logger.Print(err)
		code = 1
	}
	close(events)
	<-logDone
	if code == 0 {
		logger.Print("stopped")
	}
	return code
}

// journalEvents writes events as structured journal entries when stderr
// is the journal, so that `journalctl FTBRIDGE_KIND=failover` finds them.
func journalEvents(logger *log.Logger, events <-chan engine.Event, quiet bool) {
	for ev := range events {
		if quiet && (ev.Kind == engine.EventConnEstablished || ev.Kind == engine.EventConnClosed || ev.Kind == engine.EventMemberRemoved) {
			continue
		}
		fields := map[string]string{"FTBRIDGE_KIND": string(ev.Kind)}
		add := func(k, v string) {
			if v != "" {
				fields[k] = v
			}
		}
		add("FTBRIDGE_REPLICA", ev.Replica)
		add("FTBRIDGE_FROM", ev.From)
		add("FTBRIDGE_CONN", ev.Conn)
		add("FTBRIDGE_PORT", ev.Port)
		add("FTBRIDGE_REASON", ev.Reason)
		add("FTBRIDGE_DETAIL", ev.Detail)
		pri := sysd.PriInfo
		switch ev.Kind {
		case engine.EventFailover, engine.EventReplicaDown, engine.EventPortGone, engine.EventDiverged, engine.EventStalled:
			pri = sysd.PriWarning
		}
		msg := string(ev.Kind)
		for _, k := range []string{"FTBRIDGE_REPLICA", "FTBRIDGE_FROM", "FTBRIDGE_CONN", "FTBRIDGE_REASON"} {
			if v, ok := fields[k]; ok {
				msg += " " + k[len("FTBRIDGE_"):] + "=" + v
			}
		}
		if err := sysd.JournalSend(msg, pri, fields); err != nil {
			logger.Print(msg)
		}
	}
}

// latePlane gives the state-hook gate the management plane once it exists.
type latePlane struct {
	bound chan struct{}
	ctx   context.Context
	p     *mgmt.Plane
}

func (l *latePlane) wait() bool {
	select {
	case <-l.bound:
		return true
	case <-l.ctx.Done():
		return false
	}
}

func (l *latePlane) hooks() []hooks.Hook {
	if !l.wait() {
		return nil
	}
	return configHooks(l.p.Config.Current().Config)
}

// SetReady implements hooks.Readier.
func (l *latePlane) SetReady(ctx context.Context, name string, ok bool) error {
	if !l.wait() {
		return l.ctx.Err()
	}
	return l.p.DP.SetReady(ctx, name, ok)
}
