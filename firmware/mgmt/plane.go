package mgmt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/engine"
	"github.com/ftbridge/ftbridge/firmware/api"
	"github.com/ftbridge/ftbridge/firmware/auth"
	"github.com/ftbridge/ftbridge/firmware/config"
	"github.com/ftbridge/ftbridge/firmware/events"
	"github.com/ftbridge/ftbridge/firmware/sysd"
)

// DefaultDataDir is the data directory when the configuration has a
// management section and no --data-dir is given.
const DefaultDataDir = "/var/lib/ftbridge"

// Options configure Start.
type Options struct {
	// ConfigPath is the configuration file (ftbridged --config).
	ConfigPath string
	// DataDir holds the management plane's state.
	DataDir string
	// Version is the firmware version the API reports.
	Version string
	// UI serves the static dashboard at /; nil serves nothing there.
	UI http.Handler
	// Logf writes a line to the daemon's log.
	Logf func(format string, args ...any)
	// OnEvent, if set, sees every dataplane event (the daemon logs them).
	OnEvent func(engine.Event)
	// NewEngine builds engines; nil means the real one.
	NewEngine func(engine.Config) (Engine, error)
	// Reboot reboots the appliance; nil runs `systemctl reboot`.
	Reboot func() error
	// Updater installs firmware bundles; nil means RAUC when the system
	// has it set up (/etc/rauc/system.conf), else updates answer 503.
	Updater api.Updater

	// listen opens listeners; tests map addresses to free ports.
	listen func(network, addr string) (net.Listener, error)
}

// Plane is a running management plane with its dataplane.
type Plane struct {
	o      Options
	Config *config.Store
	Events *events.Store
	Auth   *auth.Auth
	Certs  *auth.CertStore
	DP     *Dataplane
	API    *api.Server

	mu        sync.Mutex
	listeners map[string]*listener // by role: "https", "http"
	stopWD    context.CancelFunc
	wdDone    chan struct{}
	stopUpd   context.CancelFunc
	updDone   chan struct{}
	closed    bool
}

type listener struct {
	addr string
	ln   net.Listener
	srv  *http.Server
}

// Start opens the stores, starts the dataplane and the API listeners and
// tells systemd it is ready.
func Start(o Options) (_ *Plane, err error) {
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.NewEngine == nil {
		o.NewEngine = NewEngine
	}
	if o.listen == nil {
		o.listen = net.Listen
	}
	if o.Reboot == nil {
		o.Reboot = func() error { return exec.Command("systemctl", "reboot").Run() }
	}
	if o.Updater == nil {
		o.Updater = systemUpdater()
	}
	p := &Plane{o: o, listeners: map[string]*listener{}}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, err
	}
	// The event log first, so that the configuration's fallback events are
	// recorded. Its bound comes from the configuration read just after.
	if p.Events, err = events.Open(events.Options{Dir: filepath.Join(o.DataDir, "events")}); err != nil {
		return nil, fmt.Errorf("event log: %w", err)
	}
	if p.Config, err = config.OpenStore(config.StoreOptions{Path: o.ConfigPath, Dir: filepath.Join(o.DataDir, "config"), Event: p.configEvent}); err != nil {
		return nil, err
	}
	cur := p.Config.Current()
	ms := cur.Config.ManagementSettings()
	p.Events.SetMax(ms.MaxEvents)
	o.Logf("configuration version %d (%s)", cur.Version, cur.Source)
	_, pwErr := os.Stat(filepath.Join(o.DataDir, auth.PasswordFile))
	if p.Auth, err = auth.Open(auth.Options{Dir: o.DataDir, SessionTTL: time.Duration(ms.SessionTimeout)}); err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	if os.IsNotExist(pwErr) {
		if _, err := os.Stat(filepath.Join(o.DataDir, auth.PasswordFile)); err == nil {
			// Never the password itself: logs travel.
			o.Logf("generated the admin password; it is in %s", filepath.Join(o.DataDir, auth.PasswordFile))
		}
	}
	host, _, _ := net.SplitHostPort(ms.Listen)
	if p.Certs, err = auth.OpenCertStore(filepath.Join(o.DataDir, "tls"), host); err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	p.DP = NewDataplane(o.NewEngine, p.dataplaneEvent)
	if err := p.DP.Start(cur.Config.Dataplane()); err != nil {
		return nil, err
	}
	p.API = api.New(api.Options{
		Dataplane: p.DP, Config: p.Config, Events: p.Events, Auth: p.Auth, Certs: p.Certs, UI: o.UI,
		Reboot: o.Reboot, FactoryReset: p.factoryReset, Version: o.Version,
		Updater: o.Updater, UpdateDir: filepath.Join(o.DataDir, "update"),
	})
	if err := p.listenAll(cur.Config); err != nil {
		return nil, err
	}
	p.Config.SetApplier(p.apply)
	// READY only once the loop answers: the engine is really running.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_, err = p.DP.Snapshot(ctx, 0)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("the dataplane did not start: %w", err)
	}
	p.Events.Add(events.Event{Kind: "daemon-started", Detail: fmt.Sprintf("version %s, configuration %d", o.Version, cur.Version)})
	sysd.Ready()
	sysd.Status("%s", p.statusText(true))
	uctx, ucancel := context.WithCancel(context.Background())
	p.stopUpd, p.updDone = ucancel, make(chan struct{})
	go func() {
		defer close(p.updDone)
		p.watchUpdateEvents(uctx, 5*time.Second)
	}()
	wctx, wcancel := context.WithCancel(context.Background())
	p.stopWD, p.wdDone = wcancel, make(chan struct{})
	go func() {
		defer close(p.wdDone)
		w := &sysd.Watchdog{
			Check:  func(ctx context.Context) error { _, err := p.DP.Snapshot(ctx, 0); return err },
			Status: p.statusText,
		}
		w.Run(wctx)
	}()
	return p, nil
}

// statusText is the systemd status line.
func (p *Plane) statusText(healthy bool) string {
	if !healthy {
		return "dataplane not answering"
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	snap, err := p.DP.Snapshot(ctx, 0)
	if err != nil {
		return "dataplane not answering"
	}
	up := 0
	for _, r := range snap.Replicas {
		if r.Up {
			up++
		}
	}
	return fmt.Sprintf("%d/%d replicas up, %d connections, %d failovers; API on %s", up, len(snap.Replicas), snap.Connections, snap.Failovers, p.Addrs())
}

// Addrs returns the listening addresses, HTTPS first.
func (p *Plane) Addrs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, role := range []string{"https", "http"} {
		if l := p.listeners[role]; l != nil {
			out = append(out, l.ln.Addr().String())
		}
	}
	return out
}

// listenAll opens (or reopens) the listeners for cfg's management settings.
// New listeners are opened before old ones close, so a failure leaves the
// old ones serving.
func (p *Plane) listenAll(cfg *config.Config) error {
	ms := cfg.ManagementSettings()
	want := map[string]string{"https": ms.Listen}
	if ms.HTTPListen != "" {
		want["http"] = ms.HTTPListen
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	opened := map[string]*listener{}
	for role, addr := range want {
		if l := p.listeners[role]; l != nil && l.addr == addr {
			continue
		}
		ln, err := p.o.listen("tcp", addr)
		if err != nil {
			for _, l := range opened {
				l.ln.Close()
			}
			return fmt.Errorf("management %s listener: %w", role, err)
		}
		srv := &http.Server{
			Handler:           p.API.Handler(),
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          nil,
		}
		if role == "https" {
			srv.TLSConfig = p.Certs.TLSConfig()
			ln = tls.NewListener(ln, srv.TLSConfig)
		}
		opened[role] = &listener{addr: addr, ln: ln, srv: srv}
	}
	for role, l := range p.listeners {
		if _, keep := want[role]; keep && opened[role] == nil {
			continue
		}
		// Closing the listener, not the server: requests in flight (the
		// one that changed the address) finish.
		l.ln.Close()
		delete(p.listeners, role)
	}
	for role, l := range opened {
		p.listeners[role] = l
		go l.srv.Serve(l.ln)
		p.o.Logf("management API: %s on %s", role, l.ln.Addr())
	}
	return nil
}

// apply puts a configuration into effect (config.Applier).
func (p *Plane) apply(old, new *config.Config) (bool, error) {
	ms := new.ManagementSettings()
	if err := p.listenAll(new); err != nil {
		return false, err
	}
	p.Auth.SetSessionTTL(time.Duration(ms.SessionTimeout))
	p.Events.SetMax(ms.MaxEvents)
	if config.DataplaneEqual(old, new) {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	restarted, err := p.DP.Apply(ctx, new.Dataplane())
	if restarted {
		p.o.Logf("configuration changed: the dataplane was restarted")
	} else if err == nil {
		p.o.Logf("configuration changed: applied to the running dataplane")
	}
	return restarted, err
}

// dataplaneEvent records an engine event and passes it on.
func (p *Plane) dataplaneEvent(ev engine.Event) {
	p.Events.Add(events.Event{
		Time: ev.Time, Kind: string(ev.Kind), Replica: ev.Replica, From: ev.From, Conn: ev.Conn,
		Port: ev.Port, Reason: ev.Reason, Offset: ev.Offset, StallMS: ev.StallMS, Detail: ev.Detail,
	})
	if p.o.OnEvent != nil {
		p.o.OnEvent(ev)
	}
}

func (p *Plane) configEvent(kind, detail string) {
	p.o.Logf("%s detail=%s", kind, detail)
	if p.Events != nil {
		p.Events.Add(events.Event{Kind: kind, Detail: detail})
	}
}

// factoryReset erases the management state and reboots.
func (p *Plane) factoryReset() error {
	for _, name := range []string{"config", "events", "tls", "auth.json", auth.PasswordFile} {
		if err := os.RemoveAll(filepath.Join(p.o.DataDir, name)); err != nil {
			return err
		}
	}
	return p.o.Reboot()
}

// Close stops the API, the watchdog and the dataplane, and closes the
// stores. It returns the dataplane's Run error.
func (p *Plane) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	sysd.Stopping()
	if p.stopWD != nil {
		p.stopWD()
		<-p.wdDone
	}
	if p.stopUpd != nil {
		p.stopUpd()
		<-p.updDone
	}
	if p.API != nil {
		p.API.Close() // ends event streams, which Shutdown would wait for
	}
	p.mu.Lock()
	ls := p.listeners
	p.listeners = map[string]*listener{}
	p.mu.Unlock()
	for _, l := range ls {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		if err := l.srv.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			p.o.Logf("management %s listener: %v", l.addr, err)
		}
		cancel()
		l.ln.Close()
	}
	var err error
	if p.DP != nil {
		err = p.DP.Stop()
	}
	if p.Config != nil {
		p.Config.Close()
	}
	if p.Events != nil {
		p.Events.Add(events.Event{Kind: "daemon-stopped"})
		p.Events.Close()
	}
	return err
}
