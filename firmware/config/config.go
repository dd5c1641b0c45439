package config

import (
	"net"
	"net/netip"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/engine"
)

// CurrentVersion is the document version this firmware reads and writes.
const CurrentVersion = 1

// MaxReplicas is the largest number of replicas a document may name.
const MaxReplicas = 8

// Config is the on-disk configuration document. Its JSON form is described in
// docs/config.md; the zero value of every optional field means "use the
// default".
type Config struct {
	// Version is the document's format version. Parse sets it to
	// CurrentVersion when the document omits it; Save writes CurrentVersion
	// when it is zero.
	Version int `json:"version,omitempty"`
	// Uplink is the client-side interface.
	Uplink string `json:"uplink"`
	// VIPMAC is the MAC address clients see for every service address, in any
	// form net.ParseMAC accepts for a 6-byte address. Empty means the
	// uplink's own MAC address.
	VIPMAC string `json:"vip_mac,omitempty"`
	// ProbeSource is the IPv4 source address of health probes on replica
	// ports. Empty means derived from the first service address (same /24,
	// host part .254, or .253 if that is the service address).
	ProbeSource string `json:"probe_source,omitempty"`
	// Replicas are the server-side ports; the first is the preferred primary.
	Replicas []Replica `json:"replicas"`
	// Services are the virtual service addresses and their TCP ports.
	Services []Service `json:"services"`
	// Loops is how many dataplane loops (cores) share the connections.
	// Zero means one per core beyond two, at most 8 (engine.Config.Loops).
	// A change restarts the dataplane.
	Loops int `json:"loops,omitempty"`
	// Health tunes replica failure detection.
	Health Health `json:"health,omitzero"`
	// Limits bounds the dataplane's memory.
	Limits Limits `json:"limits,omitzero"`
	// Timers holds per-connection timers.
	Timers Timers `json:"timers,omitzero"`
	// Management configures the management plane (API, authentication,
	// history). Nil means the document has no "management" section: the
	// daemon then runs the management plane only when given --data-dir.
	Management *Management `json:"management,omitempty"`
}

// Replica names one replica and the box port it sits on.
type Replica struct {
	// Name identifies the replica in logs, counters and the API:
	// 1 to 32 characters from [a-z0-9_-].
	Name string `json:"name"`
	// Interface is the Linux network interface the replica is cabled to.
	Interface string `json:"interface"`
}

// Service is one virtual service address and the TCP ports whose connections
// the box replicates.
type Service struct {
	// Address is the service's IPv4 address, shared by all replicas.
	Address string `json:"address"`
	// Ports are the replicated TCP ports, 1 to 65535, each at most once.
	Ports []int `json:"ports"`
	// Release is the output release policy: "matched" (the default when
	// empty) or "immediate".
	Release string `json:"release,omitempty"`
	// Rejoin says how a recovered replica is brought into live
	// connections: "auto" (the default), "manual" (on an operator's
	// request) or "new-only" (it serves new connections only; no input
	// log is kept for the service).
	Rejoin string `json:"rejoin,omitempty"`
	// Replication is "strict" (the default: any output divergence
	// disqualifies a backup for that connection) or "tolerant" (a
	// divergence the client has acknowledged past does not).
	Replication string `json:"replication,omitempty"`
	// StateHook, if set, must succeed for a replica that came back before
	// it serves new connections or joins live ones.
	StateHook *StateHook `json:"state_hook,omitempty"`
}

// StateHook is a per-service application-state hook: a command run on the
// box with the replica's name as its last argument (and in FTB_REPLICA), or
// an HTTP POST to a URL with ?replica=NAME. See docs/rejoin.md.
type StateHook struct {
	Command []string `json:"command,omitempty"`
	URL     string   `json:"url,omitempty"`
	// Timeout bounds the hook. Default 30s.
	Timeout Duration `json:"timeout,omitempty"`
}

// Rejoin policy and replication mode names.
const (
	RejoinAuto          = "auto"
	RejoinManual        = "manual"
	RejoinNewOnly       = "new-only"
	ReplicationStrict   = "strict"
	ReplicationTolerant = "tolerant"
)

// Release policy names accepted in Service.Release.
const (
	ReleaseMatched   = "matched"
	ReleaseImmediate = "immediate"
)

// Health tunes replica failure detection; see engine.HealthConfig.
type Health struct {
	// Interval between probe rounds on each replica port. Default 20ms.
	Interval Duration `json:"interval,omitempty"`
	// FailAfter consecutive missed probe rounds mark a replica down. Default 3.
	FailAfter int `json:"fail_after,omitempty"`
	// RiseAfter consecutive good probe rounds mark a down replica up. Default 5.
	RiseAfter int `json:"rise_after,omitempty"`
	// StallTimeout bounds how long a replica may make no progress while its
	// peers do before it is failed. Default 300ms.
	StallTimeout Duration `json:"stall_timeout,omitempty"`
	// HoldDown keeps a replica failed by stall out of service; it doubles on
	// each repeat up to 64x. Default 3s.
	HoldDown Duration `json:"hold_down,omitempty"`
}

// Limits bounds the dataplane's memory; see engine.LimitsConfig.
type Limits struct {
	// MaxConnections caps the connection table. Default 65536.
	MaxConnections int `json:"max_connections,omitempty"`
	// MaxHoldBytes caps the output held per connection. Default 4 MiB.
	MaxHoldBytes int `json:"max_hold_bytes,omitempty"`
	// MaxTotalHoldBytes caps the output held over all connections.
	// Default 512 MiB.
	MaxTotalHoldBytes int64 `json:"max_total_hold_bytes,omitempty"`
	// MaxLogBytes caps each connection's input log, kept so that a
	// recovered replica can be replayed into it; a connection whose input
	// exceeds it is not re-joinable (and nothing else). Default 1 MiB.
	MaxLogBytes int `json:"max_log_bytes,omitempty"`
	// MaxTotalLogBytes caps the input logs of all connections. Default 256 MiB.
	MaxTotalLogBytes int64 `json:"max_total_log_bytes,omitempty"`
}

// Timers holds per-connection timers; see engine.TimersConfig.
type Timers struct {
	// SynAckWait is how long the box waits for the slower replicas'
	// SYN-ACKs once the first arrived. Default 200ms.
	SynAckWait Duration `json:"synack_wait,omitempty"`
	// FinWait is how long a FIN from some replicas waits for the others.
	// Default 300ms.
	FinWait Duration `json:"fin_wait,omitempty"`
	// TimeWait is how long a closed connection's entry is kept. Default 30s.
	TimeWait Duration `json:"time_wait,omitempty"`
	// Idle removes connections with no traffic for this long. Default 2h.
	Idle Duration `json:"idle,omitempty"`
	// JoinTimeout bounds a rejoin from SYN to caught up. Default 10s.
	JoinTimeout Duration `json:"join_timeout,omitempty"`
}

// Default returns the built-in lab configuration used by `ftbridge demo`:
// uplink "up0", replicas a on "rp0" and b on "rp1", and service 198.18.0.10
// on ports 7000, 6379 and 80. Every optional field is at its default.
func Default() *Config {
	return &Config{
		Version: CurrentVersion,
		Uplink:  "up0",
		Replicas: []Replica{
			{Name: "a", Interface: "rp0"},
			{Name: "b", Interface: "rp1"},
		},
		Services: []Service{
			{Address: "198.18.0.10", Ports: []int{7000, 6379, 80}},
		},
	}
}

// Dataplane converts c into the dataplane's configuration, with every unset
// optional field at its default (engine.Config.WithDefaults). It is meant for
// a Config that passed Validate; fields that do not parse are left at their
// zero values.
func (c *Config) Dataplane() engine.Config {
	ec := engine.Config{
		Uplink: c.Uplink,
		Loops:  c.Loops,
		Health: engine.HealthConfig{
			Interval:     time.Duration(c.Health.Interval),
			FailAfter:    c.Health.FailAfter,
			RiseAfter:    c.Health.RiseAfter,
			StallTimeout: time.Duration(c.Health.StallTimeout),
			HoldDown:     time.Duration(c.Health.HoldDown),
		},
		Limits: engine.LimitsConfig{
			MaxConnections:    c.Limits.MaxConnections,
			MaxHoldBytes:      c.Limits.MaxHoldBytes,
			MaxTotalHoldBytes: c.Limits.MaxTotalHoldBytes,
			MaxLogBytes:       c.Limits.MaxLogBytes,
			MaxTotalLogBytes:  c.Limits.MaxTotalLogBytes,
		},
		Timers: engine.TimersConfig{
			SynAckWait:  time.Duration(c.Timers.SynAckWait),
			FinWait:     time.Duration(c.Timers.FinWait),
			TimeWait:    time.Duration(c.Timers.TimeWait),
			Idle:        time.Duration(c.Timers.Idle),
			JoinTimeout: time.Duration(c.Timers.JoinTimeout),
		},
	}
	for _, r := range c.Replicas {
		ec.Replicas = append(ec.Replicas, engine.ReplicaConfig{Name: r.Name, Interface: r.Interface})
	}
	for _, s := range c.Services {
		sc := engine.ServiceConfig{Release: engine.ReleaseMatched}
		if s.Release == ReleaseImmediate {
			sc.Release = engine.ReleaseImmediate
		}
		switch s.Rejoin {
		case RejoinManual:
			sc.Rejoin = engine.RejoinManual
		case RejoinNewOnly:
			sc.Rejoin = engine.RejoinNewOnly
		}
		if s.Replication == ReplicationTolerant {
			sc.Replication = engine.ReplicationTolerant
		}
		if s.StateHook != nil {
			ec.ReadyGate = true
		}
		if a, err := netip.ParseAddr(s.Address); err == nil {
			sc.Address = a
		}
		for _, p := range s.Ports {
			if p > 0 && p <= 65535 {
				sc.Ports = append(sc.Ports, uint16(p))
			}
		}
		ec.Services = append(ec.Services, sc)
	}
	if c.VIPMAC != "" {
		if hw, err := net.ParseMAC(c.VIPMAC); err == nil && len(hw) == 6 {
			copy(ec.VIPMAC[:], hw)
		}
	}
	if c.ProbeSource != "" {
		if a, err := netip.ParseAddr(c.ProbeSource); err == nil {
			ec.ProbeSource = a
		}
	}
	return ec.WithDefaults()
}
