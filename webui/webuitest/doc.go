// Package webuitest runs the dashboard in a real browser for tests: it
// assembles the management plane as the daemon does (configuration store,
// event log, credentials, certificate store and firmware/api serving the
// embedded dashboard) around any dataplane, and drives headless Chromium
// through the DevTools protocol (chromedp) with helpers to wait for the
// page, type, click and save screenshots.
//
// Tests that use it skip when no Chromium is installed (Debian: apt-get
// install chromium); FTB_CHROMIUM names another browser binary.
// Screenshots go to artifacts/webui/ at the repository root (gitignored),
// or to $FTB_ARTIFACTS.
package webuitest
