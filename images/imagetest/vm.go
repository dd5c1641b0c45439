package imagetest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ftbridge/ftbridge/board"
)

// Options describe one VM.
type Options struct {
	// Board is the board the image was built for.
	Board *board.Board
	// Disk is the image to boot; the VM writes to a qcow2 overlay, so the
	// image itself is never changed.
	Disk string
	// Dir holds the overlay, the UEFI variables and the console log.
	Dir string
	// APIPort, when non-zero, forwards 127.0.0.1:APIPort to the guest's
	// management port 8443.
	APIPort int
	// ExtraDisk is attached as a second virtio disk (bundles).
	ExtraDisk string
	// MemoryMiB is the guest memory; zero means 1024.
	MemoryMiB int
	// NetNS, when set, runs qemu inside that network namespace (ip netns
	// exec), so tap devices there can carry the board's ports.
	NetNS string
	// Taps maps port names to tap devices (in NetNS) that carry them
	// instead of a user-mode network. Tap ports get no guest offloads, so
	// the dataplane sees frames as they were on the wire.
	Taps map[string]string
	// Ports, when not empty, limits the NICs to these port names (in
	// board order, so PCI bus numbers still match the port map as long as
	// a prefix of the ports is taken).
	Ports []string
	// ColdReboot makes a reboot of the guest a power cycle: qemu runs
	// with -no-reboot and is started again on the same disk and UEFI
	// variables. The firmware's warm reset under TCG took 2.5 to over 5
	// minutes before anything reached the console (a cold boot takes
	// under one), and a real appliance's reboot is as good as a cold
	// start for what the tests check: the boot counting lives on the ESP.
	ColdReboot bool
}

// VM is a running qemu guest with its serial console.
type VM struct {
	log *os.File

	mu      sync.Mutex
	cmd     *exec.Cmd      // the qemu process running now
	stdin   io.WriteCloser // its console input
	stopped bool           // Stop was called: no more cold reboots
	out     bytes.Buffer
	pos     int
	done    chan struct{}
	err     error
}

// FreePort returns a TCP port on loopback that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Args returns the qemu command line for o (without the binary).
func Args(o Options, overlay, vars string) []string {
	b := o.Board
	mem := o.MemoryMiB
	if mem == 0 {
		mem = 1024
	}
	a := []string{
		"-machine", b.Qemu.Machine, "-cpu", b.Qemu.CPU, "-accel", "tcg", "-smp", "2", "-m", fmt.Sprint(mem),
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + b.Qemu.FirmwareCode,
		"-drive", "if=pflash,format=raw,unit=1,file=" + vars,
		"-drive", "if=none,id=disk0,format=qcow2,file=" + overlay,
		"-device", b.Qemu.Disk + ",drive=disk0,bootindex=0",
		"-display", "none", "-monitor", "none", "-serial", "stdio", "-nodefaults",
	}
	if o.ExtraDisk != "" {
		a = append(a, "-drive", "if=none,id=disk1,format=raw,readonly=on,file="+o.ExtraDisk, "-device", b.Qemu.Disk+",drive=disk1")
	}
	if b.Qemu.Watchdog != "" {
		a = append(a, "-device", b.Qemu.Watchdog)
	}
	// One NIC per port, each behind its own PCIe root port so the guest
	// sees the bus numbers the board's port map names (01:00.0 ...),
	// like a mini-PC with one controller per port. Every NIC is on a
	// user-mode network inside qemu, restricted (nothing leaves the qemu
	// process) and numbered from the benchmarking range 198.18.0.0/15.
	for i, p := range b.Ports {
		if len(o.Ports) > 0 && !contains(o.Ports, p.Name) {
			continue
		}
		rp := fmt.Sprintf("rp%d", i)
		a = append(a, "-device", fmt.Sprintf("pcie-root-port,id=%s,bus=pcie.0,chassis=%d,addr=0x%x", rp, i+1, 0x10+i))
		nd := fmt.Sprintf("user,id=n%d,restrict=on,net=198.18.%d.0/24,host=198.18.%d.2,dhcpstart=198.18.%d.15", i, 100+i, 100+i, 100+i)
		if p.Role == board.RoleManagement && o.APIPort != 0 {
			nd += fmt.Sprintf(",hostfwd=tcp:127.0.0.1:%d-:8443", o.APIPort)
		}
		dev := fmt.Sprintf("%s,netdev=n%d,bus=%s,mac=52:54:00:12:34:%02x", b.Qemu.NICModel, i, rp, 0x50+i)
		if tap, ok := o.Taps[p.Name]; ok {
			nd = fmt.Sprintf("tap,id=n%d,ifname=%s,script=no,downscript=no", i, tap)
			dev += ",guest_tso4=off,guest_tso6=off,guest_ecn=off,guest_ufo=off,host_tso4=off,host_tso6=off"
		}
		a = append(a, "-netdev", nd, "-device", dev)
	}
	return a
}

// Start boots a VM.
func Start(o Options) (*VM, error) {
	overlay := filepath.Join(o.Dir, "disk.qcow2")
	if _, err := os.Stat(overlay); os.IsNotExist(err) {
		abs, _ := filepath.Abs(o.Disk)
		if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", abs, overlay).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("qemu-img: %v: %s", err, out)
		}
	}
	vars := filepath.Join(o.Dir, "efivars.fd")
	if _, err := os.Stat(vars); os.IsNotExist(err) {
		raw, err := os.ReadFile(o.Board.Qemu.FirmwareVars)
		if err != nil {
			return nil, err
		}
		// AAVMF's variable store must match the code image's 64 MiB.
		if fi, err := os.Stat(o.Board.Qemu.FirmwareCode); err == nil && int64(len(raw)) < fi.Size() && o.Board.Arch == "arm64" {
			raw = append(raw, make([]byte, fi.Size()-int64(len(raw)))...)
		}
		if err := os.WriteFile(vars, raw, 0o644); err != nil {
			return nil, err
		}
	}
	log, err := os.OpenFile(filepath.Join(o.Dir, "console.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	args := Args(o, overlay, vars)
	if o.ColdReboot {
		args = append(args, "-no-reboot")
	}
	v := &VM{log: log, done: make(chan struct{})}
	stdout, err := v.spawn(o, args)
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			v.copyOutput(stdout)
			v.mu.Lock()
			cmd := v.cmd
			v.mu.Unlock()
			err := cmd.Wait()
			v.mu.Lock()
			again := o.ColdReboot && !v.stopped && err == nil
			v.mu.Unlock()
			if again {
				// The guest rebooted: power it on again.
				if stdout, err = v.spawn(o, args); err == nil {
					continue
				}
			}
			v.err = err
			close(v.done)
			return
		}
	}()
	return v, nil
}

// spawn starts a qemu process with args and makes it the VM's current one.
func (v *VM) spawn(o Options, args []string) (io.Reader, error) {
	cmd := exec.Command("qemu-system-"+o.Board.QemuArch, args...)
	if o.NetNS != "" {
		// ip netns exec execs qemu in place: the PID stays qemu's.
		cmd = exec.Command("ip", append([]string{"netns", "exec", o.NetNS, "qemu-system-" + o.Board.QemuArch}, args...)...)
	}
	// No Pdeathsig: it fires when the OS thread that forked exits, which
	// the Go runtime does with threads locked by namespace code (the lab's
	// InNS), killing qemu mid-test. Tests stop the VM in a cleanup.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = v.log
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.stopped {
		return nil, errors.New("imagetest: VM stopped")
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	v.cmd, v.stdin = cmd, stdin
	return stdout, nil
}

// copyOutput appends the console output of the current qemu to the VM's
// output and log until it closes.
func (v *VM) copyOutput(stdout io.Reader) {
	r := bufio.NewReader(stdout)
	b := make([]byte, 4096)
	for {
		n, err := r.Read(b)
		if n > 0 {
			v.mu.Lock()
			v.out.Write(b[:n])
			v.mu.Unlock()
			v.log.Write(b[:n])
		}
		if err != nil {
			return
		}
	}
}

// ansi matches terminal escape sequences the firmware and kernel print, so
// expectations can be written against plain text.
var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][0-9A-Za-z]|\x1bc`)

// Expect waits up to timeout for text matching re to appear after the last
// match, and returns the (escape-free) output up to the end of the match.
func (v *VM) Expect(re *regexp.Regexp, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		v.mu.Lock()
		raw := v.out.String()[v.pos:]
		clean := ansi.ReplaceAllString(raw, "")
		if loc := re.FindStringIndex(clean); loc != nil {
			// Advance by the raw length of the matched clean prefix.
			v.pos += rawOffset(raw, loc[1])
			v.mu.Unlock()
			return clean[:loc[1]], nil
		}
		v.mu.Unlock()
		select {
		case <-v.done:
			return clean, fmt.Errorf("qemu exited (%v) while waiting for %q", v.err, re)
		default:
		}
		if time.Now().After(deadline) {
			return clean, fmt.Errorf("timed out after %s waiting for %q; last output:\n%s", timeout, re, tail(clean, 3000))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ExpectString is Expect for a literal.
func (v *VM) ExpectString(s string, timeout time.Duration) (string, error) {
	return v.Expect(regexp.MustCompile(regexp.QuoteMeta(s)), timeout)
}

// rawOffset maps an offset in the escape-stripped text back to raw.
func rawOffset(raw string, cleanOff int) int {
	n := 0
	for i := 0; i <= len(raw); i++ {
		if n == cleanOff {
			return i
		}
		if i == len(raw) {
			break
		}
		if loc := ansi.FindStringIndex(raw[i:]); loc != nil && loc[0] == 0 {
			i += loc[1] - 1
			continue
		}
		n++
	}
	return len(raw)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// Send types a line and a carriage return, as a serial terminal does.
func (v *VM) Send(line string) error {
	v.mu.Lock()
	stdin := v.stdin
	v.mu.Unlock()
	_, err := io.WriteString(stdin, line+"\r")
	return err
}

// Output returns everything the console printed so far.
func (v *VM) Output() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.out.String()
}

// Stop kills qemu (only the process this VM started) and waits for it.
func (v *VM) Stop() {
	v.mu.Lock()
	v.stopped = true
	if v.cmd.Process != nil {
		syscall.Kill(-v.cmd.Process.Pid, syscall.SIGKILL)
	}
	v.mu.Unlock()
	select {
	case <-v.done:
	case <-time.After(10 * time.Second):
	}
	v.log.Close()
}

// Done is closed when qemu has exited.
func (v *VM) Done() <-chan struct{} { return v.done }

// Strip removes escape sequences and carriage returns from console text.
func Strip(s string) string {
	return strings.ReplaceAll(ansi.ReplaceAllString(s, ""), "\r", "")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
