package config

import (
	"net"
	"net/netip"
	"strconv"
	"time"
)

// Management configures the management plane: where the API is served, how
// it authenticates and how much history it keeps. Every field is optional.
type Management struct {
	// Listen is where HTTPS is served, "HOST:PORT". Default ":8443".
	Listen string `json:"listen,omitempty"`
	// HTTPListen, when set, also serves plain HTTP there. Only a loopback
	// address is accepted unless AllowInsecureHTTP is set.
	HTTPListen string `json:"http_listen,omitempty"`
	// AllowInsecureHTTP permits HTTPListen on a non-loopback address.
	AllowInsecureHTTP bool `json:"allow_insecure_http,omitempty"`
	// MetricsAuth says whether /metrics needs credentials. Default true.
	MetricsAuth *bool `json:"metrics_auth,omitempty"`
	// SessionTimeout is the idle lifetime of a browser session. Default 8h.
	SessionTimeout Duration `json:"session_timeout,omitempty"`
	// ConfirmTimeout is the default time to confirm a configuration
	// change before it is rolled back. Default 60s.
	ConfirmTimeout Duration `json:"confirm_timeout,omitempty"`
	// History is how many applied configuration versions are kept.
	// Default 20.
	History int `json:"history,omitempty"`
	// MaxEvents is how many events the event log keeps. Default 10000.
	MaxEvents int `json:"max_events,omitempty"`
}

// Management defaults.
const (
	DefaultListen         = ":8443"
	DefaultSessionTimeout = 8 * time.Hour
	DefaultConfirmTimeout = 60 * time.Second
	DefaultHistory        = 20
	DefaultMaxEvents      = 10000
)

// Bounds of the management settings.
const (
	minSessionTimeout, maxSessionTimeout = time.Minute, 30 * 24 * time.Hour
	minConfirmTimeout, maxConfirmTimeout = 5 * time.Second, time.Hour
	minHistory, maxHistory               = 2, 1000
	minMaxEvents, maxMaxEvents           = 100, 1000000
)

// ManagementSettings returns c's management settings with every default
// filled in; a document without a management section gets all defaults.
func (c *Config) ManagementSettings() Management {
	var m Management
	if c.Management != nil {
		m = *c.Management
	}
	if m.Listen == "" {
		m.Listen = DefaultListen
	}
	if m.MetricsAuth == nil {
		t := true
		m.MetricsAuth = &t
	}
	if m.SessionTimeout <= 0 {
		m.SessionTimeout = Duration(DefaultSessionTimeout)
	}
	if m.ConfirmTimeout <= 0 {
		m.ConfirmTimeout = Duration(DefaultConfirmTimeout)
	}
	if m.History <= 0 {
		m.History = DefaultHistory
	}
	if m.MaxEvents <= 0 {
		m.MaxEvents = DefaultMaxEvents
	}
	return m
}

func (c *Config) validateManagement() error {
	m := c.Management
	if m == nil {
		return nil
	}
	if m.Listen != "" {
		if err := checkListen("management.listen", m.Listen); err != nil {
			return err
		}
	}
	if m.HTTPListen != "" {
		if err := checkListen("management.http_listen", m.HTTPListen); err != nil {
			return err
		}
		if !m.AllowInsecureHTTP && !IsLoopbackListen(m.HTTPListen) {
			return fieldErr("management.http_listen", "%q is not a loopback address; plain HTTP elsewhere needs \"allow_insecure_http\": true", m.HTTPListen)
		}
		listen := m.Listen
		if listen == "" {
			listen = DefaultListen
		}
		if samePort(listen, m.HTTPListen) {
			return fieldErr("management.http_listen", "%q uses the port of management.listen (%s)", m.HTTPListen, listen)
		}
	}
	durations := []struct {
		field    string
		v        Duration
		min, max time.Duration
	}{
		{"management.session_timeout", m.SessionTimeout, minSessionTimeout, maxSessionTimeout},
		{"management.confirm_timeout", m.ConfirmTimeout, minConfirmTimeout, maxConfirmTimeout},
	}
	for _, d := range durations {
		if err := checkRange(d.field, int64(d.v), int64(d.min), int64(d.max), func(v int64) string { return time.Duration(v).String() }); err != nil {
			return err
		}
	}
	ints := []struct {
		field    string
		v        int
		min, max int
	}{
		{"management.history", m.History, minHistory, maxHistory},
		{"management.max_events", m.MaxEvents, minMaxEvents, maxMaxEvents},
	}
	for _, n := range ints {
		if n.v != 0 && (n.v < n.min || n.v > n.max) {
			return fieldErr(n.field, "%d is outside the allowed range %d to %d", n.v, n.min, n.max)
		}
	}
	return nil
}

// checkListen checks a "HOST:PORT" listen address: HOST empty (every
// address), an IP address or "localhost"; PORT 1 to 65535.
func checkListen(field, s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fieldErr(field, "%q is not HOST:PORT (examples: \":8443\", \"127.0.0.1:8080\", \"[::1]:8080\")", s)
	}
	if host != "" && host != "localhost" {
		if _, err := netip.ParseAddr(host); err != nil {
			return fieldErr(field, "%q: host %q is not an IP address (names other than localhost are not resolved)", s, host)
		}
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return fieldErr(field, "%q: port %q is not 1 to 65535", s, port)
	}
	return nil
}

// IsLoopbackListen reports whether listen address s ("HOST:PORT") can only
// be reached from the box itself.
func IsLoopbackListen(s string) bool {
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// samePort reports whether two listen addresses would collide: the same
// port with the same host or a wildcard host on either side.
func samePort(a, b string) bool {
	ha, pa, _ := net.SplitHostPort(a)
	hb, pb, _ := net.SplitHostPort(b)
	if pa != pb {
		return false
	}
	return ha == hb || ha == "" || hb == "" || ha == "0.0.0.0" || hb == "0.0.0.0" || ha == "::" || hb == "::"
}
