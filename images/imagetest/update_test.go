package imagetest

import (
	"os"
	"os/exec"
	"path/filepath"
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

// install mounts the bundle disk and installs one bundle with the rauc
// command line, returning the output.
func (x *box) install(pw, bundle string) string {
	x.t.Helper()
	start := time.Now()
	out := x.shell(pw, "mkdir -p /run/bundles; mountpoint -q /run/bundles || mount -o ro /dev/disk/by-label/bundles /run/bundles; "+
		"rauc install /run/bundles/"+bundle+" >/run/rauc.log 2>&1; echo RC=$?; tail -n 4 /run/rauc.log; ls /efi/loader/entries | tr '\\n' ' '", 10*time.Minute)
	logDuration(x.t, "rauc install "+bundle, start)
	if !strings.Contains(out, "RC=0") {
		x.t.Fatalf("rauc install %s failed:\n%s", bundle, out)
	}
	return out
}

func (x *box) reboot() {
	x.t.Helper()
	x.send("6")
	x.expect(`Reboot the box now\? \[y/N\]: `, 30*time.Second)
	x.send("y")
	x.expect(`Rebooting`, 30*time.Second)
}

func TestUpdateRollback(t *testing.T) {
	b, disk := requireImage(t, "x86_64", true)
	pw := os.Getenv("FTB_IMAGE_ROOT_PASSWORD")
	if pw == "" {
		t.Skip("needs FTB_IMAGE_ROOT_PASSWORD (image built with ROOT_PASSWORD): bundles are installed from the console's root shell")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: the broken bundle is rebuilt from the root image with its owners")
	}
	for _, tool := range []string{"rauc", "mke2fs", "unsquashfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	dir := t.TempDir()
	stage := filepath.Join(dir, "bundles")
	os.MkdirAll(stage, 0o755)
	start := time.Now()
	for _, args := range [][]string{{"x86_64"}, {"x86_64", "--broken", filepath.Join(stage, "broken.raucb")}} {
		if out, err := exec.Command("bash", append([]string{"../bundle.sh"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("bundle.sh %v: %v\n%s", args, err, out)
		} else {
			t.Logf("%s", strings.TrimSpace(string(out)))
		}
	}
	logDuration(t, "build good and broken bundles", start)
	good, err := os.ReadFile(filepath.Join(outDir("x86_64"), "update.raucb"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(stage, "good.raucb"), good, 0o644)
	bundles := filepath.Join(dir, "bundles.ext4")
	if out, err := exec.Command("mke2fs", "-q", "-t", "ext4", "-L", "bundles", "-d", stage, bundles, "400M").CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	os.RemoveAll(stage)

	x := boot(t, b, disk, dir, bundles)
	x.menu(4 * time.Minute)
	x.waitDaemon(2 * time.Minute)

	// A good update: written to slot B, booted on trial, committed.
	out := x.install(pw, "good.raucb")
	if !strings.Contains(out, "ftbridge-0002-B+1.conf") || !strings.Contains(out, "ftbridge-0001-A.conf") {
		t.Fatalf("entries after installing into B:\n%s", out)
	}
	x.reboot()
	start = time.Now()
	x.waitSlot("B", 5*time.Minute)
	x.waitDaemon(2 * time.Minute)
	logDuration(t, "reboot into the updated slot B to a running daemon", start)
	committed := false
	for i := 0; i < 12 && !committed; i++ {
		out = x.shell(pw, "ls /efi/loader/entries | tr '\\n' ' '; echo; cat /data/ftbridge/events/update.jsonl 2>/dev/null", time.Minute)
		committed = strings.Contains(out, "ftbridge-0002-B.conf ") && strings.Contains(out, `"update.committed"`)
		if !committed {
			time.Sleep(5 * time.Second)
		}
	}
	if !committed {
		t.Fatalf("slot B not committed after a healthy boot:\n%s", out)
	}
	logDuration(t, "slot B committed", start)

	// A broken update into slot A: its daemon exits at once, the trial
	// boot is not healthy, the box reboots and comes back on B by itself.
	out = x.install(pw, "broken.raucb")
	if !strings.Contains(out, "ftbridge-0003-A+1.conf") {
		t.Fatalf("entries after installing into A:\n%s", out)
	}
	x.reboot()
	start = time.Now()
	screen := x.waitSlot("A", 5*time.Minute)
	t.Logf("trial boot of the broken slot A reached the console:\n%s", screen)
	x.waitSlot("B", 8*time.Minute)
	logDuration(t, "broken trial boot to automatic rollback on slot B", start)
	x.waitDaemon(2 * time.Minute)
	var events string
	for i := 0; i < 12; i++ {
		events = x.shell(pw, "cat /proc/cmdline; ls /efi/loader/entries | tr '\\n' ' '; echo; cat /data/ftbridge/events/update.jsonl", time.Minute)
		if strings.Contains(events, `"update.rollback"`) {
			break
		}
		time.Sleep(5 * time.Second)
	}
	for _, want := range []string{"rauc.slot=B", "ftbridge-0003-A+0-1.conf", "ftbridge-0002-B.conf", `"update.rollback"`, "rolled back to slot B"} {
		if !strings.Contains(events, want) {
			t.Errorf("after the rollback, %q missing:\n%s", want, events)
		}
	}
	// The console no longer offers the failed slot.
	x.send("")
	if screen := x.menu(30 * time.Second); !strings.Contains(screen, "5) Boot the other firmware once\n") {
		t.Errorf("failed slot still offered:\n%s", screen)
	}
}
