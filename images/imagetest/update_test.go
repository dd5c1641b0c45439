package imagetest

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// waitSlot waits for a console menu whose header names slot s.
func (x *box) waitSlot(s string, timeout time.Duration) string {
	x.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		screen := x.menu(time.Until(deadline) + time.Second)
		if strings.Contains(screen, "  slot "+s) {
			return screen
		}
		if time.Now().After(deadline) {
			x.t.Fatalf("no console on slot %s within %s; last screen:\n%s", s, timeout, screen)
		}
	}
}

// cli runs the operator CLI (built for this machine) against the box's
// API on the forwarded port, as an operator would from their desk.
type cli struct {
	t        *testing.T
	bin, url string
	password string
}

func (c *cli) run(args ...string) (string, error) {
	c.t.Helper()
	cmd := exec.Command(c.bin, append([]string{"--url", c.url, "--insecure", "--data-dir", c.t.TempDir()}, args...)...)
	cmd.Env = append(os.Environ(), "FTBRIDGE_PASSWORD="+c.password, "FTBRIDGE_TOKEN=")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// slotsState is what GET /system/slots says, or "" while the API is not
// answering (the box is rebooting).
type slotsState struct {
	Booted, Next string
	Trial        bool
	Slots        []struct{ Slot, State, Version string }
}

func (c *cli) slots() (slotsState, string) {
	var st slotsState
	out, err := c.run("--json", "slots")
	if err != nil || json.Unmarshal([]byte(out), &st) != nil {
		return slotsState{}, out
	}
	return st, out
}

func (s slotsState) state(slot string) string {
	for _, x := range s.Slots {
		if x.Slot == slot {
			return x.State
		}
	}
	return ""
}

// waitSlots polls the slots until ok accepts them.
func (c *cli) waitSlots(what string, timeout time.Duration, ok func(slotsState) bool) slotsState {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st, out := c.slots()
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: not within %s; slots:\n%s", what, timeout, out)
		}
		time.Sleep(3 * time.Second)
	}
}

// waitEvent polls the event log through the API until an event of kind
// whose text has want appears.
func (c *cli) waitEvent(kind, want string, timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out, err := c.run("--json", "events", "--kind", kind)
		if err == nil && strings.Contains(out, want) {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("no %s event with %q within %s:\n%s", kind, want, timeout, out)
		}
		time.Sleep(3 * time.Second)
	}
}

// TestUpdateRollback installs a good and a broken update bundle through
// the management API with the operator CLI (`ftbridge update install
// FILE --reboot` over the forwarded port): the good one runs from slot B
// and is committed; the broken one's trial fails and the box comes back on
// slot B by itself, with the event in the API's event log.
func TestUpdateRollback(t *testing.T) {
	b, disk := requireImage(t, "x86_64", true)
	if !hasManagementPlane(t) {
		t.Skip("the image's daemon has no management plane: updates are installed through its API")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: the broken bundle is rebuilt from the root image with its owners")
	}
	for _, tool := range []string{"rauc", "unsquashfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.raucb")
	start := time.Now()
	for _, args := range [][]string{{"x86_64"}, {"x86_64", "--broken", broken}} {
		if out, err := exec.Command("bash", append([]string{"../bundle.sh"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("bundle.sh %v: %v\n%s", args, err, out)
		} else {
			t.Logf("%s", strings.TrimSpace(string(out)))
		}
	}
	good := filepath.Join(outDir("x86_64"), "update.raucb")
	logDuration(t, "build good and broken bundles", start)
	bin := filepath.Join(dir, "ftbridge")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/ftbridge").CombinedOutput(); err != nil {
		t.Fatalf("building the CLI: %v\n%s", err, out)
	}

	x := boot(t, b, disk, dir, "")
	x.menu(4 * time.Minute)
	screen := x.waitDaemon(2 * time.Minute)
	m := regexp.MustCompile(pwRE).FindStringSubmatch(screen)
	if m == nil {
		t.Fatalf("no generated admin password on the console:\n%s", screen)
	}
	x.waitAPI(2 * time.Minute)
	c := &cli{t: t, bin: bin, url: fmt.Sprintf("https://127.0.0.1:%d", x.apiPort), password: m[1]}
	st := c.waitSlots("slots of a fresh box", time.Minute, func(s slotsState) bool {
		return s.Booted == "A" && s.Next == "A" && s.state("A") == "committed" && s.state("B") == "empty"
	})
	t.Logf("fresh box: %+v", st)

	// A good update: uploaded, written to slot B, booted on trial,
	// committed.
	start = time.Now()
	out, err := c.run("update", "install", good, "--reboot")
	logDuration(t, "upload and install good.raucb through the API", start)
	if err != nil || !strings.Contains(out, "state: installed") || !strings.Contains(out, "installed into slot B") {
		t.Fatalf("ftbridge update install good.raucb: %v\n%s", err, out)
	}
	t.Logf("%s", out)
	start = time.Now()
	x.waitSlot("B", 5*time.Minute)
	x.waitDaemon(2 * time.Minute)
	logDuration(t, "reboot into the updated slot B to a running daemon", start)
	c.waitSlots("slot B committed", 3*time.Minute, func(s slotsState) bool {
		return s.Booted == "B" && !s.Trial && s.state("B") == "committed" && s.Next == "B"
	})
	logDuration(t, "slot B committed", start)
	c.waitEvent("update-installed", "installed into slot B", time.Minute)
	c.waitEvent("update.committed", "is healthy and committed", time.Minute)

	// A broken update into slot A: its daemon exits at once, the trial
	// boot is not healthy, the box reboots and comes back on B by itself.
	start = time.Now()
	out, err = c.run("update", "install", broken, "--reboot")
	logDuration(t, "upload and install broken.raucb through the API", start)
	if err != nil || !strings.Contains(out, "installed into slot A") {
		t.Fatalf("ftbridge update install broken.raucb: %v\n%s", err, out)
	}
	start = time.Now()
	screen = x.waitSlot("A", 5*time.Minute)
	t.Logf("trial boot of the broken slot A reached the console:\n%s", screen)
	logDuration(t, "reboot to the broken trial's console", start)
	trial := time.Now()
	x.waitSlot("B", 8*time.Minute)
	// The health gate's verdict, the reboot and the boot of slot B.
	logDuration(t, "broken trial's console to the console of slot B", trial)
	logDuration(t, "broken trial boot to automatic rollback on slot B", start)
	x.waitDaemon(2 * time.Minute)
	st = c.waitSlots("rolled back", 2*time.Minute, func(s slotsState) bool {
		return s.Booted == "B" && s.Next == "B" && s.state("A") == "bad" && s.state("B") == "committed"
	})
	t.Logf("after the rollback: %+v", st)
	c.waitEvent("update.rollback", "rolled back to slot B", time.Minute)
	// The console no longer offers the failed slot.
	x.send("")
	if screen := x.menu(30 * time.Second); !strings.Contains(screen, "5) Boot the other firmware once\n") {
		t.Errorf("failed slot still offered:\n%s", screen)
	}
}
