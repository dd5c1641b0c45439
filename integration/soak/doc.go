// Package soak is ftbridge's soak and chaos runner and the building blocks
// of its flood and exhaustion tests.
//
// Run builds a network-namespace lab (package lab), starts the
// deterministic demo service (package labsvc) on every replica and the
// ftbridged daemon in the box, then keeps many client connections of mixed
// kinds busy through the service address (bulk downloads and uploads,
// echoes, request/response, idle long-lived connections with periodic
// INCR; optionally redis) while it injects faults on a schedule: kill -9
// of a replica's server and restart, SIGSTOP/SIGCONT, link flaps on either
// end of a replica's cable, namespace deletion and re-creation, and
// packet loss, reordering, duplication and delay. Every byte is verified
// by the client; a failure of any stream is a finding, listed with its
// error and the faults around it. The Report says how many failovers the
// daemon performed, what was verified, the client-visible stalls, and the
// daemon's memory and threads over time.
//
// The runner never removes the last way a connection can survive: before
// each fault it asks the daemon for a snapshot and only picks victims such
// that every live connection keeps a live replica outside the fault and at
// least one replica stays healthy for new connections. A connection whose
// every replica died is not a dataplane bug, so the runner does not
// provoke it.
//
// Bridge is the reusable part: a lab with ftbridged running in its box,
// servers on its replicas, a follower of the daemon's JSON event log,
// snapshots on demand (SIGUSR1) and /proc sampling of the daemon. RawSender
// and the frame builders feed hostile traffic into a lab namespace for the
// flood tests in package integration.
//
// Everything needs root; everything runs inside namespaces the lab
// creates, on 198.18.0.0/15 only, and is torn down by Close even on
// failure. Processes are only signalled by the PIDs the lab recorded.
package soak
