// Package engine is the dataplane's loop: it reads batches of frames from
// the uplink and the replica ports, classifies them (ARP, service TCP,
// health-probe replies, other traffic of the primary), runs the
// per-connection state machines of package failover, builds the frames they
// ask for and writes them in batches.
//
// Everything that touches connection state runs on one goroutine, so the
// hot path takes no lock. Other goroutines talk to the loop through a narrow
// Control API (snapshot, drain/enable/disable/promote a replica) that hands
// requests over a channel and wakes the loop, through Counters (atomics
// readable at any time) and through a bounded stream of Events. The package
// imports nothing from the management plane.
package engine
