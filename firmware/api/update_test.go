package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ftbridge/ftbridge/firmware/events"
	"github.com/ftbridge/ftbridge/firmware/update"
)

// fakeUpdater stands in for RAUC: it records what it was given, reports
// progress, and waits for the test's go-ahead before finishing.
type fakeUpdater struct {
	mu      sync.Mutex
	got     [][32]byte // sha256 of each bundle file as Install saw it
	modes   []os.FileMode
	paths   []string
	err     error
	release chan struct{} // nil: finish at once
	started chan struct{}
	status  update.Status
}

func (f *fakeUpdater) Install(ctx context.Context, bundle string, progress func(int, string)) error {
	data, err := os.ReadFile(bundle)
	if err != nil {
		return err
	}
	fi, _ := os.Stat(bundle)
	f.mu.Lock()
	f.got = append(f.got, sha256.Sum256(data))
	f.modes = append(f.modes, fi.Mode().Perm())
	f.paths = append(f.paths, bundle)
	rel, failWith := f.release, f.err
	f.mu.Unlock()
	progress(0, "Installing")
	progress(40, "Checking bundle done.")
	if f.started != nil {
		select {
		case f.started <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if rel != nil {
		select {
		case <-rel:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if failWith != nil {
		return failWith
	}
	progress(100, "Installing done.")
	f.mu.Lock()
	f.status.Next = update.SlotB
	f.status.Slots[1].State, f.status.Slots[1].Version = update.StatePending, "v2"
	f.mu.Unlock()
	return nil
}

func (f *fakeUpdater) Slots() (update.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.status
	st.Slots = append([]update.SlotStatus(nil), f.status.Slots...)
	return st, nil
}

func newFakeUpdater() *fakeUpdater {
	return &fakeUpdater{status: update.Status{Booted: update.SlotA, Next: update.SlotA, Slots: []update.SlotStatus{
		{Slot: update.SlotA, Partition: "root-a", Booted: true, State: update.StateCommitted, Version: "v1", Generation: 1},
		{Slot: update.SlotB, Partition: "root-b", State: update.StateEmpty},
	}}}
}

// withUpdater replaces e's server by one with an updater (nil: none) and
// the update directory dir.
func withUpdater(e *env, u Updater, dir string, maxBundle int64) {
	e.t.Helper()
	e.srv.Close()
	e.ts.Close()
	o := e.srv.o
	o.Updater, o.UpdateDir, o.MaxBundle = u, dir, maxBundle
	e.srv = New(o)
	e.srv.afterResponse = func(f func()) { f() }
	e.ts = httptest.NewTLSServer(e.srv.Handler())
	e.t.Cleanup(func() {
		e.srv.Close()
		e.ts.Close()
	})
}

// waitUpdate polls GET /system/update until its state is not busy.
func waitUpdate(e *env) UpdateState {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var st UpdateState
		e.must(req{method: "GET", path: "/api/v1/system/update"}, 200).json(e.t, &st)
		if st.State != UpdateInstalling && st.State != UpdateReceiving {
			return st
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("update still %s after 10 s: %+v", st.State, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func eventKinds(e *env) string {
	var kinds []string
	for _, ev := range e.events.Query(events.Query{Kinds: []string{"update-started", "update-installed", "update-failed"}}) {
		kinds = append(kinds, ev.Kind+":"+ev.Detail)
	}
	return strings.Join(kinds, "\n")
}

func bundleFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*"))
	return m
}

func TestUpdateInstall(t *testing.T) {
	e := newEnv(t, nil)
	dir := filepath.Join(e.dir, "update")
	u := newFakeUpdater()
	u.release, u.started = make(chan struct{}), make(chan struct{}, 1)
	withUpdater(e, u, dir, 0)

	var st UpdateState
	e.must(req{method: "GET", path: "/api/v1/system/update"}, 200).json(t, &st)
	if st.State != UpdateIdle {
		t.Fatalf("initial state %+v", st)
	}
	var slots update.Status
	e.must(req{method: "GET", path: "/api/v1/system/slots"}, 200).json(t, &slots)
	if slots.Booted != "A" || slots.Next != "A" || len(slots.Slots) != 2 || slots.Slots[0].Version != "v1" || slots.Slots[1].State != "empty" {
		t.Fatalf("slots %+v", slots)
	}

	bundle := make([]byte, 3<<20+17)
	rand.Read(bundle)
	res := e.must(req{method: "POST", path: "/api/v1/system/update", body: string(bundle), ctype: "application/octet-stream"}, http.StatusAccepted)
	res.json(t, &st)
	if st.State != UpdateInstalling || st.Size != int64(len(bundle)) || st.Received != int64(len(bundle)) || st.User != "admin" {
		t.Fatalf("answer to the upload: %+v", st)
	}
	<-u.started
	e.must(req{method: "GET", path: "/api/v1/system/update"}, 200).json(t, &st)
	if st.State != UpdateInstalling || st.Percent != 40 || st.Step != "Checking bundle done." {
		t.Fatalf("while installing: %+v", st)
	}
	// One install at a time.
	res = e.must(req{method: "POST", path: "/api/v1/system/update", body: "x", ctype: "application/octet-stream"}, http.StatusConflict)
	if d := res.errCode(t); d.Code != codeConflict || !strings.Contains(d.Message, "installing") {
		t.Fatalf("second upload: %+v", d)
	}
	// The bundle sits on the data directory's update dir, owner-only.
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("update dir: %v %v", fi.Mode(), err)
	}
	close(u.release)
	st = waitUpdate(e)
	if st.State != UpdateInstalled || !st.RebootRequired || st.Percent != 100 || st.Slot != "B" || st.Error != "" || st.Finished.IsZero() {
		t.Fatalf("after the install: %+v", st)
	}
	u.mu.Lock()
	if len(u.got) != 1 || u.got[0] != sha256.Sum256(bundle) || u.modes[0] != 0o600 || filepath.Dir(u.paths[0]) != dir {
		t.Fatalf("the installer saw %d bundles, hash ok %v, mode %v, path %v", len(u.got), len(u.got) == 1 && u.got[0] == sha256.Sum256(bundle), u.modes, u.paths)
	}
	u.mu.Unlock()
	if f := bundleFiles(t, dir); len(f) != 0 {
		t.Fatalf("bundle left on the data partition: %v", f)
	}
	if k := eventKinds(e); !strings.Contains(k, "update-started:bundle of 3145745 bytes") || !strings.Contains(k, "update-installed:version v2 installed into slot B") {
		t.Fatalf("events:\n%s", k)
	}
	e.must(req{method: "GET", path: "/api/v1/system/slots"}, 200).json(t, &slots)
	if slots.Next != "B" || slots.Slots[1].State != "pending" {
		t.Fatalf("slots after the install: %+v", slots)
	}
}

func TestUpdateBadBundle(t *testing.T) {
	e := newEnv(t, nil)
	dir := filepath.Join(e.dir, "update")
	u := newFakeUpdater()
	u.err = errors.New("rauc install failed: signature verification failed: certificate verify failed")
	withUpdater(e, u, dir, 0)
	e.must(req{method: "POST", path: "/api/v1/system/update", body: "not a bundle", ctype: "application/octet-stream"}, http.StatusAccepted)
	st := waitUpdate(e)
	if st.State != UpdateFailed || st.RebootRequired || !strings.Contains(st.Error, "signature verification failed") {
		t.Fatalf("after a bad bundle: %+v", st)
	}
	if k := eventKinds(e); !strings.Contains(k, "update-failed:rauc install failed: signature") {
		t.Fatalf("events:\n%s", k)
	}
	if f := bundleFiles(t, dir); len(f) != 0 {
		t.Fatalf("bad bundle left behind: %v", f)
	}
	// A failed install does not block the next one.
	u.mu.Lock()
	u.err = nil
	u.mu.Unlock()
	e.must(req{method: "POST", path: "/api/v1/system/update", body: "bundle", ctype: "application/octet-stream"}, http.StatusAccepted)
	if st := waitUpdate(e); st.State != UpdateInstalled || st.Error != "" {
		t.Fatalf("retry after a failure: %+v", st)
	}
}

func TestUpdateRefusals(t *testing.T) {
	e := newEnv(t, nil)
	dir := filepath.Join(e.dir, "update")
	u := newFakeUpdater()
	withUpdater(e, u, dir, 1000)
	for _, c := range []struct {
		name   string
		r      req
		status int
		code   string
	}{
		{"json content type", req{method: "POST", path: "/api/v1/system/update", body: "{}"}, 415, codeMediaType},
		{"form", req{method: "POST", path: "/api/v1/system/update", body: "a=b", ctype: "application/x-www-form-urlencoded"}, 415, codeMediaType},
		{"too large", req{method: "POST", path: "/api/v1/system/update", body: strings.Repeat("x", 1001), ctype: "application/octet-stream"}, 413, codeTooLarge},
		{"empty", req{method: "POST", path: "/api/v1/system/update", body: "", ctype: "application/octet-stream", header: map[string]string{"Content-Type": "application/octet-stream"}}, 400, codeBadRequest},
		{"unauthenticated", req{method: "POST", path: "/api/v1/system/update", body: "x", ctype: "application/octet-stream", auth: "none"}, 401, codeUnauthorized},
		{"wrong password", req{method: "POST", path: "/api/v1/system/update", body: "x", ctype: "application/octet-stream", auth: "pw:nope"}, 401, codeUnauthorized},
		{"slots unauthenticated", req{method: "GET", path: "/api/v1/system/slots", auth: "none"}, 401, codeUnauthorized},
		{"state unauthenticated", req{method: "GET", path: "/api/v1/system/update", auth: "none"}, 401, codeUnauthorized},
	} {
		res := e.do(c.r)
		if res.status != c.status {
			t.Errorf("%s: status %d, want %d: %s", c.name, res.status, c.status, res.body)
			continue
		}
		if d := res.errCode(t); d.Code != c.code {
			t.Errorf("%s: code %q, want %q", c.name, d.Code, c.code)
		}
	}
	e.auth.Limiter.Succeed("127.0.0.1")
	// A session needs the CSRF header, as on every state-changing route.
	sess := e.auth.NewSession("admin")
	res := e.do(req{method: "POST", path: "/api/v1/system/update", body: "x", ctype: "application/octet-stream", auth: "session:" + sess.ID + ":"})
	if res.status != http.StatusForbidden || res.errCode(t).Code != codeCSRF {
		t.Fatalf("session without CSRF: %d %s", res.status, res.body)
	}
	// Chunked (no Content-Length) past the limit: cut off while streaming,
	// nothing kept.
	hr, _ := http.NewRequest("POST", e.ts.URL+"/api/v1/system/update", io.MultiReader(bytes.NewReader(make([]byte, 600)), bytes.NewReader(make([]byte, 600))))
	hr.ContentLength = -1
	hr.Header.Set("Content-Type", "application/octet-stream")
	hr.SetBasicAuth("admin", e.password)
	hres, err := e.ts.Client().Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(hres.Body)
	hres.Body.Close()
	if hres.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked oversize upload: %d %s", hres.StatusCode, body)
	}
	var st UpdateState
	e.must(req{method: "GET", path: "/api/v1/system/update"}, 200).json(t, &st)
	if st.State != UpdateFailed || !strings.Contains(st.Error, "larger than 1000 bytes") {
		t.Fatalf("state after the oversize upload: %+v", st)
	}
	if f := bundleFiles(t, dir); len(f) != 0 {
		t.Fatalf("refused uploads left files: %v", f)
	}
	u.mu.Lock()
	n := len(u.got)
	u.mu.Unlock()
	if n != 0 {
		t.Fatalf("refused uploads reached the installer (%d)", n)
	}

	// No updater (a development machine): 503, the state still answers.
	withUpdater(e, nil, "", 0)
	e.must(req{method: "POST", path: "/api/v1/system/update", body: "x", ctype: "application/octet-stream"}, http.StatusServiceUnavailable)
	e.must(req{method: "GET", path: "/api/v1/system/slots"}, http.StatusServiceUnavailable)
	e.must(req{method: "GET", path: "/api/v1/system/update"}, http.StatusOK).json(t, &st)
	if st.State != UpdateIdle {
		t.Fatalf("state without an updater: %+v", st)
	}
}

// TestUpdateWhileReceiving holds an upload open halfway: its progress
// shows, a second upload is refused, and a client that goes away leaves
// a failed state and no file.
func TestUpdateWhileReceiving(t *testing.T) {
	e := newEnv(t, nil)
	dir := filepath.Join(e.dir, "update")
	u := newFakeUpdater()
	withUpdater(e, u, dir, 0)
	pr, pw := io.Pipe()
	hr, _ := http.NewRequest("POST", e.ts.URL+"/api/v1/system/update", pr)
	hr.ContentLength = 1 << 20
	hr.Header.Set("Content-Type", "application/octet-stream")
	hr.SetBasicAuth("admin", e.password)
	done := make(chan error, 1)
	go func() {
		res, err := e.ts.Client().Do(hr)
		if err == nil {
			res.Body.Close()
		}
		done <- err
	}()
	pw.Write(make([]byte, 64<<10))
	var st UpdateState
	deadline := time.Now().Add(10 * time.Second)
	for {
		e.must(req{method: "GET", path: "/api/v1/system/update"}, 200).json(t, &st)
		if st.State == UpdateReceiving && st.Received >= 64<<10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("upload progress not shown: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st.Size != 1<<20 {
		t.Fatalf("size %d", st.Size)
	}
	res := e.must(req{method: "POST", path: "/api/v1/system/update", body: "x", ctype: "application/octet-stream"}, http.StatusConflict)
	if !strings.Contains(res.errCode(t).Message, "receiving") {
		t.Fatalf("conflict message: %s", res.body)
	}
	pw.CloseWithError(errors.New("client gone"))
	<-done
	st = waitUpdate(e)
	if st.State != UpdateFailed || !strings.Contains(st.Error, "broke off") {
		t.Fatalf("after the client left: %+v", st)
	}
	if f := bundleFiles(t, dir); len(f) != 0 {
		t.Fatalf("partial bundle left: %v", f)
	}
}

func TestUpdateRemovesStaleBundles(t *testing.T) {
	e := newEnv(t, nil)
	dir := filepath.Join(e.dir, "update")
	os.MkdirAll(dir, 0o700)
	os.WriteFile(filepath.Join(dir, "bundle-123.raucb"), []byte("left by a killed daemon"), 0o600)
	os.WriteFile(filepath.Join(dir, "keep.txt"), []byte("not ours"), 0o600)
	withUpdater(e, newFakeUpdater(), dir, 0)
	if f := bundleFiles(t, dir); len(f) != 1 || filepath.Base(f[0]) != "keep.txt" {
		t.Fatalf("after start: %v", f)
	}
}

// TestUpdateStalledUpload: a client that stops sending is cut off after
// the idle time, so it cannot hold the installer.
func TestUpdateStalledUpload(t *testing.T) {
	e := newEnv(t, nil)
	dir := filepath.Join(e.dir, "update")
	withUpdater(e, newFakeUpdater(), dir, 0)
	e.srv.uploadIdle = 300 * time.Millisecond
	pr, pw := io.Pipe()
	defer pw.Close()
	hr, _ := http.NewRequest("POST", e.ts.URL+"/api/v1/system/update", pr)
	hr.ContentLength = 1 << 20
	hr.Header.Set("Content-Type", "application/octet-stream")
	hr.SetBasicAuth("admin", e.password)
	go func() {
		if res, err := e.ts.Client().Do(hr); err == nil {
			res.Body.Close()
		}
	}()
	pw.Write(make([]byte, 1024))
	start := time.Now()
	deadline := start.Add(10 * time.Second)
	var st UpdateState
	for {
		e.must(req{method: "GET", path: "/api/v1/system/update"}, 200).json(t, &st)
		if st.State == UpdateFailed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stalled upload not cut off: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(st.Error, "broke off after 1024 bytes") {
		t.Fatalf("state: %+v", st)
	}
	if f := bundleFiles(t, dir); len(f) != 0 {
		t.Fatalf("partial bundle left: %v", f)
	}
	// The installer is free again.
	e.must(req{method: "POST", path: "/api/v1/system/update", body: "bundle", ctype: "application/octet-stream"}, http.StatusAccepted)
	if st := waitUpdate(e); st.State != UpdateInstalled {
		t.Fatalf("after the stalled one: %+v", st)
	}
}
