// Package api is the management plane's HTTP surface: the REST API under
// /api/v1 (gorilla/mux), its authentication (HTTP Basic, bearer tokens,
// browser sessions with CSRF tokens), the Server-Sent Events stream,
// Prometheus metrics at /metrics and the hook for the static web UI at /.
//
// The routes, their bodies and their errors are described in docs/api.md
// and in the OpenAPI 3 document served at /api/v1/openapi.json (embedded
// from openapi.json; a test keeps it and the router identical).
//
// A Server is built from a Dataplane (the engine or a fake), the
// configuration store, the event log and the credential store; it holds no
// listener itself: Handler returns the http.Handler to serve.
package api
