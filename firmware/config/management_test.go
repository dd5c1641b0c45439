package config_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ftbridge/ftbridge/firmware/config"
)

func TestManagementSection(t *testing.T) {
	c := mustParse(t, withKey(`"management": {"listen": "198.18.0.1:443", "http_listen": "127.0.0.1:8080", "metrics_auth": false, "session_timeout": "1h", "confirm_timeout": "30s", "history": 5, "max_events": 500}`))
	m := c.ManagementSettings()
	if m.Listen != "198.18.0.1:443" || m.HTTPListen != "127.0.0.1:8080" || *m.MetricsAuth || time.Duration(m.SessionTimeout) != time.Hour ||
		time.Duration(m.ConfirmTimeout) != 30*time.Second || m.History != 5 || m.MaxEvents != 500 {
		t.Errorf("ManagementSettings = %+v", m)
	}
	// Defaults, with and without an empty section.
	for _, doc := range []string{example, withKey(`"management": {}`)} {
		m := mustParse(t, doc).ManagementSettings()
		if m.Listen != ":8443" || m.HTTPListen != "" || !*m.MetricsAuth || time.Duration(m.SessionTimeout) != 8*time.Hour ||
			time.Duration(m.ConfirmTimeout) != time.Minute || m.History != 20 || m.MaxEvents != 10000 {
			t.Errorf("defaults = %+v", m)
		}
	}
	if mustParse(t, example).Management != nil || mustParse(t, withKey(`"management": {}`)).Management == nil {
		t.Error("presence of the section is not recorded")
	}
	// The section survives a round trip and stays absent when absent.
	data, _ := c.Marshal()
	c2, err := config.Parse(data)
	if err != nil || c2.Management == nil || *c2.Management.MetricsAuth {
		t.Errorf("round trip: %v %+v", err, c2.Management)
	}
	data, _ = mustParse(t, example).Marshal()
	if strings.Contains(string(data), "management") {
		t.Errorf("absent section written:\n%s", data)
	}
}

func TestManagementErrors(t *testing.T) {
	for _, tt := range []struct{ doc, field, want string }{
		{`"management": null`, "management", "null is not allowed"},
		{`"management": []`, "management", "want an object"},
		{`"management": {"Listen": ":1"}`, "management.Listen", `unknown key (did you mean "listen"?)`},
		{`"management": {"listen": "8443"}`, "management.listen", "is not HOST:PORT"},
		{`"management": {"listen": "box:8443"}`, "management.listen", "is not an IP address"},
		{`"management": {"listen": ":0"}`, "management.listen", "is not 1 to 65535"},
		{`"management": {"listen": ":99999"}`, "management.listen", "is not 1 to 65535"},
		{`"management": {"http_listen": "0.0.0.0:80"}`, "management.http_listen", "is not a loopback address"},
		{`"management": {"http_listen": "127.0.0.1:8443"}`, "management.http_listen", "uses the port of management.listen"},
		{`"management": {"metrics_auth": "no"}`, "management.metrics_auth", "want true or false"},
		{`"management": {"metrics_auth": null}`, "management.metrics_auth", "null is not allowed"},
		{`"management": {"session_timeout": "1s"}`, "management.session_timeout", "outside the allowed range"},
		{`"management": {"confirm_timeout": "2h"}`, "management.confirm_timeout", "outside the allowed range"},
		{`"management": {"history": 1}`, "management.history", "outside the allowed range 2 to 1000"},
		{`"management": {"history": 0}`, "management.history", "0 is not allowed"},
		{`"management": {"max_events": 5}`, "management.max_events", "outside the allowed range"},
	} {
		c, err := config.Parse([]byte(withKey(tt.doc)))
		if err == nil {
			err = c.Validate()
		}
		var fe *config.FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want field %s and %q", tt.doc, err, tt.field, tt.want)
		}
	}
	// Plain HTTP elsewhere than loopback when allowed.
	mustParse(t, withKey(`"management": {"http_listen": "0.0.0.0:80", "allow_insecure_http": true}`))
	mustParse(t, withKey(`"management": {"http_listen": "[::1]:8080", "allow_insecure_http": false}`))
}

func TestDataplaneEqual(t *testing.T) {
	a := mustParse(t, example)
	b := mustParse(t, withKey(`"management": {"listen": ":9443"}, "health": {"interval": "20ms"}`))
	if !config.DataplaneEqual(a, b) {
		t.Error("management and explicit defaults count as a dataplane change")
	}
	c := mustParse(t, edit("6379", "6380"))
	if config.DataplaneEqual(a, c) {
		t.Error("a port change is not a dataplane change")
	}
}
