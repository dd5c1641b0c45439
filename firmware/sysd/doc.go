// Package sysd connects the daemon to systemd (coreos/go-systemd): the
// sd_notify protocol (READY=1 once the dataplane and the API are up,
// STATUS= text, STOPPING=1), a watchdog fed only while the dataplane loop
// proves alive, and structured journal entries.
//
// Everything is a no-op outside systemd (no NOTIFY_SOCKET, no watchdog
// configured, stderr not connected to the journal), so the daemon runs the
// same in a terminal, a test or a network namespace.
package sysd
