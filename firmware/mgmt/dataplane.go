package mgmt

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ftbridge/ftbridge/dataplane/engine"
)

// Engine is what mgmt needs of a dataplane engine; *engine.Engine is one.
type Engine interface {
	Run(ctx context.Context) error
	Close() error
	Snapshot(ctx context.Context, maxConns int) (engine.Snapshot, error)
	SetAdmin(ctx context.Context, name string, a engine.Admin) error
	Promote(ctx context.Context, name string) error
	Counters() *engine.Counters
	Subscribe(n int) (<-chan engine.Event, func())
}

// NewEngine builds the real engine.
func NewEngine(cfg engine.Config) (Engine, error) { return engine.New(cfg) }

// errStopped is returned by calls made while no engine runs.
var errStopped = errors.New("the dataplane is not running")

// Dataplane runs one engine at a time and can replace it with another
// built from a new configuration. It forwards every engine's events to
// one function, so subscribers do not notice the swap. It implements
// api.Dataplane.
type Dataplane struct {
	newEngine func(engine.Config) (Engine, error)
	onEvent   func(engine.Event)

	mu       sync.RWMutex
	eng      Engine
	cfg      engine.Config
	stop     func() error // stops the running engine and its forwarder
	restarts int
	failed   chan error // an engine's Run error when it stopped by itself
}

// NewDataplane returns a Dataplane that builds engines with newEngine
// (NewEngine for the real one) and passes their events to onEvent.
func NewDataplane(newEngine func(engine.Config) (Engine, error), onEvent func(engine.Event)) *Dataplane {
	return &Dataplane{newEngine: newEngine, onEvent: onEvent, failed: make(chan error, 1)}
}

// Start builds and runs the first engine.
func (d *Dataplane) Start(cfg engine.Config) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.startLocked(cfg)
}

func (d *Dataplane) startLocked(cfg engine.Config) error {
	eng, err := d.newEngine(cfg)
	if err != nil {
		return err
	}
	events, unsubscribe := eng.Subscribe(4096)
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	var runErr error
	go func() {
		runErr = eng.Run(ctx)
		if ctx.Err() == nil {
			// Not stopped by us: the engine failed.
			if runErr == nil {
				runErr = errors.New("the dataplane stopped")
			}
			select {
			case d.failed <- runErr:
			default:
			}
		}
		close(runDone)
	}()
	fwdDone := make(chan struct{})
	go func() {
		defer close(fwdDone)
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					return // unsubscribed
				}
				d.onEvent(ev)
			case <-runDone:
				// Deliver what the engine published before it stopped.
				for {
					select {
					case ev, ok := <-events:
						if !ok {
							return
						}
						d.onEvent(ev)
					default:
						return
					}
				}
			}
		}
	}()
	d.eng, d.cfg = eng, cfg
	d.stop = func() error {
		cancel()
		<-runDone
		unsubscribe()
		<-fwdDone
		eng.Close()
		return runErr
	}
	return nil
}

// reconfigurer is an engine that can take a new configuration live
// (*engine.Engine is one).
type reconfigurer interface {
	Reconfigure(ctx context.Context, cfg engine.Config) error
}

// Apply puts cfg into effect: live, keeping every connection the change
// does not concern, when the engine can (engine.Engine.Reconfigure), else
// by Restart. It reports whether the engine was restarted.
func (d *Dataplane) Apply(ctx context.Context, cfg engine.Config) (restarted bool, err error) {
	d.mu.Lock()
	eng := d.eng
	d.mu.Unlock()
	if rc, ok := eng.(reconfigurer); ok {
		err := rc.Reconfigure(ctx, cfg)
		if err == nil {
			d.mu.Lock()
			d.cfg = cfg
			d.mu.Unlock()
			return false, nil
		}
		if !errors.Is(err, engine.ErrRestartNeeded) {
			return false, err
		}
	}
	return true, d.Restart(cfg)
}

// Restart replaces the engine with one built from cfg. If that fails, an
// engine with the previous configuration is started again and the error
// returned. Live connections are dropped either way.
func (d *Dataplane) Restart(cfg engine.Config) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	old := d.cfg
	if d.stop != nil {
		d.stop()
		d.eng, d.stop = nil, nil
	}
	d.restarts++
	if err := d.startLocked(cfg); err != nil {
		if rerr := d.startLocked(old); rerr != nil {
			return fmt.Errorf("%w; restarting with the previous configuration also failed: %v", err, rerr)
		}
		return err
	}
	return nil
}

// Stop stops the engine; it returns the engine's Run error.
func (d *Dataplane) Stop() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stop == nil {
		return nil
	}
	err := d.stop()
	d.eng, d.stop = nil, nil
	return err
}

// Failed returns a channel that yields an engine's Run error when it
// stops by itself (not through Stop or Restart).
func (d *Dataplane) Failed() <-chan error { return d.failed }

func (d *Dataplane) current() (Engine, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.eng == nil {
		return nil, errStopped
	}
	return d.eng, nil
}

// Snapshot implements api.Dataplane.
func (d *Dataplane) Snapshot(ctx context.Context, maxConns int) (engine.Snapshot, error) {
	e, err := d.current()
	if err != nil {
		return engine.Snapshot{}, err
	}
	return e.Snapshot(ctx, maxConns)
}

// SetAdmin implements api.Dataplane.
func (d *Dataplane) SetAdmin(ctx context.Context, name string, a engine.Admin) error {
	e, err := d.current()
	if err != nil {
		return err
	}
	return e.SetAdmin(ctx, name, a)
}

// Promote implements api.Dataplane.
func (d *Dataplane) Promote(ctx context.Context, name string) error {
	e, err := d.current()
	if err != nil {
		return err
	}
	return e.Promote(ctx, name)
}

// SetReady reports a replica's state-hook outcome to the running engine.
func (d *Dataplane) SetReady(ctx context.Context, name string, ok bool) error {
	eng, err := d.current()
	if err != nil {
		return err
	}
	r, isReadier := eng.(interface {
		SetReady(context.Context, string, bool) error
	})
	if !isReadier {
		return errors.New("the dataplane does not gate replicas")
	}
	return r.SetReady(ctx, name, ok)
}

// Rejoin asks the running engine to bring a replica into its live
// connections (manual rejoin).
func (d *Dataplane) Rejoin(ctx context.Context, name string) (int, error) {
	eng, err := d.current()
	if err != nil {
		return 0, err
	}
	r, ok := eng.(interface {
		Rejoin(context.Context, string) (int, error)
	})
	if !ok {
		return 0, errors.New("the dataplane cannot rejoin replicas")
	}
	return r.Rejoin(ctx, name)
}

// Counters implements api.Dataplane. While no engine runs it returns zero
// counters.
func (d *Dataplane) Counters() *engine.Counters {
	e, err := d.current()
	if err != nil {
		return &engine.Counters{}
	}
	return e.Counters()
}

// Restarts implements api.Dataplane.
func (d *Dataplane) Restarts() int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.restarts
}
