package engine

import "sync/atomic"

// DropReason says why the dataplane dropped a frame.
type DropReason int

// Drop reasons. Every frame the dataplane discards is counted under one.
const (
	DropMalformed      DropReason = iota // failed header validation
	DropBadChecksum                      // TCP checksum wrong
	DropNotForUs                         // addressed to nobody the box speaks for
	DropNoConn                           // TCP segment of no known connection
	DropTableFull                        // SYN beyond the connection cap
	DropNoReplica                        // no healthy replica to serve a SYN
	DropFragment                         // IP fragment (not supported)
	DropBackupTraffic                    // a backup's non-service traffic (contained)
	DropNoNeighbor                       // destination MAC unknown yet
	DropTxError                          // the socket refused a frame
	DropTruncated                        // frame larger than the receive buffer
	DropIPv6                             // IPv6 (not served yet)
	DropPortDown                         // frame for a port that is down or gone
	DropSocketOverflow                   // dropped by the kernel: a port's socket queue was full
	numDropReasons
)

var dropNames = [numDropReasons]string{"malformed", "bad-checksum", "not-for-us", "no-connection",
	"table-full", "no-replica", "fragment", "backup-traffic", "no-neighbor", "tx-error", "truncated", "ipv6", "port-down", "socket-overflow"}

// String returns the reason's name.
func (r DropReason) String() string { return dropNames[r] }

// PortCounters count one port's traffic.
type PortCounters struct {
	RxFrames, RxBytes, TxFrames, TxBytes atomic.Uint64
	// RxKernelDrops counts frames the kernel dropped because the socket's
	// receive buffer was full (the loop fell behind); also counted in
	// Drops[DropSocketOverflow].
	RxKernelDrops atomic.Uint64
}

// Counters are the dataplane's counters; all fields are safe to read from
// any goroutine at any time.
type Counters struct {
	Drops       [numDropReasons]atomic.Uint64
	ConnsOpened atomic.Uint64
	ConnsClosed atomic.Uint64
	// LastMemberKept counts connections that kept a replica failed on
	// soft evidence because it was their last live member.
	LastMemberKept atomic.Uint64
	// LastResortConns counts new connections given to replicas down on
	// probe silence alone because no replica was healthy.
	LastResortConns  atomic.Uint64
	Failovers        atomic.Uint64
	Divergences      atomic.Uint64
	RejoinsStarted   atomic.Uint64
	RejoinsCompleted atomic.Uint64
	RejoinsFailed    atomic.Uint64
	ProbesSent       atomic.Uint64
	ARPReplies       atomic.Uint64
	ICMPUnreachable  atomic.Uint64
	EventsDropped    atomic.Uint64
	ActiveConns      atomic.Int64
	HeldBytes        atomic.Int64
}

// DropCounts returns the drop counters by reason name.
func (c *Counters) DropCounts() map[string]uint64 {
	m := make(map[string]uint64, numDropReasons)
	for i := range c.Drops {
		m[dropNames[i]] = c.Drops[i].Load()
	}
	return m
}
