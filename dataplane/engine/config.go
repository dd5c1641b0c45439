package engine

import (
	"net/netip"
	"time"
)

// ReleasePolicy says when the primary's output may be released to the client.
type ReleasePolicy uint8

const (
	// ReleaseMatched releases a byte only once every live backup has produced
	// the same byte at the same offset (the default).
	ReleaseMatched ReleasePolicy = iota
	// ReleaseImmediate releases the primary's output at once and compares the
	// backups' output as it arrives.
	ReleaseImmediate
)

// String returns the policy's configuration name.
func (p ReleasePolicy) String() string {
	if p == ReleaseImmediate {
		return "immediate"
	}
	return "matched"
}

// Config is the dataplane's complete configuration. The zero value of every
// optional field means "use the default"; call WithDefaults to fill them in.
type Config struct {
	// Uplink is the client-side interface.
	Uplink string
	// Replicas are the server-side ports; the first is the preferred primary.
	Replicas []ReplicaConfig
	// Services are the virtual service addresses and their TCP ports.
	Services []ServiceConfig
	// VIPMAC is the MAC address clients see for every service address. Zero
	// means the uplink's own MAC address.
	VIPMAC [6]byte
	// ProbeSource is the IPv4 address the box uses as source for its ARP and
	// TCP health probes on replica ports. Invalid means: derived from the first
	// service address (same /24, host part .254, or .253 if that is the VIP).
	ProbeSource netip.Addr

	Health HealthConfig
	Limits LimitsConfig
	Timers TimersConfig
}

// ReplicaConfig names one replica and the box port it sits on.
type ReplicaConfig struct {
	Name      string
	Interface string
}

// ServiceConfig is one virtual service: an address shared by all replicas and
// the TCP ports whose connections the box replicates.
type ServiceConfig struct {
	Address netip.Addr
	Ports   []uint16
	// Release is the output release policy of this service's connections.
	Release ReleasePolicy
}

// HealthConfig tunes replica failure detection.
type HealthConfig struct {
	// Interval between probes (ARP and TCP) on each replica port. Default 20ms.
	Interval time.Duration
	// FailAfter consecutive missed probe rounds mark a replica down. Default 3.
	FailAfter int
	// RiseAfter consecutive good probe rounds mark a down replica up. Default 5.
	RiseAfter int
	// StallTimeout bounds how long a replica may make no progress while its
	// peers do (the gray-failure test) before it is failed. Default 300ms.
	StallTimeout time.Duration
	// HoldDown keeps a replica that failed by stall out of service before
	// probes may bring it back; it doubles on each repeat up to 64x. Default 3s.
	HoldDown time.Duration
}

// LimitsConfig bounds the dataplane's memory.
type LimitsConfig struct {
	// MaxConnections caps the connection table; SYNs beyond it are dropped
	// and counted. Default 65536.
	MaxConnections int
	// MaxHoldBytes caps the output held per connection. Default 4 MiB.
	MaxHoldBytes int
	// MaxTotalHoldBytes caps the output held over all connections. Default 512 MiB.
	MaxTotalHoldBytes int64
}

// TimersConfig holds per-connection timers.
type TimersConfig struct {
	// SynAckWait is how long the box waits for the slower replicas' SYN-ACKs
	// once the first one arrived. Default 200ms.
	SynAckWait time.Duration
	// FinWait is how long a FIN from some replicas waits for the others to
	// agree before the lone closers are treated as failed. Default 300ms.
	FinWait time.Duration
	// TimeWait is how long a closed connection's entry is kept. Default 30s.
	TimeWait time.Duration
	// Idle removes connections with no traffic for this long. Default 2h.
	Idle time.Duration
}

// WithDefaults returns c with every unset optional field at its default.
func (c Config) WithDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	defInt := func(d *int, v int) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.Health.Interval, 20*time.Millisecond)
	defInt(&c.Health.FailAfter, 3)
	defInt(&c.Health.RiseAfter, 5)
	def(&c.Health.StallTimeout, 300*time.Millisecond)
	def(&c.Health.HoldDown, 3*time.Second)
	defInt(&c.Limits.MaxConnections, 65536)
	defInt(&c.Limits.MaxHoldBytes, 4<<20)
	if c.Limits.MaxTotalHoldBytes <= 0 {
		c.Limits.MaxTotalHoldBytes = 512 << 20
	}
	def(&c.Timers.SynAckWait, 200*time.Millisecond)
	def(&c.Timers.FinWait, 300*time.Millisecond)
	def(&c.Timers.TimeWait, 30*time.Second)
	def(&c.Timers.Idle, 2*time.Hour)
	if !c.ProbeSource.IsValid() && len(c.Services) > 0 && c.Services[0].Address.Is4() {
		a := c.Services[0].Address.As4()
		a[3] = 254
		if netip.AddrFrom4(a) == c.Services[0].Address {
			a[3] = 253
		}
		c.ProbeSource = netip.AddrFrom4(a)
	}
	return c
}
