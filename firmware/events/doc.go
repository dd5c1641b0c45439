// Package events is the appliance's event log: failover, health,
// connection, configuration, authentication and system events, kept in a
// bounded store that survives restarts and fanned out live to subscribers
// (the API's Server-Sent Events stream).
//
// The store is an append-only file of JSON lines in its directory,
// events.log, rotated to events.log.1 when it holds half of the configured
// maximum, so the two files together never hold more than the maximum. A
// torn last line (a crash in the middle of a write) is dropped at open and
// the file is cut back to its last complete line. Each event is written
// with one write call, so it survives a crash of the process; the file is
// fsynced at most once a second and at Close, so a power cut may lose the
// last second of events but never the file.
//
// Connection open and close events are streamed live but not stored: at a
// busy box they would push the failovers out of the bounded log.
package events
