package main

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/engine"
	"github.com/ftbridge/ftbridge/firmware/config"
	"github.com/ftbridge/ftbridge/firmware/hooks"
)

// configHooks turns the configuration's per-service state hooks into
// runnable ones.
func configHooks(cfg *config.Config) []hooks.Hook {
	var hs []hooks.Hook
	for _, s := range cfg.Services {
		if s.StateHook == nil {
			continue
		}
		hs = append(hs, hooks.Hook{
			Service: fmt.Sprintf("%s%v", s.Address, s.Ports),
			Command: s.StateHook.Command,
			URL:     s.StateHook.URL,
			Timeout: time.Duration(s.StateHook.Timeout),
		})
	}
	return hs
}

// startGate runs the state-hook gate: replicas that come back wait for
// their services' hooks (engine.Config.ReadyGate is set when any exists).
// It returns the function that feeds it the dataplane's events.
func startGate(ctx context.Context, source func() []hooks.Hook, r hooks.Readier, logger *log.Logger) func(engine.Event) {
	events := make(chan engine.Event, 64)
	g := &hooks.Gate{Source: source, Eng: r, Log: logger.Printf}
	go g.Run(ctx, events)
	return func(ev engine.Event) {
		if ev.Kind != engine.EventReplicaNeedsReady {
			return
		}
		select {
		case events <- ev:
		default:
			logger.Printf("state hook gate busy: %s waits for its next recovery", ev.Replica)
		}
	}
}
