package sysd

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestUnitFile keeps deploy/systemd/ftbridged.service honest: a notify
// service with a watchdog, the hardening the design asks for, and an
// ExecStart that uses flags ftbridged has.
func TestUnitFile(t *testing.T) {
	path := filepath.Join("..", "..", "deploy", "systemd", "ftbridged.service")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	unit := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf("bad line %q", line)
			continue
		}
		unit[k] = v
	}
	for k, want := range map[string]string{
		"Type": "notify", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
		"CapabilityBoundingSet": "CAP_NET_RAW CAP_NET_ADMIN", "Restart": "always",
	} {
		if unit[k] != want {
			t.Errorf("%s=%q, want %q", k, unit[k], want)
		}
	}
	if unit["WatchdogSec"] == "" {
		t.Error("no WatchdogSec")
	}
	for _, flag := range []string{"--config", "--data-dir", "-quiet-conns"} {
		if !strings.Contains(unit["ExecStart"], flag) {
			t.Errorf("ExecStart lacks %s", flag)
		}
	}
	main, err := os.ReadFile(filepath.Join("..", "..", "cmd", "ftbridged", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, flag := range []string{`"config"`, `"data-dir"`, `"quiet-conns"`, `"check"`} {
		if !strings.Contains(string(main), flag) {
			t.Errorf("ftbridged has no flag %s", flag)
		}
	}
	// systemd's own checker, where it is installed; a missing binary at
	// /usr/sbin is expected on a build machine.
	if _, err := exec.LookPath("systemd-analyze"); err == nil {
		out, _ := exec.Command("systemd-analyze", "verify", path).CombinedOutput()
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if line != "" && !strings.Contains(line, "is not executable") && !strings.Contains(line, "/usr/sbin/ftbridged") {
				t.Errorf("systemd-analyze: %s", line)
			}
		}
	}
}
