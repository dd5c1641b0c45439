package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ftbridge/ftbridge/firmware/events"
	"github.com/ftbridge/ftbridge/firmware/update"
)

// Updater is the firmware update engine behind /system/update and
// /system/slots: RAUC and the ESP's boot entries on the appliance
// (update.Rauc and update.System), a fake in tests.
type Updater interface {
	// Install installs the bundle file into the inactive slot and makes
	// it boot next, on trial. It calls progress with RAUC's percent and
	// step as it goes and returns RAUC's verdict (a bad signature is an
	// error here).
	Install(ctx context.Context, bundle string, progress func(percent int, step string)) error
	// Slots reports the A/B slots.
	Slots() (update.Status, error)
}

// Update states reported by GET /system/update.
const (
	UpdateIdle       = "idle"
	UpdateReceiving  = "receiving"
	UpdateInstalling = "installing"
	// UpdateInstalled: the bundle is in the other slot, which boots on
	// trial at the next reboot.
	UpdateInstalled = "installed"
	UpdateFailed    = "failed"
)

// DefaultMaxBundle bounds an uploaded bundle when Options.MaxBundle is
// zero: a root slot is 320 MiB, so a bundle is smaller than that.
const DefaultMaxBundle = 512 << 20

// bundleReserve is the free space an upload must leave on the data
// partition: the configuration and event log must still be writable.
const bundleReserve = 8 << 20

// uploadIdle is how long an upload may send nothing before it is cut off:
// the server has no overall read timeout (a bundle over a slow link takes
// minutes), and a stalled client must not hold the installer.
const uploadIdle = 60 * time.Second

// idleReader renews the connection's read deadline before every read, so
// only silence, not a long upload, ends it.
type idleReader struct {
	r    io.Reader
	rc   *http.ResponseController
	idle time.Duration
}

func (i idleReader) Read(p []byte) (int, error) {
	// Not every ResponseWriter supports deadlines; without one the read
	// simply has none.
	_ = i.rc.SetReadDeadline(time.Now().Add(i.idle))
	return i.r.Read(p)
}

// bundlePattern names uploads in UpdateDir (os.CreateTemp's pattern);
// leftovers of an interrupted daemon are removed at start.
const bundlePattern = "bundle-*.raucb"

// UpdateState is the answer of GET /system/update: the one install the
// appliance runs at a time, or the outcome of the last one.
type UpdateState struct {
	// State is idle, receiving, installing, installed or failed.
	State string `json:"state"`
	// Received and Size count the upload's bytes; Size is 0 when the
	// client sent no Content-Length.
	Received int64 `json:"received_bytes,omitempty"`
	Size     int64 `json:"size_bytes,omitempty"`
	// Percent is RAUC's progress while installing (100 once installed).
	Percent int `json:"percent"`
	// Step is RAUC's current step, such as "Checking bundle".
	Step string `json:"step,omitempty"`
	// Error says why the last install failed.
	Error string `json:"error,omitempty"`
	// RebootRequired: an installed update waits for a reboot, after which
	// it runs on trial and is committed once the daemon is healthy.
	RebootRequired bool `json:"reboot_required"`
	// Slot is the slot the update was installed into.
	Slot string `json:"slot,omitempty"`
	// User is who started it.
	User     string    `json:"user,omitempty"`
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
}

// updates is the server's install state.
type updates struct {
	mu sync.Mutex
	st UpdateState
}

func (u *updates) get() UpdateState {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.st
}

func (u *updates) set(f func(*UpdateState)) {
	u.mu.Lock()
	defer u.mu.Unlock()
	f(&u.st)
}

// begin claims the installer for a new upload; false if one is running.
func (u *updates) begin(st UpdateState) (prev UpdateState, ok bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.st.State == UpdateReceiving || u.st.State == UpdateInstalling {
		return u.st, false
	}
	prev, u.st = u.st, st
	return prev, true
}

// removeStaleBundles deletes uploads a previous daemon left behind (killed
// mid-upload or mid-install): they would fill the data partition.
func removeStaleBundles(dir string) {
	old, _ := filepath.Glob(filepath.Join(dir, bundlePattern))
	for _, f := range old {
		os.Remove(f)
	}
}

func (s *Server) handleUpdateGet(w http.ResponseWriter, r *http.Request) {
	st := s.upd.get()
	if st.State == "" {
		st.State = UpdateIdle
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) handleSlots(w http.ResponseWriter, r *http.Request) {
	if s.o.Updater == nil {
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, "", "firmware updates are not available on this system (no RAUC)")
		return
	}
	st, err := s.o.Updater.Slots()
	if err != nil {
		writeError(w, http.StatusInternalServerError, codeInternal, "", "reading the boot slots: %v", err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// countingWriter counts what passes into the upload state, so GET
// /system/update shows the upload's progress.
type countingWriter struct {
	w io.Writer
	u *updates
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.u.set(func(st *UpdateState) { st.Received += int64(n) })
	return n, err
}

// handleUpdatePost streams a bundle to a file on the data partition (never
// whole in memory: bundles are tens of MiB) and starts the install in the
// background. The signature is RAUC's to check: a bad bundle fails the
// install, with RAUC's reason in the state.
func (s *Server) handleUpdatePost(w http.ResponseWriter, r *http.Request) {
	if s.o.Updater == nil || s.o.UpdateDir == "" {
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, "", "firmware updates are not available on this system (no RAUC)")
		return
	}
	// Not JSON, but the rule is the same as readBody's: a cross-site form
	// cannot send this type.
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/octet-stream" {
		writeError(w, http.StatusUnsupportedMediaType, codeMediaType, "", "send the bundle as the request body with Content-Type application/octet-stream")
		return
	}
	limit := s.o.MaxBundle
	if limit <= 0 {
		limit = DefaultMaxBundle
	}
	if r.ContentLength > limit {
		writeError(w, http.StatusRequestEntityTooLarge, codeTooLarge, "", "the bundle is %d bytes; at most %d are accepted", r.ContentLength, limit)
		return
	}
	if r.ContentLength == 0 {
		writeError(w, http.StatusBadRequest, codeBadRequest, "", "the request body (the bundle) is empty")
		return
	}
	user := ""
	if p := principalOf(r); p != nil {
		user = p.User
	}
	prev, ok := s.upd.begin(UpdateState{State: UpdateReceiving, Size: max(r.ContentLength, 0), User: user, Started: s.now().UTC()})
	if !ok {
		writeError(w, http.StatusConflict, codeConflict, "", "an update is already %s (started by %s at %s); wait for it to finish", prev.State, prev.User, prev.Started.Format(time.RFC3339))
		return
	}
	// Errors before any byte was taken leave the previous state; later
	// ones are the upload's outcome.
	restore := func() { s.upd.set(func(st *UpdateState) { *st = prev }) }
	fail := func(status int, code, format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		s.upd.set(func(st *UpdateState) { st.State, st.Error, st.Finished = UpdateFailed, msg, s.now().UTC() })
		s.event(r, events.Event{Kind: "update-failed", Detail: msg})
		writeError(w, status, code, "", "%s", msg)
	}
	if err := os.MkdirAll(s.o.UpdateDir, 0o700); err != nil {
		restore()
		writeError(w, http.StatusInternalServerError, codeInternal, "", "update directory: %v", err)
		return
	}
	// Tight modes: bundles are firmware; only root reads them.
	os.Chmod(s.o.UpdateDir, 0o700)
	var fs unix.Statfs_t
	if r.ContentLength > 0 && unix.Statfs(s.o.UpdateDir, &fs) == nil {
		if free := int64(fs.Bavail) * int64(fs.Bsize); free-bundleReserve < r.ContentLength {
			restore()
			writeError(w, http.StatusInsufficientStorage, codeTooLarge, "", "the bundle is %d bytes but the data partition has %d bytes free (%d kept in reserve)", r.ContentLength, free, bundleReserve)
			return
		}
	}
	f, err := os.CreateTemp(s.o.UpdateDir, bundlePattern)
	if err != nil {
		restore()
		writeError(w, http.StatusInternalServerError, codeInternal, "", "storing the bundle: %v", err)
		return
	}
	path := f.Name()
	body := idleReader{r: http.MaxBytesReader(w, r.Body, limit), rc: http.NewResponseController(w), idle: s.uploadIdle}
	n, err := io.Copy(countingWriter{f, &s.upd}, body)
	_ = body.rc.SetReadDeadline(time.Time{})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		os.Remove(path)
		fail(http.StatusRequestEntityTooLarge, codeTooLarge, "the bundle is larger than %d bytes", limit)
		return
	case err != nil:
		os.Remove(path)
		fail(http.StatusBadRequest, codeBadRequest, "the upload broke off after %d bytes: %v", n, err)
		return
	case n == 0:
		os.Remove(path)
		restore()
		writeError(w, http.StatusBadRequest, codeBadRequest, "", "the request body (the bundle) is empty")
		return
	case r.ContentLength > 0 && n != r.ContentLength:
		os.Remove(path)
		fail(http.StatusBadRequest, codeBadRequest, "the upload ended after %d of %d bytes", n, r.ContentLength)
		return
	}
	// RAUC (a service of its own) resolves nothing for us: give it the
	// real path, not the /var/lib/ftbridge link.
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	s.upd.set(func(st *UpdateState) { st.State, st.Size, st.Step = UpdateInstalling, n, "starting" })
	s.event(r, events.Event{Kind: "update-started", Detail: fmt.Sprintf("bundle of %d bytes", n)})
	remote := clientAddr(r)
	go s.install(path, user, remote)
	writeJSON(w, http.StatusAccepted, s.upd.get())
}

// install runs the Updater on an uploaded bundle and records the outcome.
// It runs after the upload's answer: RAUC takes tens of seconds.
func (s *Server) install(path, user, remote string) {
	defer os.Remove(path)
	err := s.o.Updater.Install(s.ctx, path, func(p int, step string) {
		s.upd.set(func(st *UpdateState) { st.Percent, st.Step = p, step })
	})
	now := s.now().UTC()
	if err != nil {
		msg := err.Error()
		s.upd.set(func(st *UpdateState) { st.State, st.Error, st.Finished = UpdateFailed, msg, now })
		s.o.Events.Add(events.Event{Kind: "update-failed", Detail: msg, User: user, Remote: remote})
		return
	}
	detail := "installed; reboot to run it on trial"
	slot := ""
	if st, err := s.o.Updater.Slots(); err == nil {
		slot = string(st.Next)
		for _, ss := range st.Slots {
			if ss.Slot == st.Next && !ss.Booted {
				detail = fmt.Sprintf("version %s installed into slot %s; it boots on trial at the next reboot", orUnknown(ss.Version), ss.Slot)
			}
		}
	}
	s.upd.set(func(st *UpdateState) {
		st.State, st.Percent, st.Step, st.RebootRequired, st.Slot, st.Finished = UpdateInstalled, 100, "done", true, slot, now
	})
	s.o.Events.Add(events.Event{Kind: "update-installed", Detail: detail, User: user, Remote: remote})
}

func orUnknown(v string) string {
	if strings.TrimSpace(v) == "" {
		return "unknown"
	}
	return v
}
