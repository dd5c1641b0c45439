package api

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ftbridge/ftbridge/firmware/config"
	"github.com/ftbridge/ftbridge/firmware/events"
)

func docWithPorts(ports string) string {
	return strings.Replace(testDoc, "[7000, 80]", ports, 1)
}

func TestConfigGetValidate(t *testing.T) {
	e := newEnv(t, nil)
	var st ConfigState
	e.must(req{method: "GET", path: "/api/v1/config"}, 200).json(t, &st)
	if st.Version != 1 || st.Source != config.SourceFile || st.Config.Uplink != "port0" || st.Pending != nil {
		t.Errorf("config %+v", st)
	}
	var v struct {
		Valid bool
		Error ErrorBody
	}
	e.must(req{method: "POST", path: "/api/v1/config/validate", body: docWithPorts("[7000, 7000]")}, 200).json(t, &v)
	if v.Valid || v.Error.Error.Field != "services[0].ports[1]" {
		t.Errorf("validate: %+v", v)
	}
	e.must(req{method: "POST", path: "/api/v1/config/validate", body: testDoc}, 200).json(t, &v)
	if !v.Valid {
		t.Error("valid document refused")
	}
}

func TestConfigSafeApply(t *testing.T) {
	e := newEnv(t, nil)
	// Invalid: 422 naming the field; nothing applied.
	res := e.must(req{method: "PUT", path: "/api/v1/config", body: docWithPorts("[0]")}, 422)
	if d := res.errCode(t); d.Code != codeInvalidConfig || d.Field != "services[0].ports[0]" {
		t.Errorf("invalid: %+v", d)
	}
	e.must(req{method: "PUT", path: "/api/v1/config?confirm_timeout=forever", body: testDoc}, 400)
	var ar config.ApplyResult
	e.must(req{method: "PUT", path: "/api/v1/config?confirm_timeout=1m&comment=more", body: docWithPorts("[7000, 80, 443]")}, 200).json(t, &ar)
	if ar.Version != 2 || ar.Pending == nil || ar.Pending.Previous != 1 || !ar.DataplaneRestarted {
		t.Fatalf("apply: %+v", ar)
	}
	e.must(req{method: "PUT", path: "/api/v1/config", body: docWithPorts("[1]")}, 409).errCode(t)
	var st ConfigState
	e.must(req{method: "GET", path: "/api/v1/config"}, 200).json(t, &st)
	if st.Pending == nil || st.Version != 2 || st.Comment != "more" {
		t.Errorf("pending state %+v", st)
	}
	e.must(req{method: "POST", path: "/api/v1/config/confirm"}, 200).json(t, &st)
	if st.Pending != nil || st.Version != 2 {
		t.Errorf("after confirm %+v", st)
	}
	e.must(req{method: "POST", path: "/api/v1/config/confirm"}, 409)
	// Without confirmation, the change rolls back by itself.
	e.must(req{method: "PUT", path: "/api/v1/config?confirm_timeout=100ms", body: docWithPorts("[9999]")}, 200).json(t, &ar)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && e.cfg.Current().Version != 4 {
		time.Sleep(10 * time.Millisecond)
	}
	if cur := e.cfg.Current(); cur.Version != 4 || cur.Source != config.SourceAutoRollback || fmt.Sprint(cur.Config.Services[0].Ports) != "[7000 80 443]" {
		t.Fatalf("no automatic rollback: %+v", cur)
	}
	if evs := e.events.Query(events.Query{Kinds: []string{"config-rolled-back"}}); len(evs) != 1 {
		t.Errorf("rollback events %+v", evs)
	}
	// History and rollback.
	var h struct{ Versions []config.Entry }
	e.must(req{method: "GET", path: "/api/v1/config/history"}, 200).json(t, &h)
	if len(h.Versions) != 4 || h.Versions[0].Version != 4 {
		t.Errorf("history %+v", h)
	}
	var one config.Entry
	e.must(req{method: "GET", path: "/api/v1/config/history/1"}, 200).json(t, &one)
	if fmt.Sprint(one.Config.Services[0].Ports) != "[7000 80]" {
		t.Errorf("version 1: %+v", one)
	}
	e.must(req{method: "GET", path: "/api/v1/config/history/99"}, 404)
	e.must(req{method: "GET", path: "/api/v1/config/history/x"}, 400)
	e.must(req{method: "POST", path: "/api/v1/config/rollback", body: `{"version": 1}`}, 200).json(t, &ar)
	if ar.Version != 5 || ar.Pending != nil {
		t.Errorf("rollback: %+v", ar)
	}
	e.must(req{method: "POST", path: "/api/v1/config/rollback", body: `{"version": 77}`}, 404)
	e.must(req{method: "POST", path: "/api/v1/config/rollback"}, 200) // the one before
	e.must(req{method: "POST", path: "/api/v1/config/rollback", body: `{"version": -1}`}, 400)
	// A failing apply is reported and changes nothing.
	e.mu.Lock()
	e.applyErr = errTest
	e.mu.Unlock()
	before := e.cfg.Current().Version
	e.must(req{method: "PUT", path: "/api/v1/config?confirm_timeout=0s", body: docWithPorts("[12345]")}, 500).errCode(t)
	if e.cfg.Current().Version != before {
		t.Error("failed apply recorded")
	}
}

// TestManagementSettingsLive: metrics_auth applies without a restart.
func TestMetrics(t *testing.T) {
	e := newEnv(t, nil)
	e.must(req{method: "GET", path: "/metrics", auth: "none"}, 401)
	e.events.Add(events.Event{Kind: "failover", Replica: "b", From: "a", Reason: "probe"})
	e.events.Add(events.Event{Kind: "failover-done", Replica: "b", StallMS: 12.5})
	deadline := time.Now().Add(5 * time.Second)
	var body string
	for time.Now().Before(deadline) {
		body = string(e.must(req{method: "GET", path: "/metrics"}, 200).body)
		if strings.Contains(body, `ftbridge_failover_events_total{from="a",reason="probe",to="b"} 1`) &&
			strings.Contains(body, "ftbridge_failover_stall_seconds_count 1") {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, want := range []string{
		`ftbridge_failover_events_total{from="a",reason="probe",to="b"} 1`,
		"ftbridge_failover_stall_seconds_count 1",
		`ftbridge_failover_stall_seconds_bucket{le="0.016"} 1`,
		`ftbridge_failover_stall_seconds_bucket{le="0.008"} 0`,
		`ftbridge_replica_up{replica="a"} 1`,
		`ftbridge_replica_admin{replica="b",state="enabled"} 1`,
		`ftbridge_failovers_total 3`,
		`ftbridge_drops_total{reason="malformed"} 2`,
		`ftbridge_port_rx_frames_total{port="port1",replica="a"} 0`,
		`ftbridge_config_version 1`,
		`ftbridge_dataplane_up 1`,
		`ftbridge_loop_connections{loop="0"}`,
		`ftbridge_loop_connections{loop="1"}`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	doc := strings.Replace(testDoc, `"uplink"`, `"management": {"metrics_auth": false}, "uplink"`, 1)
	e.must(req{method: "PUT", path: "/api/v1/config?confirm_timeout=0s", body: doc}, 200)
	e.must(req{method: "GET", path: "/metrics", auth: "none"}, 200)
	// The API itself still needs credentials.
	e.must(req{method: "GET", path: "/api/v1/status", auth: "none"}, 401)
}

func TestSystem(t *testing.T) {
	e := newEnv(t, nil)
	e.must(req{method: "POST", path: "/api/v1/system/reboot"}, 202)
	e.must(req{method: "POST", path: "/api/v1/system/factory-reset", body: `{"confirm": "yes"}`}, 400)
	e.must(req{method: "POST", path: "/api/v1/system/factory-reset"}, 400)
	e.must(req{method: "POST", path: "/api/v1/system/factory-reset", body: `{"confirm": "factory-reset"}`}, 202)
	if e.reboots != 1 || e.resets != 1 {
		t.Errorf("reboots %d resets %d", e.reboots, e.resets)
	}
	// Password change.
	e.must(req{method: "PUT", path: "/api/v1/system/password", body: `{"current": "wrong", "new": "long-enough-password"}`}, 400)
	e.must(req{method: "PUT", path: "/api/v1/system/password", body: fmt.Sprintf(`{"current": %q, "new": "short"}`, e.password)}, 400)
	e.must(req{method: "PUT", path: "/api/v1/system/password", body: fmt.Sprintf(`{"current": %q, "new": "long-enough-password"}`, e.password)}, 200)
	e.must(req{method: "GET", path: "/api/v1/status"}, 401)
	e.password = "long-enough-password"
	e.must(req{method: "GET", path: "/api/v1/status"}, 200)
	// TLS.
	var info map[string]any
	e.must(req{method: "GET", path: "/api/v1/system/tls"}, 200).json(t, &info)
	if info["self_signed"] != true || len(info["sha256"].(string)) != 64 {
		t.Errorf("tls %+v", info)
	}
	e.must(req{method: "PUT", path: "/api/v1/system/tls", body: `{"cert_pem": "x", "key_pem": "y"}`}, 400).errCode(t)
	if evs := e.events.Query(events.Query{Kinds: []string{"reboot", "factory-reset", "password-changed"}}); len(evs) != 3 {
		t.Errorf("system events %+v", evs)
	}
}

func TestBodies(t *testing.T) {
	e := newEnv(t, nil)
	big := `{"name": "` + strings.Repeat("x", 2<<20) + `"}`
	e.must(req{method: "POST", path: "/api/v1/system/tokens", body: big}, 413).errCode(t)
	e.must(req{method: "POST", path: "/api/v1/system/tokens", body: `{"name": "x"}`, ctype: "application/x-www-form-urlencoded"}, 415).errCode(t)
	e.must(req{method: "POST", path: "/api/v1/system/tokens", body: `{"name": "x", "admin": true}`}, 400).errCode(t)
	e.must(req{method: "POST", path: "/api/v1/system/tokens", body: `{"name": "x"} {}`}, 400).errCode(t)
	e.must(req{method: "POST", path: "/api/v1/system/tokens", body: `[`}, 400).errCode(t)
	e.must(req{method: "PUT", path: "/api/v1/config", body: `{"uplink": `}, 422).errCode(t)
}

// FuzzConfigPut sends arbitrary documents through the API: the answer is
// always a well-formed success or a 4xx JSON error, never a 5xx or a crash,
// and an accepted document is what GET /config then returns.
func FuzzConfigPut(f *testing.F) {
	f.Add(testDoc)
	f.Add(docWithPorts("[1, 2, 3]"))
	f.Add(strings.Replace(testDoc, `"uplink"`, `"management": {"listen": "127.0.0.1:9443", "history": 3}, "uplink"`, 1))
	f.Add(`{"uplink": "x", "replicas": null}`)
	f.Add(`{"services": [{"address": "::1", "ports": [1e9]}]}`)
	f.Add("\x00\xff")
	f.Add(`{"management": {"metrics_auth": 1}}`)
	// One server for all inputs: building one per input would leave the
	// fuzzer little time for inputs.
	e := newEnv(f, nil)
	f.Fuzz(func(t *testing.T, doc string) {
		res := e.doT(t, req{method: "PUT", path: "/api/v1/config?confirm_timeout=0s", body: doc})
		switch {
		case res.status == 200:
			want, err := config.Parse([]byte(doc))
			if err != nil {
				t.Fatalf("accepted a document Parse refuses: %v", err)
			}
			got := e.cfg.Current().Config
			a, _ := got.Marshal()
			b, _ := want.Marshal()
			if string(a) != string(b) {
				t.Fatalf("GET /config = %s, want %s", a, b)
			}
		case res.status >= 400 && res.status < 500:
			var b ErrorBody
			if err := json.Unmarshal(res.body, &b); err != nil || b.Error.Code == "" {
				t.Fatalf("status %d without an error body: %s", res.status, res.body)
			}
		default:
			t.Fatalf("status %d for %q: %s", res.status, doc, res.body)
		}
	})
}
