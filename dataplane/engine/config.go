package engine

import (
	"net/netip"
	"runtime"
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

	// ReadyGate holds every replica that comes up out of service until
	// Engine.SetReady says its application state is in sync (the
	// management plane runs the per-service state hook, then calls it).
	ReadyGate bool

	// Loops is how many dataplane loops share the work, each on a core of
	// its own with a share of the connections (flow affinity: every
	// frame of a connection, from every port, reaches the same loop).
	// Zero means one loop per core beyond two, at most 8: on a box of two
	// cores the kernel's own work (softirq, the sockets' copies) needs the
	// second.
	Loops int

	Health HealthConfig
	Limits LimitsConfig
	Timers TimersConfig
}

// ReplicaConfig names one replica and the box port it sits on.
type ReplicaConfig struct {
	Name      string
	Interface string
}

// RejoinPolicy says how a replica that comes back is brought into the
// service's live connections.
type RejoinPolicy uint8

const (
	// RejoinAuto brings it into every re-joinable live connection as soon
	// as it is healthy (and ready, see Config.ReadyGate). The default.
	RejoinAuto RejoinPolicy = iota
	// RejoinManual waits for an operator's Engine.Rejoin.
	RejoinManual
	// RejoinNewOnly never joins live connections; the replica serves new
	// connections only.
	RejoinNewOnly
)

var rejoinNames = [...]string{"auto", "manual", "new-only"}

// String returns the policy's configuration name.
func (p RejoinPolicy) String() string { return rejoinNames[p] }

// Replication is how strictly backups' output must match the primary's.
type Replication uint8

const (
	// ReplicationStrict (active): any divergence disqualifies a backup
	// for that connection. The default.
	ReplicationStrict Replication = iota
	// ReplicationTolerant (semi-active-tolerant): a divergence the client
	// has acknowledged past does not disqualify (servers with harmless
	// differences such as Date headers can still fail over); one across
	// the client's acknowledged point does.
	ReplicationTolerant
)

// String returns the mode's configuration name.
func (r Replication) String() string {
	if r == ReplicationTolerant {
		return "tolerant"
	}
	return "strict"
}

// ServiceConfig is one virtual service: an address shared by all replicas and
// the TCP ports whose connections the box replicates.
type ServiceConfig struct {
	Address netip.Addr
	Ports   []uint16
	// Release is the output release policy of this service's connections.
	Release ReleasePolicy
	// Rejoin is how recovered replicas join live connections.
	Rejoin RejoinPolicy
	// Replication is the divergence policy.
	Replication Replication
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
	// MaxLogBytes caps each connection's input log (kept for rejoins);
	// a connection whose input exceeds it is not re-joinable. Default
	// 1 MiB; negative disables the log.
	MaxLogBytes int
	// MaxTotalLogBytes caps the input logs over all connections. Default 256 MiB.
	MaxTotalLogBytes int64
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
	// JoinTimeout bounds a rejoin from SYN to caught up. Default 10s.
	JoinTimeout time.Duration
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
	if c.Loops <= 0 {
		c.Loops = DefaultLoops(runtime.NumCPU())
	}
	defInt(&c.Limits.MaxConnections, 65536)
	defInt(&c.Limits.MaxHoldBytes, 4<<20)
	if c.Limits.MaxTotalHoldBytes <= 0 {
		c.Limits.MaxTotalHoldBytes = 512 << 20
	}
	if c.Limits.MaxLogBytes == 0 {
		c.Limits.MaxLogBytes = 1 << 20
	}
	if c.Limits.MaxTotalLogBytes <= 0 {
		c.Limits.MaxTotalLogBytes = 256 << 20
	}
	def(&c.Timers.JoinTimeout, 10*time.Second)
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

// MaxLoops bounds Config.Loops.
const MaxLoops = 64

// DefaultLoops is the number of loops on a machine of cpus cores: one,
// plus one per core beyond two, at most 8.
func DefaultLoops(cpus int) int {
	return min(max(cpus-2, 0)+1, 8)
}
