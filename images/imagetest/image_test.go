package imagetest

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ftbridge/ftbridge/board"
)

// outDir is where `make image` leaves a board's image, relative to this
// package.
func outDir(name string) string { return filepath.Join("..", "out", name) }

// requireImage skips unless image tests are enabled and the board's image
// and qemu are there.
func requireImage(t *testing.T, name string, needQemu bool) (*board.Board, string) {
	t.Helper()
	if os.Getenv("FTB_IMAGE_TESTS") != "1" {
		t.Skip("image tests need FTB_IMAGE_TESTS=1 and `make image BOARD=" + name + "` first (see docs/images.md)")
	}
	b, err := board.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(outDir(name), "disk.img")
	if _, err := os.Stat(disk); err != nil {
		t.Skipf("no %s image: run `make image BOARD=%s` first", name, name)
	}
	if needQemu {
		for _, tool := range []string{"qemu-system-" + b.QemuArch, "qemu-img"} {
			if _, err := exec.LookPath(tool); err != nil {
				t.Skipf("%s not installed (apt-get install qemu-system-x86 qemu-system-arm qemu-utils)", tool)
			}
		}
		for _, f := range []string{b.Qemu.FirmwareCode, b.Qemu.FirmwareVars} {
			if _, err := os.Stat(f); err != nil {
				t.Skipf("UEFI firmware %s missing (apt-get install ovmf qemu-efi-aarch64)", f)
			}
		}
	}
	return b, disk
}

// hasManagementPlane reports whether this tree's ftbridged serves the API
// (--data-dir): until the management plane is in, the boot tests check the
// daemon runs and skip the API checks, saying so.
func hasManagementPlane(t *testing.T) bool {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ftbridged")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/ftbridged").CombinedOutput(); err != nil {
		t.Fatalf("build ftbridged: %v\n%s", err, out)
	}
	out, _ := exec.Command(bin, "-h").CombinedOutput()
	return strings.Contains(string(out), "-data-dir")
}

// box drives one booted appliance through its serial console.
type box struct {
	t       *testing.T
	vm      *VM
	b       *board.Board
	apiPort int
}

var menuRE = regexp.MustCompile(`(?s)ftbridge recovery console.*?Choice \[1-7\]: `)

func boot(t *testing.T, b *board.Board, disk, dir string, extra string) *box {
	t.Helper()
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	vm, err := Start(Options{Board: b, Disk: disk, Dir: dir, APIPort: port, ExtraDisk: extra, ColdReboot: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		vm.Stop()
		if t.Failed() {
			t.Logf("console log: %s", filepath.Join(dir, "console.log"))
			t.Logf("console tail:\n%s", tail(Strip(vm.Output()), 4000))
		}
	})
	return &box{t: t, vm: vm, b: b, apiPort: port}
}

func (x *box) menu(timeout time.Duration) string {
	x.t.Helper()
	s, err := x.vm.Expect(menuRE, timeout)
	if err != nil {
		x.t.Fatal(err)
	}
	return Strip(s)
}

func (x *box) expect(re string, timeout time.Duration) []string {
	x.t.Helper()
	r := regexp.MustCompile(re)
	s, err := x.vm.Expect(r, timeout)
	if err != nil {
		x.t.Fatal(err)
	}
	return r.FindStringSubmatch(s)
}

func (x *box) send(s string) {
	x.t.Helper()
	if err := x.vm.Send(s); err != nil {
		x.t.Fatal(err)
	}
}

// waitDaemon redisplays the menu until its header says the daemon is
// active, and returns that screen.
func (x *box) waitDaemon(timeout time.Duration) string {
	x.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		x.send("")
		s := x.menu(30 * time.Second)
		if strings.Contains(s, "Daemon: active ") {
			return s
		}
		if time.Now().After(deadline) {
			x.t.Fatalf("daemon not active within %s; last screen:\n%s", timeout, s)
		}
		time.Sleep(2 * time.Second)
	}
}

// shell runs commands in the console's root shell (sulogin) and returns
// their output; the menu is back when it returns.
func (x *box) shell(password, cmds string, timeout time.Duration) string {
	x.t.Helper()
	x.send("7")
	x.expect(`continue\): $`, 30*time.Second)
	// sulogin sets up the terminal after printing its prompt and drops
	// what was typed before; a password typed too early is lost, so type
	// it again if no shell prompt comes.
	for i := 0; ; i++ {
		time.Sleep(time.Second)
		x.send(password)
		if _, err := x.vm.Expect(regexp.MustCompile(`# $`), 20*time.Second); err == nil {
			break
		} else if i == 2 {
			x.t.Fatal(err)
		}
	}
	x.send("PS1='$ '; stty -echo; echo READY$((40+2))")
	x.expect(`READY42`, 30*time.Second)
	x.send(cmds + "; echo END$((6*7))")
	s, err := x.vm.Expect(regexp.MustCompile(`(?s)^(.*?)END42`), timeout)
	if err != nil {
		x.t.Fatal(err)
	}
	x.send("exit")
	x.menu(30 * time.Second)
	return Strip(strings.TrimSuffix(s, "END42"))
}

// api makes a GET on the forwarded management port and returns the status
// code; user "" sends no credentials.
func (x *box) api(path, user, password string) (int, error) {
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	req, _ := http.NewRequest("GET", fmt.Sprintf("https://127.0.0.1:%d%s", x.apiPort, path), nil)
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// waitAPI waits until the API answers at all (401 without credentials).
func (x *box) waitAPI(timeout time.Duration) {
	x.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		code, err := x.api("/api/v1/replicas", "", "")
		if err == nil && code == http.StatusUnauthorized {
			return
		}
		if time.Now().After(deadline) {
			x.t.Fatalf("API not answering 401 on the forwarded port within %s: %d %v", timeout, code, err)
		}
		time.Sleep(2 * time.Second)
	}
}

// checkPassword asserts that good logs in and bad (if set) does not.
func (x *box) checkPassword(good, bad string) {
	x.t.Helper()
	if code, err := x.api("/api/v1/replicas", "admin", good); err != nil || code != http.StatusOK {
		x.t.Fatalf("admin password %q refused: %d %v", good, code, err)
	}
	if bad != "" {
		if code, err := x.api("/api/v1/replicas", "admin", bad); err != nil || code != http.StatusUnauthorized {
			x.t.Fatalf("old admin password %q still accepted: %d %v", bad, code, err)
		}
	}
}

var pwRE = `Admin password \(generated\): (\S+)`

func TestImageLayout(t *testing.T) {
	for _, name := range board.Names() {
		t.Run(name, func(t *testing.T) {
			b, disk := requireImage(t, name, false)
			checkLayout(t, b, disk)
		})
	}
}

func checkLayout(t *testing.T, b *board.Board, disk string) {
	parts, err := ReadGPT(disk)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != len(b.Layout.Partitions) {
		t.Fatalf("%d partitions, board has %d: %+v", len(parts), len(b.Layout.Partitions), parts)
	}
	f, err := os.Open(disk)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	offsets := map[string]int64{}
	for i, want := range b.Layout.Partitions {
		p := parts[i]
		if p.Name != want.Label || p.Type != b.PartitionTypeUUID(want) {
			t.Errorf("partition %d is %q type %s, want %q type %s", i+1, p.Name, p.Type, want.Label, b.PartitionTypeUUID(want))
		}
		if size := (p.Last - p.First + 1) * 512; size != uint64(want.SizeMiB)<<20 {
			t.Errorf("%s: %d bytes, want %d MiB", p.Name, size, want.SizeMiB)
		}
		if p.First%2048 != 0 {
			t.Errorf("%s: starts at LBA %d, not 1 MiB aligned", p.Name, p.First)
		}
		offsets[p.Name] = int64(p.First) * 512
	}
	magic := func(label string, off int64, n int) []byte {
		buf := make([]byte, n)
		if _, err := f.ReadAt(buf, offsets[label]+off); err != nil {
			t.Fatal(err)
		}
		return buf
	}
	if m := magic("root-a", 0, 4); string(m) != "hsqs" {
		t.Errorf("slot A does not hold a squashfs (magic %q)", m)
	}
	if m := magic("root-b", 0, 4096); strings.Trim(string(m), "\x00") != "" {
		t.Errorf("slot B is not empty in a fresh image")
	}
	if m := magic("data", 1080, 2); m[0] != 0x53 || m[1] != 0xef {
		t.Errorf("data partition is not ext4 (magic % x)", m)
	}
	if m := magic("data", 1024+120, 16); strings.TrimRight(string(m), "\x00") != "data" {
		t.Errorf("data partition label %q", m)
	}
	if _, err := exec.LookPath("unsquashfs"); err != nil {
		t.Skip("unsquashfs and mtools needed for the file checks")
	}
	out, err := exec.Command("unsquashfs", "-o", fmt.Sprint(offsets["root-a"]), "-lc", disk).CombinedOutput()
	if err != nil {
		t.Fatalf("unsquashfs: %v\n%s", err, out)
	}
	files := string(out)
	for _, want := range []string{
		"/usr/sbin/ftbridged", "/etc/systemd/system/ftbridged.service.d/10-appliance.conf", "/usr/bin/ftconsole", "/usr/share/ftbridge/board.json", "/etc/rauc/system.conf",
		"/etc/rauc/keyring.pem", "/etc/systemd/system/ftconsole@.service", "/etc/systemd/system/ftbridged.service",
		"/etc/systemd/system/ftbridge-healthy.service", "/etc/systemd/network/10-ftbridge-01-uplink0.link",
		"/etc/systemd/system.conf.d/10-ftbridge-watchdog.conf", "/usr/lib/ftbridge/rauc-backend",
		"/usr/lib/systemd/systemd-bless-boot", "/usr/bin/rauc", "/etc/ftbridge-release",
		"/etc/systemd/system/getty.target.wants/ftconsole@" + b.Console.Device + ".service",
	} {
		if !strings.Contains(files, "squashfs-root"+want+"\n") {
			t.Errorf("root lacks %s", want)
		}
	}
	if !regexp.MustCompile(`squashfs-root/boot/vmlinuz-\S+\n`).MatchString(files) {
		t.Error("root has no kernel in /boot (updates copy it to the ESP from there)")
	}
	if n := strings.Count(files, ".ko\n"); n == 0 || n > 300 {
		t.Errorf("%d kernel modules: pruning did not work", n)
	}
	if strings.Contains(files, "/usr/share/man/") {
		t.Error("man pages left in the root")
	}
	esp := fmt.Sprintf("%s@@%d", disk, offsets["esp"])
	out, err = exec.Command("mdir", "-b", "-/", "-i", esp, "::").CombinedOutput()
	if err != nil {
		t.Fatalf("mdir: %v\n%s", err, out)
	}
	for _, want := range []string{"::/EFI/BOOT/" + b.EFILoader, "::/loader/loader.conf", "::/loader/entries/ftbridge-0001-A.conf", "::/ftbridge/A/vmlinuz", "::/ftbridge/A/initrd.img"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("ESP lacks %s:\n%s", want, out)
		}
	}
	out, err = exec.Command("mtype", "-i", esp, "::/loader/entries/ftbridge-0001-A.conf").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "root=PARTLABEL=root-a") || !strings.Contains(string(out), "console="+b.Console.Device) || !strings.Contains(string(out), "rauc.slot=A") {
		t.Errorf("slot A entry:\n%s %v", out, err)
	}
}

// bootTimes collects measurements for the test log (CI report).
func logDuration(t *testing.T, what string, start time.Time) {
	t.Logf("MEASURE %s: %.1f s", what, time.Since(start).Seconds())
}

func TestBootX86(t *testing.T) {
	b, disk := requireImage(t, "x86_64", true)
	mgmt := hasManagementPlane(t)
	rootPW := os.Getenv("FTB_IMAGE_ROOT_PASSWORD")
	x := boot(t, b, disk, t.TempDir(), "")
	start := time.Now()
	x.menu(4 * time.Minute)
	logDuration(t, "x86_64 power-on to console menu", start)
	screen := x.waitDaemon(2 * time.Minute)
	logDuration(t, "x86_64 power-on to ftbridged active", start)
	if !strings.Contains(screen, "slot A") {
		t.Errorf("fresh image not on slot A:\n%s", screen)
	}

	// Status: every port of the board found by its PCI path and named.
	x.send("1")
	st := Strip(x.expect(`(?s)Version:.*?Press Enter to return to the menu\.`, 30*time.Second)[0])
	for _, p := range b.Ports {
		re := regexp.MustCompile(fmt.Sprintf(`(?m)^  %s\s+%s\s+(\S+)\s+52:54:00:12:34:`, p.Name, p.Role))
		m := re.FindStringSubmatch(st)
		if m == nil || m[1] == "missing" {
			t.Errorf("port %s (%s) not found by its path:\n%s", p.Name, p.Role, st)
		}
	}
	if !regexp.MustCompile(`Management: mgmt0 DHCP, 198\.18\.100\.\d+/24`).MatchString(st) {
		t.Errorf("management port got no DHCP address:\n%s", st)
	}
	x.send("")
	screen = x.menu(30 * time.Second)

	if rootPW != "" {
		out := x.shell(rootPW, "ls /sys/class/net | tr '\\n' ' '; echo; findmnt -n -o FSTYPE /; cat /proc/cmdline; "+
			"touch /usr/rw-test 2>&1; systemctl is-active ftbridged; systemctl --failed --no-legend --plain | tr -s ' ' | cut -d' ' -f1; "+
			"touch /data/ftbridge/marker-key.pem; ls -l /dev/watchdog0", 60*time.Second)
		for _, want := range []string{"mgmt0 ", "uplink0 ", "rep0 ", "rep3 ", "squashfs\n", "rauc.slot=A", "Read-only file system", "active\n", "/dev/watchdog0"} {
			if !strings.Contains(out, want) {
				t.Errorf("root shell output lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, ".service\n") {
			t.Errorf("failed units:\n%s", out)
		}
	} else {
		t.Log("FTB_IMAGE_ROOT_PASSWORD not set: root shell checks skipped (image built without ROOT_PASSWORD)")
	}

	var pw string
	if mgmt {
		m := regexp.MustCompile(pwRE).FindStringSubmatch(screen)
		for i := 0; m == nil && i < 20; i++ {
			screen = x.waitDaemon(30 * time.Second)
			m = regexp.MustCompile(pwRE).FindStringSubmatch(screen)
		}
		if m == nil {
			t.Fatalf("first-boot admin password not shown on the console:\n%s", screen)
		}
		pw = m[1]
		x.waitAPI(2 * time.Minute)
		x.checkPassword(pw, "wrong-"+pw)

		x.send("3")
		x.expect(`Reset the admin password\? \[y/N\]: `, 30*time.Second)
		x.send("y")
		npw := x.expect(`New admin password: (\S+)`, 2*time.Minute)[1]
		if npw == pw {
			t.Fatalf("reset gave the same password")
		}
		x.send("")
		x.menu(30 * time.Second)
		x.waitAPI(time.Minute)
		x.checkPassword(npw, pw)
		pw = npw
	} else {
		t.Log("ftbridged has no --data-dir (management plane not in this tree): API and password checks skipped")
	}

	// Factory reset: refused without the phrase, then done.
	x.send("4")
	x.expect(`anything else cancels: `, 30*time.Second)
	x.send("yes")
	x.expect(`Cancelled: nothing was erased\.`, 30*time.Second)
	x.menu(30 * time.Second)
	x.send("4")
	x.expect(`anything else cancels: `, 30*time.Second)
	x.send("FACTORY RESET")
	out := Strip(x.expect(`(?s)Factory reset done\..*?Press Enter to continue\.`, 3*time.Minute)[0])
	x.send("")
	x.menu(30 * time.Second)
	if mgmt {
		m := regexp.MustCompile(`New admin password: (\S+)`).FindStringSubmatch(out)
		if m == nil || m[1] == pw {
			t.Fatalf("no new password after factory reset:\n%s", out)
		}
		x.waitAPI(2 * time.Minute)
		x.checkPassword(m[1], pw)
	}
	if rootPW != "" {
		out := x.shell(rootPW, "ls /data/ftbridge | tr '\\n' ' '", 30*time.Second)
		if strings.Contains(out, "marker-key.pem") || !strings.Contains(out, "config.json") {
			t.Errorf("data directory after factory reset: %s", out)
		}
	}
	x.waitDaemon(2 * time.Minute)
}

func TestBootArm64(t *testing.T) {
	b, disk := requireImage(t, "arm64", true)
	mgmt := hasManagementPlane(t)
	x := boot(t, b, disk, t.TempDir(), "")
	start := time.Now()
	x.menu(8 * time.Minute)
	logDuration(t, "arm64 power-on to console menu", start)
	screen := x.waitDaemon(4 * time.Minute)
	logDuration(t, "arm64 power-on to ftbridged active", start)
	x.send("1")
	st := Strip(x.expect(`(?s)Ports:.*?Press Enter to return to the menu\.`, 30*time.Second)[0])
	for _, p := range b.Ports {
		if !regexp.MustCompile(fmt.Sprintf(`(?m)^  %s\s+%s\s+(up|down|unknown|dormant)\s`, p.Name, p.Role)).MatchString(st) {
			t.Errorf("port %s not found by its path:\n%s", p.Name, st)
		}
	}
	x.send("")
	x.menu(30 * time.Second)
	if mgmt {
		m := regexp.MustCompile(pwRE).FindStringSubmatch(screen)
		for i := 0; m == nil && i < 20; i++ {
			screen = x.waitDaemon(30 * time.Second)
			m = regexp.MustCompile(pwRE).FindStringSubmatch(screen)
		}
		if m == nil {
			t.Fatalf("admin password not shown:\n%s", screen)
		}
		x.waitAPI(3 * time.Minute)
		x.checkPassword(m[1], "wrong")
	} else {
		t.Log("ftbridged has no --data-dir: API checks skipped")
	}
}
