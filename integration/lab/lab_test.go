package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func execIP(args ...string) *exec.Cmd { return exec.Command("ip", args...) }
func execTC(args ...string) *exec.Cmd { return exec.Command("tc", args...) }

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("lab tests create network namespaces and veths: need root")
	}
}

// newLab builds a lab whose Close is guaranteed to run, even on failure.
func newLab(t *testing.T, opts Options) *Lab {
	t.Helper()
	needRoot(t)
	l, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return l
}

// netnsList returns the names "ip netns list" shows.
func netnsList(t *testing.T) map[string]bool {
	t.Helper()
	out, err := runOut(execIP("netns", "list"))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names[f[0]] = true
		}
	}
	return names
}

type ipAddrInfo struct {
	IfName    string   `json:"ifname"`
	Flags     []string `json:"flags"`
	OperState string   `json:"operstate"`
	AddrInfo  []struct {
		Family    string `json:"family"`
		Local     string `json:"local"`
		PrefixLen int    `json:"prefixlen"`
	} `json:"addr_info"`
}

// addrInfo reads "ip -j addr show dev" independently of the code under test.
func addrInfo(t *testing.T, ns, dev string) ipAddrInfo {
	t.Helper()
	out, err := runOut(execIP("-n", ns, "-j", "addr", "show", "dev", dev))
	if err != nil {
		t.Fatalf("%s/%s: %v", ns, dev, err)
	}
	var infos []ipAddrInfo
	if err := json.Unmarshal([]byte(out), &infos); err != nil || len(infos) != 1 {
		t.Fatalf("%s/%s: parse %q: %v", ns, dev, out, err)
	}
	return infos[0]
}

func hasFlag(in ipAddrInfo, flag string) bool {
	for _, f := range in.Flags {
		if f == flag {
			return true
		}
	}
	return false
}

// wantAddrs checks dev's exact address list (family/prefix).
func wantAddrs(t *testing.T, ns, dev string, want ...string) {
	t.Helper()
	in := addrInfo(t, ns, dev)
	var got []string
	for _, a := range in.AddrInfo {
		// Client and replicas keep the kernel's default IPv6 link-local
		// address; only IPv4 is part of the lab's addressing.
		if a.Family != "inet" {
			continue
		}
		got = append(got, fmt.Sprintf("%s/%d", a.Local, a.PrefixLen))
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("%s/%s addresses = %v, want %v", ns, dev, got, want)
	}
	if !hasFlag(in, "UP") {
		t.Errorf("%s/%s is not up: %v", ns, dev, in.Flags)
	}
}

// sysctlCLI reads a sysctl through the sysctl command in the namespace, a
// path independent of Lab.Sysctl.
func sysctlCLI(t *testing.T, l *Lab, ns, key string) string {
	t.Helper()
	out, err := l.Run(ns, "sysctl", "-n", key)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(strings.Fields(out), " ")
}

func TestTopology(t *testing.T) {
	needRoot(t)
	rootSysctls := func() string {
		var s []string
		for _, k := range []string{"ipv4/tcp_timestamps", "ipv4/tcp_sack", "ipv4/tcp_rmem", "ipv6/conf/all/disable_ipv6"} {
			b, _ := os.ReadFile("/proc/sys/net/" + k)
			s = append(s, strings.TrimSpace(string(b)))
		}
		return strings.Join(s, "|")
	}
	rootBefore := rootSysctls()
	l := newLab(t, Options{Replicas: 3})
	if !strings.HasPrefix(l.Name, "ftb") || len(l.Name) != 9 {
		t.Errorf("Name = %q, want ftb + 6 hex digits", l.Name)
	}
	all := append([]string{l.ClientNS, l.BoxNS}, l.ReplicaNS...)
	if len(l.ReplicaNS) != 3 || len(l.ReplicaPorts) != 3 {
		t.Fatalf("replicas %v ports %v, want 3 each", l.ReplicaNS, l.ReplicaPorts)
	}
	list := netnsList(t)
	for _, ns := range all {
		if !list[ns] {
			t.Errorf("namespace %s missing from ip netns list", ns)
		}
		if !strings.HasPrefix(ns, l.Name+"-") {
			t.Errorf("namespace %s lacks the lab prefix", ns)
		}
		if !hasFlag(addrInfo(t, ns, "lo"), "UP") {
			t.Errorf("%s: lo is down", ns)
		}
	}
	if l.ClientIP.String() != "198.18.0.1" || l.VIP.String() != "198.18.0.10" {
		t.Errorf("ClientIP %v VIP %v", l.ClientIP, l.VIP)
	}
	wantAddrs(t, l.ClientNS, "eth0", "198.18.0.1/24")
	for i, ns := range l.ReplicaNS {
		wantAddrs(t, ns, "eth0", "198.18.0.10/24")
		if l.ReplicaPorts[i] != fmt.Sprintf("rp%d", i) {
			t.Errorf("ReplicaPorts[%d] = %q", i, l.ReplicaPorts[i])
		}
	}
	// Box ports: up, carrier, no address of any family (IPv6 disabled).
	for _, dev := range append([]string{l.Uplink}, l.ReplicaPorts...) {
		wantAddrs(t, l.BoxNS, dev)
		if in := addrInfo(t, l.BoxNS, dev); len(in.AddrInfo) != 0 {
			t.Errorf("box/%s has addresses %+v", dev, in.AddrInfo)
		}
		if in := addrInfo(t, l.BoxNS, dev); in.OperState != "UP" {
			t.Errorf("box/%s operstate %s, want UP (peer up)", dev, in.OperState)
		}
		if v := sysctlCLI(t, l, l.BoxNS, "net.ipv6.conf."+dev+".disable_ipv6"); v != "1" {
			t.Errorf("box/%s disable_ipv6 = %s", dev, v)
		}
	}
	if links, err := l.links(l.BoxNS); err != nil || len(links) != 4 {
		t.Errorf("box links %v (%v), want up0 + 3 ports", links, err)
	}
	// Replicas differ as the contract asks.
	want := []map[string]string{
		{"net.ipv4.tcp_timestamps": "1", "net.ipv4.tcp_sack": "1"},
		{"net.ipv4.tcp_timestamps": "2", "net.ipv4.tcp_rmem": "4096 65536 1048576", "net.ipv4.tcp_sack": "1"},
		{"net.ipv4.tcp_timestamps": "1", "net.ipv4.tcp_sack": "0"},
	}
	for i, kv := range want {
		for k, v := range kv {
			if got := sysctlCLI(t, l, l.ReplicaNS[i], k); got != v {
				t.Errorf("replica %d %s = %q, want %q", i, k, got, v)
			}
		}
	}
	if got, err := l.Sysctl(l.ReplicaNS[1], "net.ipv4.tcp_rmem"); err != nil || got != "4096 65536 1048576" {
		t.Errorf("Sysctl = %q, %v", got, err)
	}
	// The root namespace must not have been touched.
	if after := rootSysctls(); after != rootBefore {
		t.Errorf("root namespace sysctls changed: %s -> %s", rootBefore, after)
	}
	ifi, err := l.Interface(l.BoxNS, "rp1")
	if err != nil || ifi.Index <= 0 || len(ifi.HardwareAddr) != 6 {
		t.Errorf("Interface(box, rp1) = %+v, %v", ifi, err)
	}
	// Misuse never reaches a foreign namespace.
	if _, err := l.Run("ftbnotours", "true"); err == nil {
		t.Error("Run in a foreign namespace succeeded")
	}
	if err := l.InNS("ftbnotours", func() error { return nil }); err == nil {
		t.Error("InNS in a foreign namespace succeeded")
	}
	dir := l.Dir()
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("Dir: %v", err)
	}

	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	list = netnsList(t)
	for _, ns := range all {
		if list[ns] {
			t.Errorf("namespace %s survived Close", ns)
		}
	}
	if _, err := os.Stat(dir); os.Getenv(keepEnv) != "1" && !os.IsNotExist(err) {
		t.Errorf("Dir %s survived Close: %v", dir, err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestNoVaryAndNames(t *testing.T) {
	a := newLab(t, Options{NoVary: true})
	b := newLab(t, Options{})
	if a.Name == b.Name {
		t.Fatalf("two labs share the name %s", a.Name)
	}
	if len(a.ReplicaNS) != 2 {
		t.Errorf("default replicas = %d, want 2", len(a.ReplicaNS))
	}
	if v := sysctlCLI(t, a, a.ReplicaNS[1], "net.ipv4.tcp_timestamps"); v != "1" {
		t.Errorf("NoVary replica 1 tcp_timestamps = %s, want the default 1", v)
	}
	if v := sysctlCLI(t, b, b.ReplicaNS[1], "net.ipv4.tcp_timestamps"); v != "2" {
		t.Errorf("varied replica 1 tcp_timestamps = %s, want 2", v)
	}
	if _, err := New(Options{Replicas: maxReplicas + 1}); err == nil {
		t.Error("New accepted too many replicas")
	}
}

func TestNewFailureTearsDown(t *testing.T) {
	needRoot(t)
	var seen *Lab
	testHookReplicaAdded = func(l *Lab, i int) error {
		seen = l
		if i == 1 {
			return errors.New("injected")
		}
		return nil
	}
	defer func() { testHookReplicaAdded = nil }()
	l, err := New(Options{Replicas: 3})
	if err == nil || l != nil {
		if l != nil {
			l.Close()
		}
		t.Fatalf("New = %v, %v; want the injected error", l, err)
	}
	if seen == nil {
		t.Fatal("hook never ran")
	}
	list := netnsList(t)
	for ns := range list {
		if strings.HasPrefix(ns, seen.Name) {
			t.Errorf("namespace %s leaked after failed New", ns)
		}
	}
	out, err := runOut(execIP("-o", "link", "show"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, seen.Name) {
		t.Errorf("root-namespace link of %s leaked:\n%s", seen.Name, out)
	}
	if _, err := os.Stat(seen.Dir()); !os.IsNotExist(err) && os.Getenv(keepEnv) != "1" {
		t.Errorf("Dir leaked: %v", err)
	}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	for i := 0; i < 200 && alive(pid); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if alive(pid) {
		t.Errorf("pid %d still alive", pid)
	}
}

func TestProcesses(t *testing.T) {
	l := newLab(t, Options{Replicas: 1})
	ns := l.ReplicaNS[0]

	sleeper, err := l.Start(ns, "sleep", "300")
	if err != nil {
		t.Fatal(err)
	}
	if sleeper.Pid() <= 0 || sleeper.Exited() {
		t.Fatalf("sleeper pid %d exited %v", sleeper.Pid(), sleeper.Exited())
	}
	// It really runs in the replica namespace: same netns inode.
	var want, got syscall.Stat_t
	if err := syscall.Stat(filepath.Join(netnsDir, ns), &want); err != nil {
		t.Fatal(err)
	}
	// ip netns exec switches namespaces just before exec: poll, bounded.
	for i := 0; i < 200; i++ {
		if err := syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", sleeper.Pid()), &got); err != nil {
			t.Fatal(err)
		}
		if got.Ino == want.Ino {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if want.Ino != got.Ino {
		t.Errorf("process netns inode %d, want %d", got.Ino, want.Ino)
	}

	// A process that exits on its own: output logged, status reported.
	echo, err := l.Start(l.ClientNS, "sh", "-c", "echo out-line; echo err-line >&2; exit 3")
	if err != nil {
		t.Fatal(err)
	}
	err = echo.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Errorf("Wait = %v, want exit status 3", err)
	}
	if !echo.Exited() || !strings.Contains(echo.Log(), "out-line") || !strings.Contains(echo.Log(), "err-line") {
		t.Errorf("exited %v log %q", echo.Exited(), echo.Log())
	}
	if !strings.HasPrefix(echo.LogPath, l.Dir()) {
		t.Errorf("log %s outside Dir %s", echo.LogPath, l.Dir())
	}

	// Signal, then Kill of an already exited process.
	term, err := l.Start(ns, "sleep", "300")
	if err != nil {
		t.Fatal(err)
	}
	if err := term.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := term.Wait(); err == nil || !strings.Contains(err.Error(), "terminated") {
		t.Errorf("Wait after SIGTERM = %v", err)
	}
	if err := term.Kill(); err != nil {
		t.Errorf("Kill after exit: %v", err)
	}
	if err := term.Signal(syscall.SIGTERM); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("Signal after reap = %v, want ErrProcessDone", err)
	}

	// Kill takes the whole process group: the shell's background child too.
	parent, err := l.Start(ns, "sh", "-c", "sleep 301 & echo child=$!; wait")
	if err != nil {
		t.Fatal(err)
	}
	child := waitChild(t, parent)
	if err := parent.Kill(); err != nil {
		t.Fatal(err)
	}
	if !parent.Exited() {
		t.Error("Exited false after Kill")
	}
	waitGone(t, parent.Pid())
	waitGone(t, child)

	// Close kills leftovers, including grandchildren.
	leftover, err := l.Start(l.BoxNS, "sh", "-c", "sleep 302 & echo child=$!; wait")
	if err != nil {
		t.Fatal(err)
	}
	leftChild := waitChild(t, leftover)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*Proc{sleeper, leftover} {
		if !p.Exited() {
			t.Errorf("pid %d not exited after Close", p.Pid())
		}
		waitGone(t, p.Pid())
	}
	waitGone(t, leftChild)
	if _, err := l.Start(ns, "true"); err == nil {
		t.Error("Start after Close succeeded")
	}
}

// waitChild reads "child=<pid>" from p's log (bounded wait).
func waitChild(t *testing.T, p *Proc) int {
	t.Helper()
	for i := 0; i < 300; i++ {
		if _, after, ok := strings.Cut(p.Log(), "child="); ok {
			if pid, err := strconv.Atoi(strings.TrimSpace(after)); err == nil {
				if !alive(pid) {
					t.Fatalf("child %d not running", pid)
				}
				return pid
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no child pid in log %q", p.Log())
	return 0
}

// bridge temporarily joins the uplink and one replica port in the box, so
// the client reaches that replica without a dataplane. Returns the undo.
func bridge(t *testing.T, l *Lab, port string) func() {
	t.Helper()
	steps := [][]string{
		{"link", "add", "br0", "type", "bridge"},
		{"link", "set", "br0", "up"},
		{"link", "set", l.Uplink, "master", "br0"},
		{"link", "set", port, "master", "br0"},
	}
	for _, s := range steps {
		if _, err := l.Run(l.BoxNS, "ip", s...); err != nil {
			l.Run(l.BoxNS, "ip", "link", "del", "br0")
			t.Fatal(err)
		}
	}
	return func() {
		if _, err := l.Run(l.BoxNS, "ip", "link", "del", "br0"); err != nil {
			t.Errorf("removing bridge: %v", err)
		}
	}
}

// roundTrip checks that a client Dial to VIP:port lands on want (and not on
// any other listener), and that bytes flow both ways.
func roundTrip(t *testing.T, l *Lab, want net.Listener, others ...net.Listener) {
	t.Helper()
	for _, o := range others {
		go func() {
			if c, err := o.Accept(); err == nil {
				t.Errorf("connection reached the wrong replica (%v)", o.Addr())
				c.Close()
			}
		}()
	}
	type acc struct {
		c   net.Conn
		err error
	}
	ac := make(chan acc, 1)
	go func() {
		c, err := want.Accept()
		ac <- acc{c, err}
	}()
	c, err := l.Dial(l.ClientNS, "tcp", want.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatalf("Dial VIP: %v", err)
	}
	defer c.Close()
	var a acc
	select {
	case a = <-ac:
	case <-time.After(5 * time.Second):
		t.Fatal("replica never accepted")
	}
	if a.err != nil {
		t.Fatal(a.err)
	}
	defer a.c.Close()
	if got := a.c.RemoteAddr().(*net.TCPAddr).IP.String(); got != l.ClientIP.String() {
		t.Errorf("replica sees peer %s, want %s", got, l.ClientIP)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	a.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(a.c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("replica read %q, %v", buf, err)
	}
	if _, err := a.c.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "pong" {
		t.Fatalf("client read %q, %v", buf, err)
	}
}

func TestDialThroughBridge(t *testing.T) {
	l := newLab(t, Options{Replicas: 2})
	addr := net.JoinHostPort(l.VIP.String(), "7000")
	ln0, err := l.Listen(l.ReplicaNS[0], "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln0.Close()
	ln1, err := l.Listen(l.ReplicaNS[1], "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln1.Close()

	// Without a box program nothing connects: ports have no IP, no bridge.
	if c, err := l.Dial(l.ClientNS, "tcp", addr, 300*time.Millisecond); err == nil {
		c.Close()
		t.Fatal("client reached the VIP with nothing running in the box")
	}

	undo := bridge(t, l, "rp0")
	roundTrip(t, l, ln0, ln1)
	undo()

	if c, err := l.Dial(l.ClientNS, "tcp", addr, 300*time.Millisecond); err == nil {
		c.Close()
		t.Fatal("client still reaches the VIP after the bridge was removed")
	}
}

func TestDeleteAndRecreateReplica(t *testing.T) {
	l := newLab(t, Options{Replicas: 3})
	ns := l.ReplicaNS[1]
	before, err := l.Interface(l.BoxNS, "rp1")
	if err != nil {
		t.Fatal(err)
	}
	p, err := l.Start(ns, "sleep", "300")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.DeleteNS(ns); err != nil {
		t.Fatal(err)
	}
	if netnsList(t)[ns] {
		t.Errorf("%s still listed", ns)
	}
	if _, err := l.Interface(l.BoxNS, "rp1"); err == nil {
		t.Error("box port rp1 survived its replica's deletion")
	}
	if !p.Exited() {
		t.Error("process in the deleted namespace still runs")
	}
	if _, err := l.Interface(l.BoxNS, "rp0"); err != nil {
		t.Errorf("unrelated port rp0 gone: %v", err)
	}
	if err := l.DeleteNS(ns); err == nil {
		t.Error("deleting twice succeeded")
	}
	if err := l.DeleteNS("ftbnotours-r1"); err == nil {
		t.Error("DeleteNS accepted a foreign namespace")
	}

	if err := l.RecreateReplica(1); err != nil {
		t.Fatal(err)
	}
	if !netnsList(t)[ns] {
		t.Fatalf("%s not recreated", ns)
	}
	wantAddrs(t, ns, "eth0", "198.18.0.10/24")
	wantAddrs(t, l.BoxNS, "rp1")
	after, err := l.Interface(l.BoxNS, "rp1")
	if err != nil {
		t.Fatal(err)
	}
	if after.Index == before.Index {
		t.Errorf("rp1 kept ifindex %d; expected a new port", after.Index)
	}
	if v := sysctlCLI(t, l, ns, "net.ipv4.tcp_timestamps"); v != "2" {
		t.Errorf("recreated replica tcp_timestamps = %s", v)
	}
	if v := sysctlCLI(t, l, ns, "net.ipv4.tcp_rmem"); v != "4096 65536 1048576" {
		t.Errorf("recreated replica tcp_rmem = %s", v)
	}
	if v := sysctlCLI(t, l, l.BoxNS, "net.ipv6.conf.rp1.disable_ipv6"); v != "1" {
		t.Errorf("recreated rp1 disable_ipv6 = %s", v)
	}
	// The new wiring carries traffic.
	addr := net.JoinHostPort(l.VIP.String(), "7001")
	ln, err := l.Listen(ns, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	undo := bridge(t, l, "rp1")
	defer undo()
	roundTrip(t, l, ln)

	// Recreating a replica that exists rebuilds it too.
	if err := l.RecreateReplica(2); err != nil {
		t.Fatal(err)
	}
	if v := sysctlCLI(t, l, l.ReplicaNS[2], "net.ipv4.tcp_sack"); v != "0" {
		t.Errorf("rebuilt replica 2 tcp_sack = %s", v)
	}
	if err := l.RecreateReplica(3); err == nil {
		t.Error("RecreateReplica(3) of a 3-replica lab succeeded")
	}
}

func TestSetLink(t *testing.T) {
	l := newLab(t, Options{Replicas: 1})
	if err := l.SetLink(l.BoxNS, "rp0", false); err != nil {
		t.Fatal(err)
	}
	if in := addrInfo(t, l.BoxNS, "rp0"); hasFlag(in, "UP") {
		t.Errorf("rp0 still up: %v", in.Flags)
	}
	// The peer loses its carrier.
	if in := addrInfo(t, l.ReplicaNS[0], "eth0"); in.OperState == "UP" {
		t.Errorf("replica eth0 operstate %s with its box port down", in.OperState)
	}
	if err := l.SetLink(l.BoxNS, "rp0", true); err != nil {
		t.Fatal(err)
	}
	if in := addrInfo(t, l.BoxNS, "rp0"); !hasFlag(in, "UP") {
		t.Errorf("rp0 not up again: %v", in.Flags)
	}
	if err := l.SetLink(l.BoxNS, "nosuchdev", true); err == nil {
		t.Error("SetLink on a missing device succeeded")
	}
}

func TestNetem(t *testing.T) {
	l := newLab(t, Options{Replicas: 1})
	// Clearing with nothing installed is fine, twice.
	for i := 0; i < 2; i++ {
		if err := l.ClearNetem(l.BoxNS, "rp0"); err != nil {
			t.Fatalf("ClearNetem on default qdisc: %v", err)
		}
	}
	if err := l.ClearNetem(l.BoxNS, "nosuchdev"); err == nil {
		t.Error("ClearNetem on a missing device succeeded")
	}
	err := l.Netem(l.BoxNS, "rp0", "delay", "50ms")
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skipf("kernel has no netem qdisc (CONFIG_NET_SCH_NETEM): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	out, err := runOut(execTC("-n", l.BoxNS, "qdisc", "show", "dev", "rp0"))
	if err != nil || !strings.Contains(out, "netem") || !strings.Contains(out, "delay 50ms") {
		t.Fatalf("qdisc after Netem: %q %v", out, err)
	}
	if err := l.ClearNetem(l.BoxNS, "rp0"); err != nil {
		t.Fatal(err)
	}
	out, err = runOut(execTC("-n", l.BoxNS, "qdisc", "show", "dev", "rp0"))
	if err != nil || strings.Contains(out, "netem") {
		t.Fatalf("qdisc after ClearNetem: %q %v", out, err)
	}
}
