// Package hooks runs the per-service application-state hooks that gate a
// recovered replica: before a replica that came back serves new
// connections or joins live ones, every configured hook must succeed for
// it within its timeout. A hook is a command run on the box (with the
// replica's name in its environment and as its last argument) or an HTTP
// POST to a URL (with the replica's name in the query).
//
// The dataplane only holds the replica out (engine.Config.ReadyGate) and
// announces it (engine.EventReplicaNeedsReady); Gate listens for that,
// runs the hooks off the dataplane's goroutine and reports the outcome
// with Engine.SetReady.
package hooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/engine"
)

// Hook is one state hook.
type Hook struct {
	// Service names the hook in errors and logs.
	Service string
	// Command is the program and its arguments; the replica's name is
	// appended and set as FTB_REPLICA.
	Command []string
	// URL receives a POST with ?replica=NAME; a 2xx answer is success.
	URL string
	// Timeout bounds the hook; zero means 30 seconds.
	Timeout time.Duration
}

// Run runs the hook for replica and returns nil on success.
func (h Hook) Run(ctx context.Context, replica string) error {
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var err error
	switch {
	case len(h.Command) > 0:
		err = h.runCommand(ctx, replica)
	case h.URL != "":
		err = h.post(ctx, replica)
	default:
		return fmt.Errorf("hook %s: neither command nor url", h.Service)
	}
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("hook %s for %s: timed out after %v", h.Service, replica, timeout)
	}
	if err != nil {
		return fmt.Errorf("hook %s for %s: %w", h.Service, replica, err)
	}
	return nil
}

func (h Hook) runCommand(ctx context.Context, replica string) error {
	cmd := exec.CommandContext(ctx, h.Command[0], append(h.Command[1:], replica)...)
	cmd.Env = append(os.Environ(), "FTB_REPLICA="+replica, "FTB_SERVICE="+h.Service)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// The hook and everything it started must not outlive a timeout: it
	// runs in its own process group, which the timeout kills whole.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		msg := bytes.TrimSpace(out.Bytes())
		if len(msg) > 200 {
			msg = msg[len(msg)-200:]
		}
		if len(msg) > 0 {
			return fmt.Errorf("%w: %s", err, msg)
		}
		return err
	}
	return nil
}

func (h Hook) post(ctx context.Context, replica string) error {
	u, err := url.Parse(h.URL)
	if err != nil {
		return err
	}
	q := u.Query()
	q.Set("replica", replica)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("HTTP %s", resp.Status)
	}
	return nil
}

// Readier is the part of the engine Gate drives.
type Readier interface {
	SetReady(ctx context.Context, replica string, ok bool) error
}

var _ Readier = (*engine.Engine)(nil)

// Gate runs the hooks whenever the dataplane announces a replica that
// needs them, one run per replica at a time, and reports the outcome.
type Gate struct {
	Hooks []Hook
	// Source, if set, is asked for the hooks at each check instead of
	// Hooks (the configuration may change while the gate runs).
	Source func() []Hook
	Eng    Readier
	// Log receives one line per outcome; nil discards.
	Log func(format string, args ...any)

	mu      sync.Mutex
	running map[string]bool
}

// Run consumes events until ctx ends or the channel closes.
func (g *Gate) Run(ctx context.Context, events <-chan engine.Event) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			if ev.Kind != engine.EventReplicaNeedsReady || !g.start(ev.Replica) {
				continue
			}
			wg.Add(1)
			go func(name string) {
				defer wg.Done()
				defer g.done(name)
				g.check(ctx, name)
			}(ev.Replica)
		}
	}
}

func (g *Gate) start(name string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.running == nil {
		g.running = map[string]bool{}
	}
	if g.running[name] {
		return false
	}
	g.running[name] = true
	return true
}

func (g *Gate) done(name string) {
	g.mu.Lock()
	delete(g.running, name)
	g.mu.Unlock()
}

// check runs every hook for one replica and reports.
func (g *Gate) check(ctx context.Context, name string) {
	var errs []error
	hs := g.Hooks
	if g.Source != nil {
		hs = g.Source()
	}
	for _, h := range hs {
		if err := h.Run(ctx, name); err != nil {
			errs = append(errs, err)
		}
	}
	err := errors.Join(errs...)
	if g.Log != nil {
		if err != nil {
			g.Log("state hooks for %s failed: %v", name, err)
		} else {
			g.Log("state hooks for %s passed", name)
		}
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	g.Eng.SetReady(sctx, name, err == nil)
}

// FromConfig returns the state hooks a configuration names, one per
// service that has one.
func FromConfig(services []ServiceHook) []Hook {
	var hs []Hook
	for _, s := range services {
		if s.Hook != nil {
			hs = append(hs, *s.Hook)
		}
	}
	return hs
}

// ServiceHook pairs a service's name with its hook, if any.
type ServiceHook struct {
	Service string
	Hook    *Hook
}
