// Package webui is the ftbridge appliance's web dashboard: the built
// front-end (dist/, committed, produced from src/ by build.mjs) embedded in
// the binary, and an http.Handler that serves it.
//
// The dashboard is a static single-page application that talks only to
// the management API (firmware/api) of the same origin: it logs in with a
// session cookie, sends the CSRF token on changes and follows the event
// stream. The handler therefore needs no access to the appliance's state;
// the daemon passes it as firmware/api's Options.UI, which serves it
// without authentication for every path outside /api/ and /metrics.
//
// Building the front-end needs Node.js and npm (see README.md); building
// the Go package does not: it embeds whatever dist/ holds, and a test
// checks that dist/ matches the sources when node_modules is installed.
package webui
