package console

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
)

// fake is Actions that records what the menu asked for.
type fake struct {
	mu       sync.Mutex
	calls    []string
	mgmt     Management
	password string
	otherErr error
	resetErr error
	status   Status
	setMgmt  []Management
}

func (f *fake) record(c string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
}

func (f *fake) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fake) Status(context.Context) Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.status
	st.AdminPassword = f.password
	return st
}
func (f *fake) Management() (Management, error) { return f.mgmt, nil }
func (f *fake) SetManagement(_ context.Context, m Management) error {
	f.record("set-management " + m.String())
	f.mu.Lock()
	f.mgmt = m
	f.setMgmt = append(f.setMgmt, m)
	f.mu.Unlock()
	return nil
}
func (f *fake) ResetAdminPassword(context.Context) (string, error) {
	f.record("reset-password")
	if f.resetErr != nil {
		return "", f.resetErr
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.password = "NewPass-" + string(rune('A'+len(f.calls)))
	return f.password, nil
}
func (f *fake) FactoryReset(context.Context) error {
	f.record("factory-reset")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.password = "AfterReset-1"
	f.mgmt = Management{DHCP: true}
	return nil
}
func (f *fake) OtherSlot() (string, error) {
	if f.otherErr != nil {
		return "", f.otherErr
	}
	return "slot B, ftbridge v2 (slot B)", nil
}
func (f *fake) BootOtherSlot(context.Context) error { f.record("boot-other"); return nil }
func (f *fake) Reboot(context.Context) error        { f.record("reboot"); return nil }
func (f *fake) RootShell(context.Context) error {
	f.record("root-shell")
	return errors.New("root has no password in this image")
}

// term is the operator's side of a pty whose other side runs the menu.
type term struct {
	t      *testing.T
	master *os.File
	mu     sync.Mutex
	buf    bytes.Buffer
	pos    int
	done   chan error
	cancel context.CancelFunc
}

func newTerm(t *testing.T, a Actions) *term {
	t.Helper()
	master, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pty available: %v", err)
	}
	if err := pty.Setsize(master, &pty.Winsize{Rows: Height, Cols: Width}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tm := &term{t: t, master: master, done: make(chan error, 1), cancel: cancel}
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := master.Read(b)
			tm.mu.Lock()
			tm.buf.Write(b[:n])
			tm.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	go func() {
		m := &Menu{In: tty, Out: tty, Actions: a}
		tm.done <- m.Run(ctx)
		tty.Close()
	}()
	t.Cleanup(func() {
		cancel()
		master.Close()
	})
	return tm
}

// expect waits for s to appear in the output after what was already
// matched, and returns the output up to and including it.
func (tm *term) expect(s string) string {
	tm.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		tm.mu.Lock()
		out := tm.buf.String()[tm.pos:]
		if i := strings.Index(out, s); i >= 0 {
			tm.pos += i + len(s)
			tm.mu.Unlock()
			return out[:i+len(s)]
		}
		tm.mu.Unlock()
		if time.Now().After(deadline) {
			tm.t.Fatalf("timed out waiting for %q; output since last match:\n%s", s, out)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// send types a line as a serial terminal does: text and a carriage return.
func (tm *term) send(s string) {
	tm.t.Helper()
	if _, err := tm.master.Write([]byte(s + "\r")); err != nil {
		tm.t.Fatal(err)
	}
}

func sampleStatus() Status {
	return Status{
		Version: "v1.2.3", Slot: "A", Daemon: "active", Management: "mgmt0 DHCP, 198.18.1.5/24",
		Ports: []PortStatus{
			{"mgmt0", "management", "up", "52:54:00:00:00:01"},
			{"uplink0", "uplink", "up", "52:54:00:00:00:02"},
			{"rep0", "replica", "up", "52:54:00:00:00:03"},
			{"rep1", "replica", "down", "52:54:00:00:00:04"},
		},
		Replicas: []ReplicaStatus{{"rep0", "rep0", "up (primary)"}, {"rep1", "rep1", "down"}},
	}
}

func TestMenuScreenFitsTerminal(t *testing.T) {
	f := &fake{status: sampleStatus(), password: "Gen-Pass-123", mgmt: Management{DHCP: true}}
	tm := newTerm(t, f)
	screen := tm.expect("Choice [1-7]: ")
	lines := strings.Split(strings.TrimLeft(screen, "\r\n"), "\n")
	if len(lines) > Height {
		t.Errorf("menu screen is %d lines, more than %d:\n%s", len(lines), Height, screen)
	}
	for _, l := range lines {
		l = strings.TrimRight(l, "\r")
		if len([]rune(l)) >= Width {
			t.Errorf("line of %d columns: %q", len([]rune(l)), l)
		}
		if strings.ContainsRune(l, 0x1b) {
			t.Errorf("escape sequence on a dumb-terminal screen: %q", l)
		}
	}
	for _, want := range []string{"version v1.2.3  slot A", "Admin password (generated): Gen-Pass-123", "Management address (now DHCP)", "(slot B, ftbridge v2 (slot B))"} {
		if !strings.Contains(screen, want) {
			t.Errorf("screen lacks %q:\n%s", want, screen)
		}
	}
	// Status page.
	tm.send("1")
	st := tm.expect("Press Enter to return to the menu.")
	for _, want := range []string{"uplink0    uplink      up       52:54:00:00:00:02", "rep1             rep1       down", "Slot:       A"} {
		if !strings.Contains(st, want) {
			t.Errorf("status lacks %q:\n%s", want, st)
		}
	}
	tm.send("")
	tm.expect("Choice [1-7]: ")
	tm.send("9")
	tm.expect(`No such choice: "9"`)
	tm.expect("Choice [1-7]: ")
	if c := f.Calls(); len(c) != 0 {
		t.Fatalf("viewing did something: %v", c)
	}
}

func TestStatusPagesLongLists(t *testing.T) {
	st := sampleStatus()
	for i := 0; i < 30; i++ {
		st.Ports = append(st.Ports, PortStatus{Name: "x" + strings.Repeat("y", i%5), Role: "replica", State: "up", MAC: strings.Repeat("ab:", 40)})
	}
	tm := newTerm(t, &fake{status: st})
	tm.expect("Choice [1-7]: ")
	tm.send("1")
	page := tm.expect("-- more: press Enter --")
	if n := strings.Count(page, "\n"); n > Height-1 {
		t.Errorf("first page has %d lines", n)
	}
	for _, l := range strings.Split(page, "\n") {
		if len([]rune(strings.TrimRight(l, "\r"))) >= Width {
			t.Errorf("long line not clipped: %q", l)
		}
	}
	tm.send("")
	tm.expect("-- more: press Enter --")
	tm.send("")
	tm.expect("Press Enter to return to the menu.")
}

func TestManagementStatic(t *testing.T) {
	f := &fake{mgmt: Management{DHCP: true}}
	tm := newTerm(t, f)
	tm.expect("Choice [1-7]: ")
	tm.send("2")
	tm.expect("[dhcp/static, Enter cancels]: ")
	tm.send("static")
	tm.expect("Address with prefix length (e.g. 192.0.2.10/24): ")
	tm.send("198.18.7.300/24")
	tm.expect("Not an address/prefix")
	tm.expect("Address with prefix length")
	tm.send("198.18.7.10/24")
	tm.expect("Gateway (Enter for none): ")
	tm.send("198.18.7.1")
	tm.expect("DNS servers")
	tm.send("198.18.7.53 198.18.7.54")
	tm.expect("Apply static 198.18.7.10/24 via 198.18.7.1 to the management port? [y/N]: ")
	tm.send("y")
	tm.expect("Applied: management port uses static 198.18.7.10/24 via 198.18.7.1.")
	tm.send("")
	tm.expect("Management address (now static 198.18.7.10/24 via 198.18.7.1)")
	want := Management{Address: netip.MustParsePrefix("198.18.7.10/24"), Gateway: netip.MustParseAddr("198.18.7.1"),
		DNS: []netip.Addr{netip.MustParseAddr("198.18.7.53"), netip.MustParseAddr("198.18.7.54")}}
	if len(f.setMgmt) != 1 || f.setMgmt[0].String() != want.String() || len(f.setMgmt[0].DNS) != 2 || f.setMgmt[0].DNS[1] != want.DNS[1] {
		t.Fatalf("SetManagement got %+v, want %+v", f.setMgmt, want)
	}
}

func TestManagementRejectsAndCancels(t *testing.T) {
	f := &fake{mgmt: Management{DHCP: true}}
	tm := newTerm(t, f)
	tm.expect("Choice [1-7]: ")
	// Gateway outside the subnet: refused before anything is applied.
	tm.send("2")
	tm.expect("Enter cancels]: ")
	tm.send("s")
	tm.expect("Address with prefix length")
	tm.send("198.18.7.10/24")
	tm.expect("Gateway")
	tm.send("198.19.0.1")
	tm.expect("DNS servers")
	tm.send("")
	tm.expect("Not applied: gateway 198.19.0.1 is not in 198.18.7.0/24")
	tm.send("")
	tm.expect("Choice [1-7]: ")
	// Answering no to the final question.
	tm.send("2")
	tm.expect("Enter cancels]: ")
	tm.send("dhcp")
	tm.expect("Apply DHCP to the management port? [y/N]: ")
	tm.send("")
	tm.expect("Cancelled.")
	tm.expect("Choice [1-7]: ")
	// Empty answer cancels at once.
	tm.send("2")
	tm.expect("Enter cancels]: ")
	tm.send("")
	tm.expect("Cancelled.")
	tm.expect("Choice [1-7]: ")
	if len(f.setMgmt) != 0 {
		t.Fatalf("applied despite refusal/cancel: %+v", f.setMgmt)
	}
	// DHCP confirmed.
	f.mgmt = Management{Address: netip.MustParsePrefix("198.18.7.10/24")}
	tm.send("2")
	tm.expect("now uses static 198.18.7.10/24")
	tm.send("DHCP")
	tm.expect("[y/N]: ")
	tm.send("yes")
	tm.expect("Applied: management port uses DHCP.")
	if len(f.setMgmt) != 1 || !f.setMgmt[0].DHCP {
		t.Fatalf("SetManagement %+v", f.setMgmt)
	}
}

func TestResetPassword(t *testing.T) {
	f := &fake{password: "Old-Pass"}
	tm := newTerm(t, f)
	tm.expect("Admin password (generated): Old-Pass")
	tm.expect("Choice [1-7]: ")
	tm.send("3")
	tm.expect("Reset the admin password? [y/N]: ")
	tm.send("n")
	tm.expect("Cancelled.")
	tm.expect("Choice [1-7]: ")
	if len(f.Calls()) != 0 {
		t.Fatalf("reset despite no: %v", f.Calls())
	}
	tm.send("3")
	tm.expect("[y/N]: ")
	tm.send("y")
	out := tm.expect("Press Enter to continue.")
	if !strings.Contains(out, "New admin password: NewPass-B") {
		t.Fatalf("new password not shown:\n%s", out)
	}
	tm.send("")
	tm.expect("Admin password (generated): NewPass-B")
	// A failing reset is reported, and the menu goes on.
	f.resetErr = errors.New("ftbridged wrote no new password")
	tm.send("3")
	tm.expect("[y/N]: ")
	tm.send("y")
	tm.expect("Error: ftbridged wrote no new password")
	tm.send("")
	tm.expect("Choice [1-7]: ")
}

func TestFactoryResetNeedsTypedConfirmation(t *testing.T) {
	f := &fake{password: "Old-Pass"}
	tm := newTerm(t, f)
	tm.expect("Choice [1-7]: ")
	for _, wrong := range []string{"y", "yes", "factory reset", "FACTORY  RESET", "FACTORY RESE"} {
		tm.send("4")
		tm.expect("Type FACTORY RESET to erase, anything else cancels: ")
		tm.send(wrong)
		tm.expect("Cancelled: nothing was erased.")
		tm.expect("Choice [1-7]: ")
	}
	if len(f.Calls()) != 0 {
		t.Fatalf("erased without the phrase: %v", f.Calls())
	}
	tm.send("4")
	tm.expect("anything else cancels: ")
	tm.send("FACTORY RESET")
	out := tm.expect("Press Enter to continue.")
	if !strings.Contains(out, "Factory reset done.") || !strings.Contains(out, "New admin password: AfterReset-1") {
		t.Fatalf("after reset:\n%s", out)
	}
	if c := f.Calls(); len(c) != 1 || c[0] != "factory-reset" {
		t.Fatalf("calls %v", c)
	}
}

func TestBootOtherRebootShell(t *testing.T) {
	f := &fake{}
	tm := newTerm(t, f)
	tm.expect("Choice [1-7]: ")
	tm.send("5")
	tm.expect("reboots into slot B, ftbridge v2 (slot B) once")
	tm.send("")
	tm.expect("Cancelled.")
	tm.send("7")
	tm.expect("Error: root has no password in this image")
	tm.send("")
	tm.expect("Choice [1-7]: ")
	f.otherErr = errors.New("slot B holds no firmware")
	tm.send("5")
	tm.expect("Error: slot B holds no firmware")
	tm.send("")
	tm.expect("Boot the other firmware once\r\n")
	f.otherErr = nil
	tm.send("5")
	tm.expect("[y/N]: ")
	tm.send("y")
	tm.expect("Rebooting...")
	// A reboot under way ends the menu instead of showing it again.
	select {
	case err := <-tm.done:
		if err != nil {
			t.Fatalf("Run = %v after a reboot", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("menu still running after the reboot was started")
	}
	if c := strings.Join(f.Calls(), ","); c != "root-shell,boot-other" {
		t.Fatalf("calls %s", c)
	}
}

func TestRebootEndsMenu(t *testing.T) {
	f := &fake{}
	tm := newTerm(t, f)
	tm.expect("Choice [1-7]: ")
	tm.send("6")
	tm.expect("Reboot the box now? [y/N]: ")
	tm.send("n")
	tm.expect("Cancelled.")
	tm.expect("Choice [1-7]: ")
	tm.send("6")
	tm.expect("[y/N]: ")
	tm.send("y")
	tm.expect("Rebooting...")
	select {
	case err := <-tm.done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("menu still running after the reboot was started")
	}
	tm.mu.Lock()
	rest := tm.buf.String()[tm.pos:]
	tm.mu.Unlock()
	if strings.Contains(rest, "Choice") {
		t.Fatalf("menu shown again after the reboot started:\n%s", rest)
	}
	if c := f.Calls(); len(c) != 1 || c[0] != "reboot" {
		t.Fatalf("calls %v", c)
	}
}

func TestMenuEndsOnHangup(t *testing.T) {
	f := &fake{}
	tm := newTerm(t, f)
	tm.expect("Choice [1-7]: ")
	tm.send("3")
	tm.expect("[y/N]: ")
	// Ctrl-D at the start of a line is end of input in canonical mode.
	tm.master.Write([]byte{4})
	select {
	case err := <-tm.done:
		if err != nil {
			t.Fatalf("Run = %v, want nil at end of input", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("menu did not end at end of input")
	}
	if len(f.Calls()) != 0 {
		t.Fatalf("end of input confirmed something: %v", f.Calls())
	}
}

func TestMenuOverPipe(t *testing.T) {
	// Without a tty (a raw serial line, a pipe) input may end in CR alone
	// followed by LF, and the menu still reads it.
	in := strings.NewReader("6\r\ny\r\n")
	var out bytes.Buffer
	f := &fake{}
	if err := (&Menu{In: in, Out: &out, Actions: f}).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c := f.Calls(); len(c) != 1 || c[0] != "reboot" {
		t.Fatalf("calls %v\n%s", c, out.String())
	}
	// Write errors end the menu with the error.
	err := (&Menu{In: strings.NewReader("1\n"), Out: failWriter{}, Actions: f}).Run(context.Background())
	if err == nil {
		t.Fatal("write error not reported")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }
