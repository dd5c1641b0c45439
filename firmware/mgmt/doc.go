// Package mgmt runs the management plane next to the dataplane: it opens
// the configuration store (with its fallback and rollback), the event log,
// the credential and certificate stores, starts the dataplane engine,
// serves the API over HTTPS (and plain HTTP on loopback when configured),
// forwards dataplane events to the event log, applies configuration
// changes, and talks to systemd (READY once the dataplane answers and the
// listeners are open; a watchdog fed by the dataplane loop's liveness).
//
// Applying a configuration whose dataplane part changed reconfigures the
// running engine, keeping the connections the change does not concern;
// only a new uplink restarts it in-process (docs/api.md).
package mgmt
