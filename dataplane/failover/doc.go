// Package failover is the per-connection state machine of the bridge: it
// turns one client TCP connection into one connection per replica and back,
// so that the client sees a single peer while any replica may die.
//
// A Conn owns everything the failover contract (docs/failover-contract.md)
// says about one connection: the replica set chosen at SYN time, the
// per-replica sequence and timestamp deltas, the box's copy of the output the
// client has not acknowledged yet, the ACK and window gating, FIN and RST
// agreement, divergence detection and the promotion of a backup.
//
// The package does no I/O and reads no clock: segments arrive already parsed
// (Segment), time is passed in, and everything the connection wants sent goes
// through the Output interface. That keeps it testable step by step over
// crafted segments with a fake clock, and keeps the engine's loop the only
// place that touches sockets.
//
// Sequence spaces. The client's sequence space is common to every replica
// (the SYN goes to each of them unchanged). Each replica has its own server
// sequence space; the "view" is the server space the client sees, which is
// the space of the replica that was primary at SYN time. A replica sequence
// number s maps to the view as s - delta. Timestamps work alike with tsDelta.
package failover
