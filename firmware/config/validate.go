package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"time"
)

// Bounds of the optional numbers and durations. A value outside its bounds is
// almost certainly a typo ("20s" for "20ms") rather than a tuning decision.
const (
	minInterval, maxInterval           = time.Millisecond, 10 * time.Second
	maxRounds                          = 1000
	minStall, maxStall                 = time.Millisecond, 10 * time.Minute
	minHoldDown, maxHoldDown           = time.Millisecond, time.Hour
	minSynAckWait, maxSynAckWait       = time.Millisecond, time.Minute
	minFinWait, maxFinWait             = time.Millisecond, 10 * time.Minute
	minTimeWait, maxTimeWait           = time.Millisecond, time.Hour
	minIdle, maxIdle                   = time.Second, 30 * 24 * time.Hour
	maxConnections                     = 1 << 24
	maxLoops                           = 64 // engine.MaxLoops
	maxHoldBytes                       = 1 << 30
	maxTotalHoldBytes            int64 = 64 << 30
	maxReplicaName                     = 32
	maxInterfaceName                   = 15 // IFNAMSIZ - 1
)

// Validate checks the meaning of c and returns the first problem found, as a
// *FieldError naming the field, in document order. It accepts zero values for
// every optional field and a zero Version.
//
// A single replica is valid: the box then forwards without redundancy.
func (c *Config) Validate() error {
	if c.Version != 0 && c.Version != CurrentVersion {
		return fieldErr("version", "unsupported version %d (this firmware reads version %d)", c.Version, CurrentVersion)
	}
	if c.Uplink == "" {
		return fieldErr("uplink", "missing")
	}
	if err := checkInterface("uplink", c.Uplink); err != nil {
		return err
	}
	if c.VIPMAC != "" {
		hw, err := net.ParseMAC(c.VIPMAC)
		switch {
		case err != nil || len(hw) != 6:
			return fieldErr("vip_mac", "%q is not a MAC address such as \"02:00:5e:10:00:01\"", c.VIPMAC)
		case hw[0]&1 != 0:
			return fieldErr("vip_mac", "%s is a multicast address; a unicast address is needed", hw)
		case [6]byte(hw) == [6]byte{}:
			return fieldErr("vip_mac", "the all-zero address is not allowed; omit vip_mac to use the uplink's address")
		}
	}
	if c.ProbeSource != "" {
		a, err := netip.ParseAddr(c.ProbeSource)
		switch {
		case err != nil:
			return fieldErr("probe_source", "%q is not an IP address", c.ProbeSource)
		case !a.Is4():
			return fieldErr("probe_source", "%s is not an IPv4 address", a)
		case !usableUnicast(a):
			return fieldErr("probe_source", "%s is not a unicast host address", a)
		}
	}
	if err := c.validateReplicas(); err != nil {
		return err
	}
	if err := c.validateServices(); err != nil {
		return err
	}
	if err := c.validateTuning(); err != nil {
		return err
	}
	// The probe source, given or derived, must not be a service address:
	// the replicas would answer their own probes' replies to the box.
	ec := c.Dataplane()
	for i, s := range ec.Services {
		if ec.ProbeSource == s.Address {
			if c.ProbeSource != "" {
				return fieldErr("probe_source", "%s is also services[%d].address", ec.ProbeSource, i)
			}
			return fieldErr("probe_source", "the derived address %s is services[%d].address; set probe_source", ec.ProbeSource, i)
		}
	}
	return c.validateManagement()
}

func (c *Config) validateReplicas() error {
	switch {
	case len(c.Replicas) == 0:
		return fieldErr("replicas", "at least 1 needed (2 or more for failover)")
	case len(c.Replicas) > MaxReplicas:
		return fieldErr("replicas", "%d given, at most %d supported", len(c.Replicas), MaxReplicas)
	}
	names := make(map[string]int)
	ifaces := make(map[string]int)
	for i, r := range c.Replicas {
		p := fmt.Sprintf("replicas[%d]", i)
		if r.Name == "" {
			return fieldErr(p+".name", "missing")
		}
		if !validReplicaName(r.Name) {
			return fieldErr(p+".name", "%q is not a valid name (1 to %d characters from a-z, 0-9, '_' and '-')", r.Name, maxReplicaName)
		}
		if j, dup := names[r.Name]; dup {
			return fieldErr(p+".name", "duplicate name %q (also replicas[%d])", r.Name, j)
		}
		names[r.Name] = i
		if r.Interface == "" {
			return fieldErr(p+".interface", "missing")
		}
		if err := checkInterface(p+".interface", r.Interface); err != nil {
			return err
		}
		if r.Interface == c.Uplink {
			return fieldErr(p+".interface", "%q is the uplink", r.Interface)
		}
		if j, dup := ifaces[r.Interface]; dup {
			return fieldErr(p+".interface", "duplicate interface %q (also replicas[%d])", r.Interface, j)
		}
		ifaces[r.Interface] = i
	}
	return nil
}

func (c *Config) validateServices() error {
	if len(c.Services) == 0 {
		return fieldErr("services", "at least 1 needed")
	}
	addrs := make(map[netip.Addr]int)
	for i, s := range c.Services {
		p := fmt.Sprintf("services[%d]", i)
		if s.Address == "" {
			return fieldErr(p+".address", "missing")
		}
		a, err := netip.ParseAddr(s.Address)
		switch {
		case err != nil:
			return fieldErr(p+".address", "%q is not an IP address", s.Address)
		case a.Is6() && !a.Is4In6():
			return fieldErr(p+".address", "%s: IPv6 service addresses are not supported yet", a)
		case !a.Is4():
			return fieldErr(p+".address", "%q is not written as an IPv4 address", s.Address)
		case !usableUnicast(a):
			return fieldErr(p+".address", "%s is not a unicast host address", a)
		}
		if j, dup := addrs[a]; dup {
			return fieldErr(p+".address", "duplicate address %s (also services[%d])", a, j)
		}
		addrs[a] = i
		if len(s.Ports) == 0 {
			return fieldErr(p+".ports", "at least 1 port needed")
		}
		ports := make(map[int]bool)
		for k, port := range s.Ports {
			pp := fmt.Sprintf("%s.ports[%d]", p, k)
			if port < 1 || port > 65535 {
				return fieldErr(pp, "%d is not a port (1 to 65535)", port)
			}
			if ports[port] {
				return fieldErr(pp, "duplicate port %d", port)
			}
			ports[port] = true
		}
		switch s.Release {
		case "", ReleaseMatched, ReleaseImmediate:
		default:
			return fieldErr(p+".release", "%q is not a release policy (want %q or %q)", s.Release, ReleaseMatched, ReleaseImmediate)
		}
		switch s.Rejoin {
		case "", RejoinAuto, RejoinManual, RejoinNewOnly:
		default:
			return fieldErr(p+".rejoin", "%q is not a rejoin policy (want %q, %q or %q)", s.Rejoin, RejoinAuto, RejoinManual, RejoinNewOnly)
		}
		switch s.Replication {
		case "", ReplicationStrict, ReplicationTolerant:
		default:
			return fieldErr(p+".replication", "%q is not a replication mode (want %q or %q)", s.Replication, ReplicationStrict, ReplicationTolerant)
		}
		if h := s.StateHook; h != nil {
			hp := p + ".state_hook"
			switch {
			case len(h.Command) > 0 && h.URL != "":
				return fieldErr(hp, "give command or url, not both")
			case len(h.Command) == 0 && h.URL == "":
				return fieldErr(hp, "needs a command or a url")
			case len(h.Command) > 0 && h.Command[0] == "":
				return fieldErr(hp+".command[0]", "empty program name")
			}
			if h.URL != "" {
				u, err := url.Parse(h.URL)
				if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					return fieldErr(hp+".url", "%q is not an http(s) URL", h.URL)
				}
			}
			if err := checkRange(hp+".timeout", int64(h.Timeout), int64(time.Millisecond), int64(time.Hour), func(v int64) string { return time.Duration(v).String() }); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *Config) validateTuning() error {
	durations := []struct {
		field    string
		v        Duration
		min, max time.Duration
	}{
		{"health.interval", c.Health.Interval, minInterval, maxInterval},
		{"health.stall_timeout", c.Health.StallTimeout, minStall, maxStall},
		{"health.hold_down", c.Health.HoldDown, minHoldDown, maxHoldDown},
		{"timers.synack_wait", c.Timers.SynAckWait, minSynAckWait, maxSynAckWait},
		{"timers.fin_wait", c.Timers.FinWait, minFinWait, maxFinWait},
		{"timers.time_wait", c.Timers.TimeWait, minTimeWait, maxTimeWait},
		{"timers.idle", c.Timers.Idle, minIdle, maxIdle},
		{"timers.join_timeout", c.Timers.JoinTimeout, time.Millisecond, time.Hour},
	}
	for _, d := range durations {
		if err := checkRange(d.field, int64(d.v), int64(d.min), int64(d.max), func(v int64) string { return time.Duration(v).String() }); err != nil {
			return err
		}
	}
	ints := []struct {
		field string
		v     int64
		max   int64
	}{
		{"loops", int64(c.Loops), maxLoops},
		{"health.fail_after", int64(c.Health.FailAfter), maxRounds},
		{"health.rise_after", int64(c.Health.RiseAfter), maxRounds},
		{"limits.max_connections", int64(c.Limits.MaxConnections), maxConnections},
		{"limits.max_hold_bytes", int64(c.Limits.MaxHoldBytes), maxHoldBytes},
		{"limits.max_total_hold_bytes", c.Limits.MaxTotalHoldBytes, maxTotalHoldBytes},
		{"limits.max_log_bytes", int64(c.Limits.MaxLogBytes), maxHoldBytes},
		{"limits.max_total_log_bytes", c.Limits.MaxTotalLogBytes, maxTotalHoldBytes},
	}
	for _, n := range ints {
		if err := checkRange(n.field, n.v, 1, n.max, func(v int64) string { return fmt.Sprint(v) }); err != nil {
			return err
		}
	}
	// Cross-field checks on the effective values, defaults included.
	ec := c.Dataplane()
	if ec.Health.StallTimeout <= ec.Health.Interval {
		return fieldErr("health.stall_timeout", "%s must be longer than health.interval (%s)", ec.Health.StallTimeout, ec.Health.Interval)
	}
	if int64(ec.Limits.MaxHoldBytes) > ec.Limits.MaxTotalHoldBytes {
		return fieldErr("limits.max_hold_bytes", "%d exceeds limits.max_total_hold_bytes (%d)", ec.Limits.MaxHoldBytes, ec.Limits.MaxTotalHoldBytes)
	}
	return nil
}

// checkRange checks an optional value: zero means the default, anything else
// must lie in [min, max].
func checkRange(field string, v, min, max int64, format func(int64) string) error {
	switch {
	case v == 0:
		return nil
	case v < 0:
		return fieldErr(field, "%s must be positive", format(v))
	case v < min || v > max:
		return fieldErr(field, "%s is outside the allowed range %s to %s", format(v), format(min), format(max))
	}
	return nil
}

// usableUnicast reports whether a can be a host's own IPv4 address.
func usableUnicast(a netip.Addr) bool {
	return a.IsValid() && !a.IsUnspecified() && !a.IsMulticast() && !a.IsLoopback() &&
		a != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

func validReplicaName(s string) bool {
	if len(s) == 0 || len(s) > maxReplicaName {
		return false
	}
	for _, r := range []byte(s) {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// checkInterface applies the kernel's rules for interface names
// (dev_valid_name): at most 15 bytes, not "." or "..", no '/', ':' or
// whitespace. It also refuses control and non-ASCII characters.
func checkInterface(field, s string) error {
	if len(s) > maxInterfaceName {
		return fieldErr(field, "%q is longer than %d characters", s, maxInterfaceName)
	}
	if s == "." || s == ".." {
		return fieldErr(field, "%q is not an interface name", s)
	}
	for _, b := range []byte(s) {
		if b <= ' ' || b >= 0x7f || b == '/' || b == ':' {
			return fieldErr(field, "%q is not an interface name (no '/', ':', spaces or control characters)", s)
		}
	}
	return nil
}
