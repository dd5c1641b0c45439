package config_test

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/engine"
	"github.com/ftbridge/ftbridge/firmware/config"
)

// example is the minimal document from docs/config.md; it must stay valid.
const example = `{
  "uplink": "port0",
  "replicas": [ {"name": "a", "interface": "port1"}, {"name": "b", "interface": "port2"} ],
  "services": [ {"address": "198.18.0.10", "ports": [6379, 80]} ]
}`

// full sets every field.
const full = `{
  "version": 1,
  "uplink": "port0",
  "vip_mac": "02:00:5e:10:00:01",
  "probe_source": "198.18.0.200",
  "loops": 2,
  "replicas": [
    {"name": "a", "interface": "port1"},
    {"name": "b", "interface": "port2"},
    {"name": "c_3", "interface": "port3"}
  ],
  "services": [
    {"address": "198.18.0.10", "ports": [6379, 80], "release": "immediate", "rejoin": "manual", "replication": "tolerant",
     "state_hook": {"command": ["/usr/local/bin/sync-redis"], "timeout": "20s"}},
    {"address": "198.18.0.11", "ports": [11211], "release": "matched", "rejoin": "new-only", "replication": "strict"}
  ],
  "health": {"interval": "10ms", "fail_after": 4, "rise_after": 6, "stall_timeout": "250ms", "hold_down": "5s"},
  "limits": {"max_connections": 1000, "max_hold_bytes": 65536, "max_total_hold_bytes": 1048576,
             "max_log_bytes": 4096, "max_total_log_bytes": 65536},
  "timers": {"synack_wait": "100ms", "fin_wait": "400ms", "time_wait": "10s", "idle": "1h", "join_timeout": "5s"}
}`

func mustParse(t testing.TB, doc string) *config.Config {
	t.Helper()
	c, err := config.Parse([]byte(doc))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return c
}

func TestExample(t *testing.T) {
	c := mustParse(t, example)
	if c.Version != config.CurrentVersion {
		t.Errorf("Version = %d, want %d", c.Version, config.CurrentVersion)
	}
	got := c.Dataplane()
	want := engine.Config{
		Uplink: "port0",
		Replicas: []engine.ReplicaConfig{
			{Name: "a", Interface: "port1"},
			{Name: "b", Interface: "port2"},
		},
		Services: []engine.ServiceConfig{
			{Address: netip.MustParseAddr("198.18.0.10"), Ports: []uint16{6379, 80}, Release: engine.ReleaseMatched},
		},
	}.WithDefaults()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Dataplane() =\n%+v\nwant\n%+v", got, want)
	}
}

// TestDefaultsAreTheEngines checks the documented defaults: an omitted field
// gives engine.Config.WithDefaults' value, and those are the numbers that
// docs/config.md states.
func TestDefaultsAreTheEngines(t *testing.T) {
	got := mustParse(t, example).Dataplane()
	if got.Health != (engine.HealthConfig{
		Interval: 20 * time.Millisecond, FailAfter: 3, RiseAfter: 5,
		StallTimeout: 300 * time.Millisecond, HoldDown: 3 * time.Second,
	}) {
		t.Errorf("Health = %+v", got.Health)
	}
	if got.Limits != (engine.LimitsConfig{MaxConnections: 65536, MaxHoldBytes: 4 << 20, MaxTotalHoldBytes: 512 << 20,
		MaxLogBytes: 1 << 20, MaxTotalLogBytes: 256 << 20}) {
		t.Errorf("Limits = %+v", got.Limits)
	}
	if got.Timers != (engine.TimersConfig{
		SynAckWait: 200 * time.Millisecond, FinWait: 300 * time.Millisecond,
		TimeWait: 30 * time.Second, Idle: 2 * time.Hour, JoinTimeout: 10 * time.Second,
	}) {
		t.Errorf("Timers = %+v", got.Timers)
	}
	if got.VIPMAC != [6]byte{} {
		t.Errorf("VIPMAC = %x, want zero (the uplink's)", got.VIPMAC)
	}
	if want := netip.MustParseAddr("198.18.0.254"); got.ProbeSource != want {
		t.Errorf("ProbeSource = %v, want %v", got.ProbeSource, want)
	}
}

func TestFullDocument(t *testing.T) {
	got := mustParse(t, full).Dataplane()
	want := engine.Config{
		Uplink: "port0",
		Replicas: []engine.ReplicaConfig{
			{Name: "a", Interface: "port1"},
			{Name: "b", Interface: "port2"},
			{Name: "c_3", Interface: "port3"},
		},
		Services: []engine.ServiceConfig{
			{Address: netip.MustParseAddr("198.18.0.10"), Ports: []uint16{6379, 80}, Release: engine.ReleaseImmediate,
				Rejoin: engine.RejoinManual, Replication: engine.ReplicationTolerant},
			{Address: netip.MustParseAddr("198.18.0.11"), Ports: []uint16{11211}, Release: engine.ReleaseMatched,
				Rejoin: engine.RejoinNewOnly},
		},
		ReadyGate:   true,
		VIPMAC:      [6]byte{0x02, 0x00, 0x5e, 0x10, 0x00, 0x01},
		ProbeSource: netip.MustParseAddr("198.18.0.200"),
		Loops:       2,
		Health: engine.HealthConfig{
			Interval: 10 * time.Millisecond, FailAfter: 4, RiseAfter: 6,
			StallTimeout: 250 * time.Millisecond, HoldDown: 5 * time.Second,
		},
		Limits: engine.LimitsConfig{MaxConnections: 1000, MaxHoldBytes: 65536, MaxTotalHoldBytes: 1 << 20,
			MaxLogBytes: 4096, MaxTotalLogBytes: 65536},
		Timers: engine.TimersConfig{
			SynAckWait: 100 * time.Millisecond, FinWait: 400 * time.Millisecond,
			TimeWait: 10 * time.Second, Idle: time.Hour, JoinTimeout: 5 * time.Second,
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Dataplane() =\n%+v\nwant\n%+v", got, want)
	}
}

func TestDefault(t *testing.T) {
	c := config.Default()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	ec := c.Dataplane()
	if ec.Uplink != "up0" || len(ec.Replicas) != 2 || ec.Replicas[0] != (engine.ReplicaConfig{Name: "a", Interface: "rp0"}) ||
		ec.Replicas[1] != (engine.ReplicaConfig{Name: "b", Interface: "rp1"}) {
		t.Errorf("Default() ports = %q %+v", ec.Uplink, ec.Replicas)
	}
	if len(ec.Services) != 1 || ec.Services[0].Address != netip.MustParseAddr("198.18.0.10") ||
		!reflect.DeepEqual(ec.Services[0].Ports, []uint16{7000, 6379, 80}) {
		t.Errorf("Default() services = %+v", ec.Services)
	}
	// Each call returns a fresh copy.
	c.Services[0].Ports[0] = 1
	if config.Default().Services[0].Ports[0] != 7000 {
		t.Error("Default() shares state between calls")
	}
}

// edit replaces the first occurrence of old in the example document.
func edit(old, new string) string {
	if !strings.Contains(example, old) {
		panic("edit: " + old + " not in example")
	}
	return strings.Replace(example, old, new, 1)
}

// withKey adds a top-level key to the example document.
func withKey(kv string) string { return edit(`"uplink"`, kv+`, "uplink"`) }

func TestBadDocuments(t *testing.T) {
	tests := []struct {
		name, doc string
		want      string // substring of the error
		field     string // FieldError.Field, if the error is one
	}{
		// Syntax and structure (Parse).
		{"empty", "", "empty document", ""},
		{"not json", "uplink: port0", "line 1, column 1: invalid character", ""},
		{"syntax position", "{\n  \"uplink\": \"port0\",,\n}", "line 2, column", ""},
		{"truncated", `{"uplink": "port0"`, "unexpected end of document", ""},
		{"trailing object", example + `{}`, "data after the end of the document", ""},
		{"trailing garbage", example + "\nx", "line 6, column 1: data after the end", ""},
		{"array at top", `[]`, "document: want an object", "document"},
		{"unknown key", withKey(`"uplinks": "x"`), "uplinks: unknown key", "uplinks"},
		{"key case", edit(`"uplink"`, `"Uplink"`), `Uplink: unknown key (did you mean "uplink"?)`, "Uplink"},
		{"nested unknown key", edit(`"ports"`, `"port"`), "services[0].port: unknown key", "services[0].port"},
		{"duplicate key", withKey(`"uplink": "port9"`), "uplink: duplicate key", "uplink"},
		{"null", edit(`"port0"`, `null`), "uplink: null is not allowed", "uplink"},
		{"null optional", withKey(`"vip_mac": null`), "vip_mac: null is not allowed; omit the key", "vip_mac"},
		{"wrong type", edit(`"port0"`, `7`), "uplink: want a string, got the number 7", "uplink"},
		{"port as string", edit(`6379`, `"6379"`), `services[0].ports[0]: want an integer, got the string "6379"`, "services[0].ports[0]"},
		{"port float", edit(`6379`, `6379.5`), "services[0].ports[0]: 6379.5 is not an integer", "services[0].ports[0]"},
		{"port huge", edit(`6379`, `99999999999999999999`), "services[0].ports[0]: 99999999999999999999 is out of range", "services[0].ports[0]"},
		{"replicas not array", edit(`[ {"name": "a"`, `{"x": [{"name": "a"`), "replicas: want an array, got an object", "replicas"},
		{"duration number", withKey(`"health": {"interval": 20}`), `health.interval: want a duration string such as "20ms", got the number 20`, "health.interval"},
		{"duration bad", withKey(`"timers": {"idle": "2 hours"}`), `timers.idle: "2 hours" is not a duration`, "timers.idle"},
		{"duration zero", withKey(`"health": {"hold_down": "0s"}`), `health.hold_down: "0s" is not allowed; omit the key`, "health.hold_down"},
		{"int zero", withKey(`"limits": {"max_connections": 0}`), "limits.max_connections: 0 is not allowed; omit the key", "limits.max_connections"},
		{"version zero", withKey(`"version": 0`), "version: 0 is not allowed", "version"},

		// Meaning (Validate).
		{"version", withKey(`"version": 2`), "version: unsupported version 2", "version"},
		{"no uplink", edit(`"uplink": "port0",`, ``), "uplink: missing", "uplink"},
		{"uplink name", edit(`"port0"`, `"a/b"`), `uplink: "a/b" is not an interface name`, "uplink"},
		{"uplink long", edit(`"port0"`, `"abcdefghijklmnop"`), `uplink: "abcdefghijklmnop" is longer than 15 characters`, "uplink"},
		{"uplink dot", edit(`"port0"`, `".."`), `uplink: ".." is not an interface name`, "uplink"},
		{"no replicas", edit(`[ {"name": "a", "interface": "port1"}, {"name": "b", "interface": "port2"} ]`, `[]`), "replicas: at least 1 needed", "replicas"},
		{"missing replicas", edit(`"replicas": [ {"name": "a", "interface": "port1"}, {"name": "b", "interface": "port2"} ],`, ``), "replicas: at least 1 needed", "replicas"},
		{"too many replicas", edit(`{"name": "b", "interface": "port2"}`, `{"name": "b", "interface": "port2"}, {"name": "c", "interface": "p3"}, {"name": "d", "interface": "p4"}, {"name": "e", "interface": "p5"}, {"name": "f", "interface": "p6"}, {"name": "g", "interface": "p7"}, {"name": "h", "interface": "p8"}, {"name": "i", "interface": "p9"}`), "replicas: 9 given, at most 8 supported", "replicas"},
		{"replica no name", edit(`"name": "b", `, ``), "replicas[1].name: missing", "replicas[1].name"},
		{"replica bad name", edit(`"name": "b"`, `"name": "B"`), `replicas[1].name: "B" is not a valid name`, "replicas[1].name"},
		{"replica long name", edit(`"name": "b"`, `"name": "`+strings.Repeat("b", 33)+`"`), `replicas[1].name: "bbbbb`, "replicas[1].name"},
		{"replica dup name", edit(`"name": "b"`, `"name": "a"`), `replicas[1].name: duplicate name "a" (also replicas[0])`, "replicas[1].name"},
		{"replica no interface", edit(`, "interface": "port2"`, ``), "replicas[1].interface: missing", "replicas[1].interface"},
		{"replica interface space", edit(`"port2"`, `"port 2"`), `replicas[1].interface: "port 2" is not an interface name`, "replicas[1].interface"},
		{"replica interface colon", edit(`"port2"`, `"port2:1"`), `replicas[1].interface: "port2:1" is not an interface name`, "replicas[1].interface"},
		{"replica dup interface", edit(`"port2"`, `"port1"`), `replicas[1].interface: duplicate interface "port1" (also replicas[0])`, "replicas[1].interface"},
		{"replica is uplink", edit(`"port1"`, `"port0"`), `replicas[0].interface: "port0" is the uplink`, "replicas[0].interface"},
		{"no services", edit(`[ {"address": "198.18.0.10", "ports": [6379, 80]} ]`, `[]`), "services: at least 1 needed", "services"},
		{"service no address", edit(`"address": "198.18.0.10", `, ``), "services[0].address: missing", "services[0].address"},
		{"service bad address", edit(`"198.18.0.10"`, `"foo"`), `services[0].address: "foo" is not an IP address`, "services[0].address"},
		{"service ipv6", edit(`"198.18.0.10"`, `"2001:db8::10"`), "services[0].address: 2001:db8::10: IPv6 service addresses are not supported yet", "services[0].address"},
		{"service 4in6", edit(`"198.18.0.10"`, `"::ffff:198.18.0.10"`), `services[0].address: "::ffff:198.18.0.10" is not written as an IPv4 address`, "services[0].address"},
		{"service multicast", edit(`"198.18.0.10"`, `"224.0.0.1"`), "services[0].address: 224.0.0.1 is not a unicast host address", "services[0].address"},
		{"service broadcast", edit(`"198.18.0.10"`, `"255.255.255.255"`), "is not a unicast host address", "services[0].address"},
		{"service zero", edit(`"198.18.0.10"`, `"0.0.0.0"`), "is not a unicast host address", "services[0].address"},
		{"service dup address", edit(`"ports": [6379, 80]}`, `"ports": [6379, 80]}, {"address": "198.18.0.10", "ports": [1]}`), "services[1].address: duplicate address 198.18.0.10 (also services[0])", "services[1].address"},
		{"no ports", edit(`[6379, 80]`, `[]`), "services[0].ports: at least 1 port needed", "services[0].ports"},
		{"port zero", edit(`6379`, `0`), "services[0].ports[0]: 0 is not a port", "services[0].ports[0]"},
		{"port too big", edit(`80]`, `65536]`), "services[0].ports[1]: 65536 is not a port", "services[0].ports[1]"},
		{"port negative", edit(`80]`, `-1]`), "services[0].ports[1]: -1 is not a port", "services[0].ports[1]"},
		{"port dup", edit(`6379, 80`, `80, 80`), "services[0].ports[1]: duplicate port 80", "services[0].ports[1]"},
		{"release", edit(`[6379, 80]`, `[6379, 80], "release": "fast"`), `services[0].release: "fast" is not a release policy (want "matched" or "immediate")`, "services[0].release"},
		{"vip_mac bad", withKey(`"vip_mac": "02:00:5e"`), `vip_mac: "02:00:5e" is not a MAC address`, "vip_mac"},
		{"vip_mac long", withKey(`"vip_mac": "02:00:5e:10:00:00:00:01"`), `vip_mac: "02:00:5e:10:00:00:00:01" is not a MAC address`, "vip_mac"},
		{"vip_mac multicast", withKey(`"vip_mac": "01:00:5e:10:00:01"`), "vip_mac: 01:00:5e:10:00:01 is a multicast address", "vip_mac"},
		{"vip_mac broadcast", withKey(`"vip_mac": "ff:ff:ff:ff:ff:ff"`), "is a multicast address", "vip_mac"},
		{"vip_mac zero", withKey(`"vip_mac": "00:00:00:00:00:00"`), "vip_mac: the all-zero address is not allowed", "vip_mac"},
		{"probe_source bad", withKey(`"probe_source": "x"`), `probe_source: "x" is not an IP address`, "probe_source"},
		{"probe_source v6", withKey(`"probe_source": "fe80::1"`), "probe_source: fe80::1 is not an IPv4 address", "probe_source"},
		{"probe_source loopback", withKey(`"probe_source": "127.0.0.1"`), "probe_source: 127.0.0.1 is not a unicast host address", "probe_source"},
		{"probe_source is service", withKey(`"probe_source": "198.18.0.10"`), "probe_source: 198.18.0.10 is also services[0].address", "probe_source"},
		{"derived probe_source is service", edit(`"ports": [6379, 80]}`, `"ports": [6379, 80]}, {"address": "198.18.0.254", "ports": [1]}`), "probe_source: the derived address 198.18.0.254 is services[1].address; set probe_source", "probe_source"},
		{"interval negative", withKey(`"health": {"interval": "-1ms"}`), "health.interval: -1ms must be positive", "health.interval"},
		{"interval too long", withKey(`"health": {"interval": "20s"}`), "health.interval: 20s is outside the allowed range 1ms to 10s", "health.interval"},
		{"interval too short", withKey(`"health": {"interval": "10us"}`), "health.interval: 10µs is outside the allowed range", "health.interval"},
		{"fail_after negative", withKey(`"health": {"fail_after": -3}`), "health.fail_after: -3 must be positive", "health.fail_after"},
		{"rise_after huge", withKey(`"health": {"rise_after": 5000}`), "health.rise_after: 5000 is outside the allowed range 1 to 1000", "health.rise_after"},
		{"stall_timeout", withKey(`"health": {"stall_timeout": "11m"}`), "health.stall_timeout: 11m0s is outside", "health.stall_timeout"},
		{"stall below interval", withKey(`"health": {"interval": "1s"}`), "health.stall_timeout: 300ms must be longer than health.interval (1s)", "health.stall_timeout"},
		{"hold_down", withKey(`"health": {"hold_down": "2h"}`), "health.hold_down: 2h0m0s is outside", "health.hold_down"},
		{"max_connections", withKey(`"limits": {"max_connections": -1}`), "limits.max_connections: -1 must be positive", "limits.max_connections"},
		{"max_hold_bytes", withKey(`"limits": {"max_hold_bytes": 2147483648}`), "limits.max_hold_bytes: 2147483648 is outside", "limits.max_hold_bytes"},
		{"max_total_hold_bytes", withKey(`"limits": {"max_total_hold_bytes": -5}`), "limits.max_total_hold_bytes: -5 must be positive", "limits.max_total_hold_bytes"},
		{"hold above total", withKey(`"limits": {"max_total_hold_bytes": 1048576}`), "limits.max_hold_bytes: 4194304 exceeds limits.max_total_hold_bytes (1048576)", "limits.max_hold_bytes"},
		{"synack_wait", withKey(`"timers": {"synack_wait": "2m"}`), "timers.synack_wait: 2m0s is outside", "timers.synack_wait"},
		{"fin_wait", withKey(`"timers": {"fin_wait": "-1s"}`), "timers.fin_wait: -1s must be positive", "timers.fin_wait"},
		{"time_wait", withKey(`"timers": {"time_wait": "3h"}`), "timers.time_wait: 3h0m0s is outside", "timers.time_wait"},
		{"idle", withKey(`"timers": {"idle": "10ms"}`), "timers.idle: 10ms is outside the allowed range 1s to 720h0m0s", "timers.idle"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse([]byte(tt.doc))
			if err == nil {
				err = c.Validate()
			}
			if err == nil {
				t.Fatalf("no error for\n%s", tt.doc)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q\ndoes not contain %q", err, tt.want)
			}
			var fe *config.FieldError
			if tt.field != "" {
				if !errors.As(err, &fe) {
					t.Errorf("error %q is not a *FieldError", err)
				} else if fe.Field != tt.field {
					t.Errorf("FieldError.Field = %q, want %q", fe.Field, tt.field)
				}
			}
		})
	}
}

func TestValidEdgeCases(t *testing.T) {
	for name, doc := range map[string]string{
		"one replica":        edit(`, {"name": "b", "interface": "port2"}`, ``),
		"explicit defaults":  withKey(`"version": 1, "health": {"interval": "20ms", "fail_after": 3}, "limits": {}, "timers": {"idle": "2h"}`),
		"vip_mac dashes":     withKey(`"vip_mac": "02-00-5E-10-00-01"`),
		"interface chars":    edit(`"port1"`, `"eth0.100@x-_y"`),
		"ports at the edges": edit(`6379, 80`, `1, 65535`),
		"whitespace":         "\n\t" + example + "\n\n",
		"release matched":    edit(`[6379, 80]`, `[6379, 80], "release": "matched"`),
		"probe_source v4":    withKey(`"probe_source": "192.0.2.1"`),
		"service .254":       edit(`198.18.0.10`, `198.18.0.254`),
	} {
		t.Run(name, func(t *testing.T) { mustParse(t, doc) })
	}
	// A service at .254 moves the derived probe source to .253.
	c := mustParse(t, edit(`198.18.0.10`, `198.18.0.254`))
	if got, want := c.Dataplane().ProbeSource, netip.MustParseAddr("198.18.0.253"); got != want {
		t.Errorf("ProbeSource = %v, want %v", got, want)
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for name, c := range map[string]*config.Config{
		"example": mustParse(t, example),
		"full":    mustParse(t, full),
		"default": config.Default(),
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name+".json")
			if err := c.Save(path); err != nil {
				t.Fatal(err)
			}
			got, err := config.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c) {
				t.Errorf("Load(Save(c)) =\n%+v\nwant\n%+v", got, c)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("mode %v, want 0600", fi.Mode().Perm())
			}
		})
	}
}

func TestMarshalOmitsDefaults(t *testing.T) {
	data, err := mustParse(t, example).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	for _, absent := range []string{"health", "limits", "timers", "vip_mac", "probe_source", "release"} {
		if strings.Contains(s, absent) {
			t.Errorf("Marshal wrote unset %q:\n%s", absent, s)
		}
	}
	if !strings.Contains(s, `"version": 1`) || !strings.HasSuffix(s, "}\n") {
		t.Errorf("Marshal =\n%s", s)
	}
}

func TestSaveRefusesInvalid(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.json")
	c := config.Default()
	c.Replicas = nil
	err := c.Save(path)
	if err == nil || !strings.HasPrefix(err.Error(), path+": replicas:") {
		t.Fatalf("Save(invalid) = %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("Save(invalid) created the file: %v", err)
	}
}

func TestLoadErrorsStartWithPath(t *testing.T) {
	dir := t.TempDir()
	write := func(name, doc string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tt := range []struct{ path, want string }{
		{filepath.Join(dir, "missing.json"), "no such file or directory"},
		{write("syntax.json", "{"), "unexpected end of document"},
		{write("invalid.json", edit(`"port2"`, `"port1"`)), "replicas[1].interface: duplicate interface"},
		{dir, "is a directory"},
	} {
		_, err := config.Load(tt.path)
		if err == nil || !strings.HasPrefix(err.Error(), tt.path+": ") || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Load(%s) = %v, want %q", tt.path, err, tt.path+": ..."+tt.want)
		}
	}
	if _, err := config.Load(write("ok.json", example)); err != nil {
		t.Errorf("Load(example) = %v", err)
	}
}

// TestDocsCoverEveryKey keeps docs/config.md in step with the schema: every
// JSON key of Config appears there in backquotes.
func TestDocsCoverEveryKey(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "config.md"))
	if err != nil {
		t.Fatal(err)
	}
	var walk func(reflect.Type)
	walk = func(t2 reflect.Type) {
		for t2.Kind() == reflect.Slice {
			t2 = t2.Elem()
		}
		if t2.Kind() != reflect.Struct {
			return
		}
		for i := 0; i < t2.NumField(); i++ {
			f := t2.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !strings.Contains(string(doc), "`"+name+"`") {
				t.Errorf("docs/config.md does not document %s (%q)", f.Name, name)
			}
			walk(f.Type)
		}
	}
	walk(reflect.TypeFor[config.Config]())
	if !strings.Contains(string(doc), example) {
		t.Error("docs/config.md does not show the minimal example verbatim")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(example)
	f.Add(full)
	f.Add(withKey(`"health": {"interval": "1s"}`))
	f.Add(withKey(`"vip_mac": "02-00-5E-10-00-01", "probe_source": "198.18.0.1"`))
	f.Add(`{"uplink":"u","replicas":[{"name":"a","interface":"p"}],"services":[{"address":"1.2.3.4","ports":[1]}]}`)
	f.Add(`{"services":[{"ports":[1e3, -0, 1.0]}]}`)
	f.Add(`{"uplink":"\u0000"} x`)
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, doc string) {
		c, err := config.Parse([]byte(doc))
		if err != nil {
			if c != nil {
				t.Fatal("Parse returned a config and an error")
			}
			return
		}
		err = c.Validate()
		_ = c.Dataplane() // never panics, valid or not
		if err != nil {
			return
		}
		path := filepath.Join(dir, "fuzz.json")
		if err := c.Save(path); err != nil {
			t.Fatalf("Save of a valid config: %v", err)
		}
		got, err := config.Load(path)
		if err != nil {
			t.Fatalf("Load after Save: %v", err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Fatalf("Load(Save(c)) =\n%+v\nwant\n%+v", got, c)
		}
	})
}
