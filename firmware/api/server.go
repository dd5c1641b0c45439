package api

import (
	"context"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"github.com/ftbridge/ftbridge/dataplane/engine"
	"github.com/ftbridge/ftbridge/firmware/auth"
	"github.com/ftbridge/ftbridge/firmware/config"
	"github.com/ftbridge/ftbridge/firmware/events"
)

// Dataplane is what the API needs of the dataplane: *engine.Engine behind
// the management plane's restart wrapper, or a fake in tests.
type Dataplane interface {
	// Snapshot returns the dataplane's state with up to maxConns
	// connections.
	Snapshot(ctx context.Context, maxConns int) (engine.Snapshot, error)
	// SetAdmin changes a replica's operator setting.
	SetAdmin(ctx context.Context, name string, a engine.Admin) error
	// Promote makes a replica the preferred primary.
	Promote(ctx context.Context, name string) error
	// Counters returns the live counters.
	Counters() *engine.Counters
	// Restarts counts in-process dataplane restarts (configuration changes).
	Restarts() int
}

// Options configure New. Dataplane, Config, Events and Auth are required.
type Options struct {
	Dataplane Dataplane
	Config    *config.Store
	Events    *events.Store
	Auth      *auth.Auth
	// Certs is the HTTPS certificate store, for /system/tls; nil answers
	// 503 there.
	Certs *auth.CertStore
	// UI, if set, serves everything outside /api/ and /metrics, without
	// authentication (the static dashboard).
	UI http.Handler
	// Reboot and FactoryReset run after their answer is sent. Nil answers
	// 503.
	Reboot       func() error
	FactoryReset func() error
	// Updater installs firmware bundles and reports the boot slots; nil
	// answers 503 on /system/update (POST) and /system/slots.
	Updater Updater
	// UpdateDir is where uploaded bundles are kept while RAUC installs
	// them: on the data partition, since RAM is smaller than a bundle.
	// Created 0700; required with Updater.
	UpdateDir string
	// MaxBundle bounds an uploaded bundle; zero means DefaultMaxBundle.
	MaxBundle int64
	// Version is the firmware version reported by /status.
	Version string
	// Started is when the daemon started; zero means now.
	Started time.Time
}

// Server is the management API.
type Server struct {
	o       Options
	router  *mux.Router
	routes  []Route
	metrics *metrics
	now     func() time.Time
	// sseKeepalive is the interval of keep-alive comments on event streams.
	sseKeepalive time.Duration
	// afterResponse runs reboot and reset hooks; tests make it synchronous.
	afterResponse func(func())

	// upd is the firmware install's state (one at a time).
	upd updates
	// uploadIdle cuts off an upload that sends nothing for this long.
	uploadIdle time.Duration

	mu     sync.Mutex
	closed bool
	stop   context.CancelFunc
	ctx    context.Context
}

// Route is one registered route, for tests and documentation.
type Route struct {
	Method, Path string
	// Public routes need no credentials.
	Public bool
}

// New builds the API server.
func New(o Options) *Server {
	if o.Started.IsZero() {
		o.Started = time.Now()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		o: o, now: time.Now, sseKeepalive: 15 * time.Second, ctx: ctx, stop: cancel, uploadIdle: uploadIdle,
		afterResponse: func(f func()) { time.AfterFunc(200*time.Millisecond, f) },
	}
	s.upd.st.State = UpdateIdle
	if o.UpdateDir != "" {
		removeStaleBundles(o.UpdateDir)
	}
	s.metrics = newMetrics(s)
	s.router = s.buildRouter()
	return s
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s }

// Routes lists the registered routes.
func (s *Server) Routes() []Route { return append([]Route(nil), s.routes...) }

// Close ends event streams and the metrics' event subscription.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.stop()
		s.metrics.close()
	}
}

// ServeHTTP adds the security headers every answer carries and routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	if r.TLS != nil {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	s.router.ServeHTTP(w, r)
}

// handle registers a route; every route not marked public goes through
// authentication.
func (s *Server) handle(r *mux.Router, method, path string, public bool, h http.HandlerFunc) {
	var handler http.Handler = h
	if !public {
		handler = s.authenticate(h)
	}
	r.Handle(path, handler).Methods(method)
	s.routes = append(s.routes, Route{Method: method, Path: path, Public: public})
}

func (s *Server) buildRouter() *mux.Router {
	r := mux.NewRouter()
	// An unclean path (an empty name: /replicas//promote) gets the JSON 404,
	// not mux's bodiless 301 to the cleaned path, which most clients
	// would follow as a GET of a different route.
	r.SkipClean(true)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, codeNotFound, "", "no route %s", r.URL.Path)
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, codeMethod, "", "%s is not allowed on %s", r.Method, r.URL.Path)
	})
	const v1 = "/api/v1"
	for _, rt := range []struct {
		method, path string
		public       bool
		h            http.HandlerFunc
	}{
		{"GET", v1 + "/health", true, s.handleHealth},
		{"POST", v1 + "/auth/login", true, s.handleLogin},
		{"POST", v1 + "/auth/logout", false, s.handleLogout},
		{"GET", v1 + "/auth/session", false, s.handleSession},
		{"GET", v1 + "/openapi.json", false, s.handleOpenAPI},
		{"GET", v1 + "/status", false, s.handleStatus},
		{"GET", v1 + "/replicas", false, s.handleReplicas},
		{"GET", v1 + "/replicas/{name}", false, s.handleReplica},
		{"POST", v1 + "/replicas/{name}/drain", false, s.replicaAction("drain")},
		{"POST", v1 + "/replicas/{name}/disable", false, s.replicaAction("disable")},
		{"POST", v1 + "/replicas/{name}/enable", false, s.replicaAction("enable")},
		{"POST", v1 + "/replicas/{name}/promote", false, s.replicaAction("promote")},
		{"POST", v1 + "/replicas/{name}/rejoin", false, s.replicaAction("rejoin")},
		{"GET", v1 + "/connections", false, s.handleConnections},
		{"GET", v1 + "/connections/{id}", false, s.handleConnection},
		{"GET", v1 + "/events", false, s.handleEvents},
		{"GET", v1 + "/events/stream", false, s.handleEventStream},
		{"GET", v1 + "/config", false, s.handleConfigGet},
		{"PUT", v1 + "/config", false, s.handleConfigPut},
		{"POST", v1 + "/config/validate", false, s.handleConfigValidate},
		{"POST", v1 + "/config/confirm", false, s.handleConfigConfirm},
		{"GET", v1 + "/config/history", false, s.handleConfigHistory},
		{"GET", v1 + "/config/history/{version}", false, s.handleConfigVersion},
		{"POST", v1 + "/config/rollback", false, s.handleConfigRollback},
		{"POST", v1 + "/system/reboot", false, s.handleReboot},
		{"POST", v1 + "/system/factory-reset", false, s.handleFactoryReset},
		{"PUT", v1 + "/system/password", false, s.handlePassword},
		{"GET", v1 + "/system/tokens", false, s.handleTokens},
		{"POST", v1 + "/system/tokens", false, s.handleTokenCreate},
		{"DELETE", v1 + "/system/tokens/{id}", false, s.handleTokenRevoke},
		{"GET", v1 + "/system/tls", false, s.handleTLSGet},
		{"PUT", v1 + "/system/tls", false, s.handleTLSPut},
		{"GET", v1 + "/system/update", false, s.handleUpdateGet},
		{"POST", v1 + "/system/update", false, s.handleUpdatePost},
		{"GET", v1 + "/system/slots", false, s.handleSlots},
	} {
		s.handle(r, rt.method, rt.path, rt.public, rt.h)
	}
	// /metrics decides about authentication per request: the setting can
	// change while the server runs.
	r.Handle("/metrics", http.HandlerFunc(s.handleMetrics)).Methods("GET")
	s.routes = append(s.routes, Route{Method: "GET", Path: "/metrics"})
	if s.o.UI != nil {
		ui := s.o.UI
		// The matcher comes first: a matching PathPrefix would clear the
		// method mismatch of an API route, turning 405s into 404s.
		r.MatcherFunc(func(r *http.Request, _ *mux.RouteMatch) bool {
			return !strings.HasPrefix(r.URL.Path, "/api/") && r.URL.Path != "/metrics"
		}).PathPrefix("/").Handler(ui)
	}
	return r
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// settings returns the management settings in force.
func (s *Server) settings() config.Management {
	cur := s.o.Config.Current()
	return cur.Config.ManagementSettings()
}

// event records a management event with the caller's identity.
func (s *Server) event(r *http.Request, ev events.Event) {
	if p := principalOf(r); p != nil && ev.User == "" {
		ev.User = p.User
	}
	if ev.Remote == "" {
		ev.Remote = clientAddr(r)
	}
	s.o.Events.Add(ev)
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}
