package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ftbridge/ftbridge/board"
	"github.com/ftbridge/ftbridge/firmware/config"
	"github.com/ftbridge/ftbridge/firmware/update"
)

func loadBoard(t *testing.T) *board.Board {
	t.Helper()
	b, err := board.Load("x86_64")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFirstbootDefaults(t *testing.T) {
	b := loadBoard(t)
	dir := filepath.Join(t.TempDir(), "ftbridge")
	id, err := Firstboot(dir, b)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(id, "ftbridge-") || len(id) != len("ftbridge-")+6 {
		t.Fatalf("identity %q", id)
	}
	cfg, err := config.Load(filepath.Join(dir, ConfigFile))
	if err != nil {
		t.Fatalf("default configuration does not load: %v", err)
	}
	if cfg.Uplink != "uplink0" || len(cfg.Replicas) != 2 || cfg.Replicas[0].Interface != "rep0" || cfg.Replicas[1].Interface != "rep1" {
		t.Fatalf("default configuration %+v", cfg)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode %v", fi.Mode().Perm())
	}
	nf, err := os.ReadFile(filepath.Join(dir, NetworkDir, MgmtNetworkFile))
	if err != nil {
		t.Fatal(err)
	}
	if m, err := ParseNetworkFile(string(nf)); err != nil || !m.DHCP || !strings.Contains(string(nf), "Name=mgmt0\n") {
		t.Fatalf("management default %+v %v:\n%s", m, err, nf)
	}
	// Second boot: nothing overwritten, same identity.
	os.WriteFile(filepath.Join(dir, ConfigFile), []byte(`{"uplink":"x"}`), 0o600)
	id2, err := Firstboot(dir, b)
	if err != nil || id2 != id {
		t.Fatalf("second run: %q %v (first %q)", id2, err, id)
	}
	if raw, _ := os.ReadFile(filepath.Join(dir, ConfigFile)); string(raw) != `{"uplink":"x"}` {
		t.Fatalf("config overwritten: %s", raw)
	}
}

func TestInstallNetwork(t *testing.T) {
	data, run := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(data, NetworkDir), 0o700)
	os.WriteFile(filepath.Join(run, "ftbridge-old.network"), []byte("stale"), 0o644)
	os.WriteFile(filepath.Join(run, "other.network"), []byte("not ours"), 0o644)
	os.WriteFile(filepath.Join(data, NetworkDir, MgmtNetworkFile), []byte("[Match]\n"), 0o644)
	if err := InstallNetwork(data, run); err != nil {
		t.Fatal(err)
	}
	got, _ := filepath.Glob(filepath.Join(run, "*"))
	for i := range got {
		got[i] = filepath.Base(got[i])
	}
	if strings.Join(got, ",") != "ftbridge-10-mgmt.network,other.network" {
		t.Fatalf("run dir: %v", got)
	}
}

func TestManagementFileRoundTrip(t *testing.T) {
	cases := []Management{
		{DHCP: true},
		{Address: netip.MustParsePrefix("198.18.0.5/24")},
		{Address: netip.MustParsePrefix("198.18.0.5/24"), Gateway: netip.MustParseAddr("198.18.0.1"), DNS: []netip.Addr{netip.MustParseAddr("198.18.0.53")}},
	}
	for _, m := range cases {
		got, err := ParseNetworkFile(m.NetworkFile("mgmt0"))
		if err != nil || fmt.Sprint(got) != fmt.Sprint(m) {
			t.Errorf("round trip of %+v gives %+v, %v", m, got, err)
		}
	}
	if _, err := ParseNetworkFile("[Match]\nName=x\n"); err == nil {
		t.Error("file without DHCP or Address accepted")
	}
	if _, err := ParseNetworkFile("Address=banana\n"); err == nil {
		t.Error("bad address accepted")
	}
}

func TestManagementValidate(t *testing.T) {
	bad := []Management{
		{},
		{Address: netip.MustParsePrefix("0.0.0.0/24")},
		{Address: netip.MustParsePrefix("198.18.0.0/24")},
		{Address: netip.MustParsePrefix("224.0.0.1/24")},
		{Address: netip.MustParsePrefix("198.18.0.5/24"), Gateway: netip.MustParseAddr("198.19.0.1")},
		{Address: netip.MustParsePrefix("198.18.0.5/24"), Gateway: netip.MustParseAddr("198.18.0.5")},
		{Address: netip.MustParsePrefix("198.18.0.5/24"), Gateway: netip.MustParseAddr("2001:db8::1")},
	}
	for _, m := range bad {
		if m.Validate() == nil {
			t.Errorf("%+v accepted", m)
		}
	}
	good := []Management{{DHCP: true}, {Address: netip.MustParsePrefix("198.18.0.5/32")}, {Address: netip.MustParsePrefix("2001:db8::5/64"), Gateway: netip.MustParseAddr("2001:db8::1")}}
	for _, m := range good {
		if err := m.Validate(); err != nil {
			t.Errorf("%+v refused: %v", m, err)
		}
	}
}

// fakeSystemd plays systemctl and networkctl for System: starting
// ftbridged writes a new admin password the way the daemon does when
// auth.json has no admin hash.
type fakeSystemd struct {
	mu      sync.Mutex
	dataDir string
	log     []string
	running bool
	gen     int
	noPass  bool
}

func (f *fakeSystemd) command(_ context.Context, name string, args ...string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	line := name + " " + strings.Join(args, " ")
	f.log = append(f.log, line)
	switch {
	case line == "systemctl stop ftbridged.service":
		f.running = false
	case line == "systemctl start --no-block ftbridged.service":
		f.running = true
		if f.noPass {
			return "", nil
		}
		var doc map[string]any
		raw, err := os.ReadFile(filepath.Join(f.dataDir, AuthFile))
		if err == nil {
			if err := json.Unmarshal(raw, &doc); err != nil {
				return "", fmt.Errorf("daemon: corrupt auth.json")
			}
		}
		if doc == nil {
			doc = map[string]any{}
		}
		if _, ok := doc["admin_hash"]; !ok {
			f.gen++
			pw := fmt.Sprintf("generated-%d", f.gen)
			os.WriteFile(filepath.Join(f.dataDir, AdminPasswordFile), []byte(pw+"\n"), 0o600)
			doc["admin_hash"] = "hash-of-" + pw
			out, _ := json.Marshal(doc)
			os.WriteFile(filepath.Join(f.dataDir, AuthFile), out, 0o600)
		}
	case line == "systemctl is-active ftbridged.service":
		if f.running {
			return "active\n", nil
		}
		return "inactive\n", fmt.Errorf("exit status 3")
	}
	return "", nil
}

func newTestSystem(t *testing.T) (*System, *fakeSystemd) {
	t.Helper()
	root := t.TempDir()
	b := loadBoard(t)
	data := filepath.Join(root, "data", "ftbridge")
	fs := &fakeSystemd{dataDir: data}
	s := &System{
		Board: b, DataDir: data, RunNetworkDir: filepath.Join(root, "run"),
		SysClassNet: filepath.Join(root, "sys"), ReleaseFile: filepath.Join(root, "release"),
		ShadowFile: filepath.Join(root, "shadow"),
		Update: &update.System{
			ESP:     &update.ESP{Dir: filepath.Join(root, "esp")},
			Cmdline: func() (string, error) { return "ro rauc.slot=A quiet", nil },
		},
		Command: fs.command,
		Wait:    2 * time.Second,
	}
	if _, err := Firstboot(data, b); err != nil {
		t.Fatal(err)
	}
	fs.command(context.Background(), "systemctl", "start", "--no-block", "ftbridged.service")
	return s, fs
}

func TestSystemResetAdminPassword(t *testing.T) {
	s, fs := newTestSystem(t)
	ctx := context.Background()
	if st := s.Status(ctx); st.AdminPassword != "generated-1" || st.Daemon != "active" || st.Slot != "A" {
		t.Fatalf("status before: %+v", st)
	}
	// An API token must survive a password reset.
	raw, _ := os.ReadFile(filepath.Join(s.DataDir, AuthFile))
	var doc map[string]any
	json.Unmarshal(raw, &doc)
	doc["tokens"] = []any{map[string]any{"id": "t1"}}
	raw, _ = json.Marshal(doc)
	os.WriteFile(filepath.Join(s.DataDir, AuthFile), raw, 0o600)
	// The operator changed the password: the file is gone.
	os.Remove(filepath.Join(s.DataDir, AdminPasswordFile))

	pw, err := s.ResetAdminPassword(ctx)
	if err != nil || pw != "generated-2" {
		t.Fatalf("reset = %q, %v", pw, err)
	}
	raw, _ = os.ReadFile(filepath.Join(s.DataDir, AuthFile))
	if !strings.Contains(string(raw), `"t1"`) || !strings.Contains(string(raw), "hash-of-generated-2") {
		t.Fatalf("auth.json after reset: %s", raw)
	}
	if !strings.Contains(strings.Join(fs.log, "\n"), "systemctl stop ftbridged.service\nsystemctl start --no-block ftbridged.service") {
		t.Fatalf("not stopped before start: %v", fs.log)
	}
	// A corrupt store is moved aside rather than locking admin out.
	os.WriteFile(filepath.Join(s.DataDir, AuthFile), []byte("{garbage"), 0o600)
	if pw, err := s.ResetAdminPassword(ctx); err != nil || pw != "generated-3" {
		t.Fatalf("reset over corrupt store = %q, %v", pw, err)
	}
	if _, err := os.Stat(filepath.Join(s.DataDir, AuthFile+".corrupt")); err != nil {
		t.Errorf("corrupt store not kept aside: %v", err)
	}
	// A daemon that never writes a password: a clear error, in bounded time.
	fs.noPass = true
	s.Wait = 300 * time.Millisecond
	if _, err := s.ResetAdminPassword(ctx); err == nil || !strings.Contains(err.Error(), "wrote no new password") {
		t.Fatalf("reset without daemon support: %v", err)
	}
}

func TestSystemFactoryReset(t *testing.T) {
	s, _ := newTestSystem(t)
	ctx := context.Background()
	mg := Management{Address: netip.MustParsePrefix("198.18.9.2/24")}
	if err := s.SetManagement(ctx, mg); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Management(); got.String() != mg.String() {
		t.Fatalf("management %v", got)
	}
	if b, err := os.ReadFile(filepath.Join(s.RunNetworkDir, "ftbridge-"+MgmtNetworkFile)); err != nil || !strings.Contains(string(b), "Address=198.18.9.2/24") {
		t.Fatalf("networkd copy: %s %v", b, err)
	}
	idBefore, _ := os.ReadFile(filepath.Join(s.DataDir, IdentityFile))
	for _, f := range []string{"cert.pem", "key.pem", "events.log"} {
		os.WriteFile(filepath.Join(s.DataDir, f), []byte("x"), 0o600)
	}
	os.Remove(filepath.Join(s.DataDir, AdminPasswordFile)) // changed by the operator
	old := s.Status(ctx).AdminPassword
	if err := s.FactoryReset(ctx); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"cert.pem", "key.pem", "events.log"} {
		if _, err := os.Stat(filepath.Join(s.DataDir, f)); err == nil {
			t.Errorf("%s survived the factory reset", f)
		}
	}
	st := s.Status(ctx)
	if st.AdminPassword == "" || st.AdminPassword == old {
		t.Fatalf("password after reset %q (before %q)", st.AdminPassword, old)
	}
	if got, _ := s.Management(); !got.DHCP {
		t.Fatalf("management after reset %v", got)
	}
	idAfter, _ := os.ReadFile(filepath.Join(s.DataDir, IdentityFile))
	if string(idAfter) == string(idBefore) {
		t.Error("identity not renewed by the factory reset")
	}
	if _, err := config.Load(filepath.Join(s.DataDir, ConfigFile)); err != nil {
		t.Fatalf("config after reset: %v", err)
	}
}

func TestSystemSlots(t *testing.T) {
	s, fs := newTestSystem(t)
	if _, err := s.OtherSlot(); err == nil {
		t.Fatal("OtherSlot with an empty ESP succeeded")
	}
	k := filepath.Join(t.TempDir(), "k")
	os.WriteFile(k, []byte("kernel"), 0o644)
	s.Update.ESP.InstallSlot(update.SlotA, k, k, "v1", false)
	if _, err := s.OtherSlot(); err == nil || !strings.Contains(err.Error(), "slot B holds no firmware") {
		t.Fatalf("OtherSlot without B: %v", err)
	}
	if err := s.BootOtherSlot(context.Background()); err == nil {
		t.Fatal("booted an empty slot")
	}
	e, _ := s.Update.ESP.InstallSlot(update.SlotB, k, k, "v2", true)
	d, err := s.OtherSlot()
	if err != nil || d != "slot B, ftbridge v2 (slot B)" {
		t.Fatalf("OtherSlot = %q, %v", d, err)
	}
	if err := s.BootOtherSlot(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := "bootctl set-oneshot " + e.ID + ".conf"
	if n := len(fs.log); fs.log[n-2] != want || fs.log[n-1] != "systemctl reboot" {
		t.Fatalf("commands %v, want %q then reboot", fs.log, want)
	}
	s.Update.ESP.MarkBad(update.SlotB)
	if _, err := s.OtherSlot(); err == nil || !strings.Contains(err.Error(), "failed") {
		t.Fatalf("OtherSlot on a bad slot: %v", err)
	}
}

func TestRootLocked(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]bool{
		"root:*:19000:0:99999:7:::\n":                true,
		"root:!$y$j9T$abc:19000:0:99999:7:::\n":      true,
		"root::19000:0:99999:7:::\n":                 true,
		"daemon:*:1::::::\nroot:$y$j9T$salt$hash:1:": false,
		"daemon:$y$x:1::::::\n":                      true,
	}
	for content, want := range cases {
		p := filepath.Join(dir, "shadow")
		os.WriteFile(p, []byte(content), 0o600)
		if got, err := RootLocked(p); err != nil || got != want {
			t.Errorf("RootLocked(%q) = %v, %v; want %v", content, got, err, want)
		}
	}
	if _, err := RootLocked(filepath.Join(dir, "none")); err == nil {
		t.Error("missing shadow accepted")
	}
}

func TestParseReplicas(t *testing.T) {
	r, note := ParseReplicas([]byte(`[{"name":"a","interface":"rep0","role":"primary","health":"up"},{"name":"b","interface":"rep1","health":{"state":"down"}}]`))
	if note != "" || len(r) != 2 || r[0].Health != "up (primary)" || r[1].Health != "down" || r[1].Interface != "rep1" {
		t.Fatalf("%+v %q", r, note)
	}
	r, _ = ParseReplicas([]byte(`{"replicas":[{"name":"a","interface":"rep0","state":"up"}]}`))
	if len(r) != 1 || r[0].Health != "up" {
		t.Fatalf("wrapped: %+v", r)
	}
	if _, note := ParseReplicas([]byte(`<html>`)); note == "" {
		t.Fatal("garbage gave no note")
	}
}

func TestHealthWait(t *testing.T) {
	seq := func(states ...string) func(context.Context, string, ...string) (string, error) {
		var mu sync.Mutex
		i := 0
		return func(context.Context, string, ...string) (string, error) {
			mu.Lock()
			defer mu.Unlock()
			s := states[min(i, len(states)-1)]
			i++
			return s, nil
		}
	}
	up := "ActiveState=active\nSubState=running\nNRestarts=0\n"
	h := &Health{Command: seq("ActiveState=activating\nSubState=start\nNRestarts=0\n", up), Timeout: 2 * time.Second, Stable: 50 * time.Millisecond, Poll: 10 * time.Millisecond}
	if err := h.Wait(context.Background()); err != nil {
		t.Fatalf("healthy daemon: %v", err)
	}
	// Crash-looping: active between restarts, never stable.
	var mu sync.Mutex
	n := 0
	loop := func(context.Context, string, ...string) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		n++
		if n%3 == 0 {
			return "ActiveState=activating\nSubState=auto-restart\nNRestarts=" + fmt.Sprint(n) + "\n", nil
		}
		return "ActiveState=active\nSubState=running\nNRestarts=" + fmt.Sprint(n/3) + "\n", nil
	}
	h = &Health{Command: loop, Timeout: 400 * time.Millisecond, Stable: 100 * time.Millisecond, Poll: 10 * time.Millisecond}
	err := h.Wait(context.Background())
	if err == nil || !strings.Contains(err.Error(), "not healthy within") {
		t.Fatalf("crash loop judged healthy: %v", err)
	}
	h = &Health{Command: seq("ActiveState=failed\nSubState=failed\nNRestarts=5\n"), Timeout: 100 * time.Millisecond, Stable: time.Millisecond, Poll: 10 * time.Millisecond}
	if err := h.Wait(context.Background()); err == nil || !strings.Contains(err.Error(), "failed/failed") {
		t.Fatalf("failed unit: %v", err)
	}
	// A unit systemd gave up on (start limit hit) fails the check at once,
	// not after Timeout: the trial's rollback need not wait.
	h = &Health{Command: seq("ActiveState=activating\nSubState=auto-restart\nNRestarts=4\n", "ActiveState=failed\nSubState=failed\nNRestarts=5\n"),
		Timeout: time.Minute, Stable: time.Second, Poll: 10 * time.Millisecond, FailedFor: 100 * time.Millisecond}
	start := time.Now()
	if err := h.Wait(context.Background()); err == nil || !strings.Contains(err.Error(), "does not restart it") || time.Since(start) > 10*time.Second {
		t.Fatalf("unit left failed: %v after %s", err, time.Since(start))
	}
	// Failed only for a moment (an operator restarted it): keep waiting.
	h = &Health{Command: seq("ActiveState=failed\nSubState=failed\nNRestarts=5\n", "ActiveState=activating\nSubState=start\nNRestarts=0\n", up),
		Timeout: 5 * time.Second, Stable: 50 * time.Millisecond, Poll: 10 * time.Millisecond, FailedFor: time.Second}
	if err := h.Wait(context.Background()); err != nil {
		t.Fatalf("a unit restarted after failing: %v", err)
	}
}
