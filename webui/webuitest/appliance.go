package webuitest

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/ftbridge/ftbridge/firmware/api"
	"github.com/ftbridge/ftbridge/firmware/auth"
	"github.com/ftbridge/ftbridge/firmware/config"
	"github.com/ftbridge/ftbridge/firmware/events"
	"github.com/ftbridge/ftbridge/webui"
)

// Options configure Start.
type Options struct {
	// Dataplane is what the API drives: a fake or the real engine.
	Dataplane api.Dataplane
	// Config is the initial configuration document (JSON).
	Config string
	// Password, if set, is the admin password (as if an operator wrote
	// DATA/admin-password before the first start); empty lets the
	// appliance generate one, which the dashboard asks to change.
	Password string
	// Applier puts configuration changes into effect; nil accepts them and
	// reports a dataplane restart when the dataplane part changed.
	Applier config.Applier
	// Version is the firmware version shown.
	Version string
	// Reboot and FactoryReset, if set, are the system actions.
	Reboot, FactoryReset func() error
	// Updater, if set, installs firmware bundles (uploads are kept in a
	// directory of the appliance's).
	Updater api.Updater
}

// Appliance is a running management plane with the dashboard, served over
// HTTPS on loopback (the session cookie is Secure).
type Appliance struct {
	URL      string
	Password string
	Dir      string
	Events   *events.Store
	Config   *config.Store
	Auth     *auth.Auth
	API      *api.Server
	Server   *httptest.Server
}

// Start assembles and serves the management plane; everything stops when
// the test ends.
func Start(t testing.TB, o Options) *Appliance {
	t.Helper()
	a := &Appliance{Dir: t.TempDir()}
	cfgPath := filepath.Join(a.Dir, "config.json")
	if err := os.WriteFile(cfgPath, []byte(o.Config), 0o600); err != nil {
		t.Fatal(err)
	}
	var err error
	if a.Events, err = events.Open(events.Options{Dir: filepath.Join(a.Dir, "events"), MaxEvents: 10000}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Events.Close() })
	if a.Config, err = config.OpenStore(config.StoreOptions{Path: cfgPath, Dir: filepath.Join(a.Dir, "config"), Event: func(kind, detail string) {
		a.Events.Add(events.Event{Kind: kind, Detail: detail})
	}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Config.Close)
	applier := o.Applier
	if applier == nil {
		applier = func(old, new *config.Config) (bool, error) { return !config.DataplaneEqual(old, new), nil }
	}
	a.Config.SetApplier(applier)
	if o.Password != "" {
		if err := os.WriteFile(filepath.Join(a.Dir, auth.PasswordFile), []byte(o.Password+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The lowest bcrypt cost: tests log in many times.
	if a.Auth, err = auth.Open(auth.Options{Dir: a.Dir, Cost: bcrypt.MinCost}); err != nil {
		t.Fatal(err)
	}
	pw, err := os.ReadFile(filepath.Join(a.Dir, auth.PasswordFile))
	if err != nil {
		t.Fatal(err)
	}
	a.Password = strings.TrimSpace(string(pw))
	certs, err := auth.OpenCertStore(filepath.Join(a.Dir, "tls"))
	if err != nil {
		t.Fatal(err)
	}
	version := o.Version
	if version == "" {
		version = "0.0.0-test"
	}
	a.API = api.New(api.Options{
		Dataplane: o.Dataplane, Config: a.Config, Events: a.Events, Auth: a.Auth, Certs: certs,
		UI: webui.Handler(), Version: version, Reboot: o.Reboot, FactoryReset: o.FactoryReset,
		Started: time.Now().Add(-42 * time.Minute),
		Updater: o.Updater, UpdateDir: filepath.Join(a.Dir, "update"),
	})
	a.Events.Add(events.Event{Kind: "daemon-started", Detail: "version " + version})
	a.Server = httptest.NewTLSServer(a.API.Handler())
	a.URL = a.Server.URL
	t.Cleanup(func() {
		a.API.Close()
		a.Server.CloseClientConnections()
		a.Server.Close()
	})
	return a
}
