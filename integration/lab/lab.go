package lab

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Fixed lab addressing. Everything lives in 198.18.0.0/15 (RFC 2544
// benchmarking space), so a lab can never collide with a real network.
var (
	clientIP = netip.MustParseAddr("198.18.0.1")
	vip      = netip.MustParseAddr("198.18.0.10")
)

const (
	prefixLen   = 24
	maxReplicas = 8
	// uplinkName is the box's client-side port.
	uplinkName = "up0"
	// hostDev is the single data interface of the client and replica namespaces.
	hostDev = "eth0"
	// replica1RMem gives replica 1 a smaller maximum receive buffer than the
	// default, hence another window scale in its SYN-ACK.
	replica1RMem = "4096 65536 1048576"
	// keepEnv keeps Dir after Close for post-mortems.
	keepEnv = "FTB_KEEP_LAB"
)

// testHookReplicaAdded, when set (by tests only), runs after New has added
// replica i; an error makes New fail there, exercising its teardown.
var testHookReplicaAdded func(l *Lab, i int) error

// Options configures New.
type Options struct {
	// Replicas is the number of replica namespaces, 1..8; 0 means 2.
	Replicas int
	// NoVary leaves every replica at the kernel's default TCP sysctls instead
	// of making replicas 1 and 2 differ (see the package documentation).
	NoVary bool
	// Impaired lists the links, named by their box port (Uplink "up0" or a
	// replica port "rp<i>"), that get an impairment point: a namespace
	// <Name>-imp-<port> between the host's eth0 and the box port, whose
	// forwarder process Impair controls (see the package documentation).
	// Unlisted links are plain veth pairs.
	Impaired []string
	// ImpairBin is the impair command (integration/impair/cmd/impair) the
	// impairment points run. Empty means New builds it into Dir with the go
	// tool (about half a second with a warm build cache); tests that build
	// many labs build it once with impair.Build and set this.
	ImpairBin string
}

// Lab is one built topology. Its exported fields are read-only descriptions;
// its methods are safe for concurrent use.
type Lab struct {
	// Name is the lab's unique prefix ("ftb" + 6 random hex digits); every
	// namespace and temporary interface of the lab starts with it.
	Name string
	// ClientNS is the client namespace; its eth0 has ClientIP/24.
	ClientNS string
	// BoxNS is the appliance's namespace holding Uplink and ReplicaPorts.
	BoxNS string
	// ReplicaNS are the replica namespaces; each one's eth0 has VIP/24.
	ReplicaNS []string
	// ClientIP is the client's address, 198.18.0.1.
	ClientIP netip.Addr
	// VIP is the service address every replica carries, 198.18.0.10.
	VIP netip.Addr
	// Uplink is the box's client-side port ("up0", in BoxNS).
	Uplink string
	// ReplicaPorts are the box's replica-side ports ("rp0", "rp1", ...,
	// in BoxNS); ReplicaPorts[i] is wired to ReplicaNS[i].
	ReplicaPorts []string

	opts Options
	dir  string

	mu       sync.Mutex
	closed   bool
	live     map[string]bool // namespaces this lab created that still exist
	tmpLinks map[string]bool // root-namespace veth names not yet moved away
	procs    []*Proc
	seq      int // makes temporary link names and log names unique

	// imps are the impairment points by link (box port); the map is
	// filled by New and never changes afterwards.
	imps      map[string]*impPoint
	impairBin string // absolute path of the impair command
}

// New builds a lab. On any error it tears down whatever it had made and
// returns the error.
func New(opts Options) (_ *Lab, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("lab: building namespaces needs root")
	}
	n := opts.Replicas
	if n == 0 {
		n = 2
	}
	if n < 1 || n > maxReplicas {
		return nil, fmt.Errorf("lab: %d replicas, want 1..%d", n, maxReplicas)
	}
	opts.Replicas = n
	for _, tool := range []string{"ip", "tc"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("lab: %s (iproute2) not found: %w", tool, err)
		}
	}
	var rnd [3]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("lab: random name: %w", err)
	}
	name := "ftb" + hex.EncodeToString(rnd[:])
	dir, err := os.MkdirTemp("", "ftblab-"+name+"-")
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	l := &Lab{
		Name:     name,
		ClientNS: name + "-cl",
		BoxNS:    name + "-box",
		ClientIP: clientIP,
		VIP:      vip,
		Uplink:   uplinkName,
		opts:     opts,
		dir:      dir,
		live:     map[string]bool{},
		tmpLinks: map[string]bool{},
	}
	for i := 0; i < n; i++ {
		l.ReplicaNS = append(l.ReplicaNS, fmt.Sprintf("%s-r%d", name, i))
		l.ReplicaPorts = append(l.ReplicaPorts, fmt.Sprintf("rp%d", i))
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, l.Close())
		}
	}()

	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.setupImpairs(); err != nil {
		return nil, err
	}
	if err := l.addNS(l.ClientNS); err != nil {
		return nil, err
	}
	if err := l.addNS(l.BoxNS); err != nil {
		return nil, err
	}
	// Links moved into the box namespace inherit "default", so they never
	// get an IPv6 link-local address or send router solicitations: the box
	// ports must carry nothing but what the dataplane itself sends.
	for _, k := range []string{"net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.default.disable_ipv6"} {
		if err := setSysctl(l.BoxNS, k, "1"); err != nil {
			return nil, err
		}
	}
	if err := l.wire(l.ClientNS, l.Uplink); err != nil {
		return nil, err
	}
	if err := l.ipAll(
		[]string{"-n", l.ClientNS, "addr", "add", prefix(l.ClientIP), "dev", hostDev},
		[]string{"-n", l.ClientNS, "link", "set", hostDev, "up"},
	); err != nil {
		return nil, err
	}
	if err := l.upBoxPort(l.Uplink); err != nil {
		return nil, err
	}
	if err := l.startImpair(l.Uplink); err != nil {
		return nil, err
	}
	for i := range l.ReplicaNS {
		if err := l.addReplica(i); err != nil {
			return nil, err
		}
		if testHookReplicaAdded != nil {
			if err := testHookReplicaAdded(l, i); err != nil {
				return nil, err
			}
		}
	}
	return l, nil
}

// Dir is a temporary directory owned by the lab for logs and configuration
// files. Close removes it unless the environment has FTB_KEEP_LAB=1.
func (l *Lab) Dir() string { return l.dir }

// Close kills every process the lab started that is still running
// (SIGKILL to its process group, then wait), deletes every namespace the lab
// created and any temporary interface left in the root namespace, and
// removes Dir. It is idempotent; later calls return nil.
func (l *Lab) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	var errs []error
	for _, p := range l.procs {
		if err := p.Kill(); err != nil {
			errs = append(errs, err)
		}
	}
	// Replicas first, then impairment points, box last but one, client
	// last: the order does not matter to the kernel but makes partial
	// failures easier to read.
	order := append(append(append([]string{}, l.ReplicaNS...), l.impNamespaces()...), l.BoxNS, l.ClientNS)
	for _, ns := range order {
		if l.live[ns] {
			if err := l.deleteNS(ns); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for dev := range l.tmpLinks {
		if err := l.ip("link", "del", dev); err != nil {
			errs = append(errs, err)
		}
		delete(l.tmpLinks, dev)
	}
	if os.Getenv(keepEnv) != "1" {
		if err := os.RemoveAll(l.dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// DeleteNS deletes one of the lab's namespaces the way a host dies: the
// lab's processes in it are killed, its interfaces are deleted (which
// destroys the veth pairs, so the peer port in the box disappears at once
// even if a socket still pins the namespace), then the namespace itself.
// An impaired link ending in ns loses its impairment point too, so the box
// port still disappears; RecreateReplica rebuilds it.
func (l *Lab) DeleteNS(ns string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usable(ns); err != nil {
		return err
	}
	if !l.live[ns] {
		return fmt.Errorf("lab: namespace %s is already deleted", ns)
	}
	return errors.Join(l.deleteNS(ns), l.dropImpairs(ns))
}

// RecreateReplica rebuilds replica i's namespace and veth pair after
// DeleteNS: same namespace name, same box port name, same address and
// sysctls (the box port gets a new ifindex and MAC, as a replaced host's
// port would). If the namespace still exists it is deleted first. An
// impaired link gets a new impairment point with the specs last set (and
// its counters start from zero).
func (l *Lab) RecreateReplica(i int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errors.New("lab: closed")
	}
	if i < 0 || i >= len(l.ReplicaNS) {
		return fmt.Errorf("lab: no replica %d", i)
	}
	ns, port := l.ReplicaNS[i], l.ReplicaPorts[i]
	if l.live[ns] {
		if err := l.deleteNS(ns); err != nil {
			return err
		}
	}
	if ip := l.imps[port]; ip != nil && l.live[ip.ns] {
		if err := l.deleteNS(ip.ns); err != nil {
			return err
		}
	}
	// The port normally vanished synchronously in deleteNS; the bounded wait
	// covers a kernel that tears veths down asynchronously.
	deadline := time.Now().Add(5 * time.Second)
	for l.ip("-n", l.BoxNS, "link", "show", "dev", port) == nil {
		if time.Now().After(deadline) {
			return fmt.Errorf("lab: box port %s still present after deleting %s", port, ns)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return l.addReplica(i)
}

// addReplica creates replica i's namespace, its sysctls and its wiring.
// Caller holds l.mu.
func (l *Lab) addReplica(i int) error {
	ns, port := l.ReplicaNS[i], l.ReplicaPorts[i]
	if err := l.addNS(ns); err != nil {
		return err
	}
	if !l.opts.NoVary {
		for _, kv := range replicaSysctls(i) {
			if err := setSysctl(ns, kv[0], kv[1]); err != nil {
				return err
			}
		}
	}
	if err := l.wire(ns, port); err != nil {
		return err
	}
	if err := l.ipAll(
		[]string{"-n", ns, "addr", "add", prefix(l.VIP), "dev", hostDev},
		[]string{"-n", ns, "link", "set", hostDev, "up"},
	); err != nil {
		return err
	}
	if err := l.upBoxPort(port); err != nil {
		return err
	}
	return l.startImpair(port)
}

// replicaSysctls are the per-replica differences that stand in for separate
// hosts (failover contract, "Linux behaviours that will bite").
func replicaSysctls(i int) [][2]string {
	switch i {
	case 1:
		return [][2]string{
			{"net.ipv4.tcp_timestamps", "2"},
			{"net.ipv4.tcp_rmem", replica1RMem},
		}
	case 2:
		return [][2]string{{"net.ipv4.tcp_sack", "0"}}
	}
	return nil
}

// upBoxPort disables IPv6 on a box port before bringing it up, so the
// kernel never emits DAD/RS/MLD frames on it. Caller holds l.mu.
func (l *Lab) upBoxPort(dev string) error {
	if err := setSysctl(l.BoxNS, "net.ipv6.conf."+dev+".disable_ipv6", "1"); err != nil {
		return err
	}
	return l.ip("-n", l.BoxNS, "link", "set", dev, "up")
}

// addNS creates a namespace and brings its loopback up. Caller holds l.mu.
func (l *Lab) addNS(ns string) error {
	if err := l.ip("netns", "add", ns); err != nil {
		return err
	}
	// Recorded only after success: a name that already existed belongs to
	// someone else and must never be deleted by us.
	l.live[ns] = true
	return l.ip("-n", ns, "link", "set", "lo", "up")
}

// addVeth creates a veth pair in the root namespace under unique temporary
// names, moves the ends into nsA and nsB and renames them there. Temporary
// names avoid clashing with root-namespace interfaces (and with other labs)
// while the ends still live there. Caller holds l.mu.
func (l *Lab) addVeth(nsA, devA, nsB, devB string) error {
	l.seq++
	tmpA := fmt.Sprintf("%st%da", l.Name, l.seq)
	tmpB := fmt.Sprintf("%st%db", l.Name, l.seq)
	if err := l.ip("link", "add", tmpA, "type", "veth", "peer", "name", tmpB); err != nil {
		return err
	}
	l.tmpLinks[tmpA], l.tmpLinks[tmpB] = true, true
	if err := l.ip("link", "set", tmpA, "netns", nsA); err != nil {
		return err
	}
	delete(l.tmpLinks, tmpA)
	if err := l.ip("link", "set", tmpB, "netns", nsB); err != nil {
		return err
	}
	delete(l.tmpLinks, tmpB)
	return l.ipAll(
		[]string{"-n", nsA, "link", "set", tmpA, "name", devA},
		[]string{"-n", nsB, "link", "set", tmpB, "name", devB},
	)
}

// deleteNS kills the lab's processes in ns, deletes its non-loopback links
// and the namespace. Caller holds l.mu.
func (l *Lab) deleteNS(ns string) error {
	var errs []error
	for _, p := range l.procs {
		if p.ns == ns {
			if err := p.Kill(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	links, err := l.links(ns)
	if err != nil {
		errs = append(errs, err)
	}
	for _, dev := range links {
		// The peer may already be gone with an earlier deleted namespace.
		if err := l.ip("-n", ns, "link", "del", dev); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
			errs = append(errs, err)
		}
	}
	if err := l.ip("netns", "del", ns); err != nil {
		errs = append(errs, err)
	} else {
		delete(l.live, ns)
	}
	return errors.Join(errs...)
}

// links lists the non-loopback interfaces of ns.
func (l *Lab) links(ns string) ([]string, error) {
	out, err := l.ipOut("-n", ns, "-j", "link", "show")
	if err != nil {
		return nil, err
	}
	var infos []struct {
		IfName   string `json:"ifname"`
		LinkType string `json:"link_type"`
	}
	if err := json.Unmarshal([]byte(out), &infos); err != nil {
		return nil, fmt.Errorf("lab: parsing ip -j link show in %s: %w", ns, err)
	}
	var names []string
	for _, in := range infos {
		if in.LinkType != "loopback" {
			names = append(names, in.IfName)
		}
	}
	return names, nil
}

// Interface returns the interface dev as seen inside ns (index, MAC, MTU,
// flags), e.g. for a dataplane test that needs a box port's ifindex.
func (l *Lab) Interface(ns, dev string) (*net.Interface, error) {
	var ifi *net.Interface
	err := l.InNS(ns, func() error {
		var err error
		ifi, err = net.InterfaceByName(dev)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("lab: interface %s in %s: %w", dev, ns, err)
	}
	return ifi, nil
}

// Sysctl reads a sysctl (dotted name, e.g. "net.ipv4.tcp_sack") in ns.
// Multi-value sysctls come back with their fields separated by single
// spaces.
func (l *Lab) Sysctl(ns, key string) (string, error) {
	var v string
	err := l.InNS(ns, func() error {
		b, err := os.ReadFile(sysctlPath(key))
		v = strings.Join(strings.Fields(string(b)), " ")
		return err
	})
	return v, err
}

// SetSysctl writes a sysctl (dotted name) in ns.
func (l *Lab) SetSysctl(ns, key, value string) error {
	if err := l.usable(ns); err != nil {
		return err
	}
	return setSysctl(ns, key, value)
}

// setSysctl writes /proc/sys from a thread inside ns: net sysctls resolve
// against the calling thread's network namespace, which spares a fork.
func setSysctl(ns, key, value string) error {
	err := inNS(ns, func() error {
		return os.WriteFile(sysctlPath(key), []byte(value), 0)
	})
	if err != nil {
		return fmt.Errorf("lab: sysctl %s=%q in %s: %w", key, value, ns, err)
	}
	return nil
}

func sysctlPath(key string) string {
	return filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
}

func prefix(a netip.Addr) string { return netip.PrefixFrom(a, prefixLen).String() }

// usable rejects namespaces the lab did not create: lab code must never
// touch anyone else's namespace. Callers may hold l.mu (it reads only
// immutable fields, and the imps map, which New fills once).
func (l *Lab) usable(ns string) error {
	if ns == l.ClientNS || ns == l.BoxNS {
		return nil
	}
	for _, r := range l.ReplicaNS {
		if ns == r {
			return nil
		}
	}
	for _, ip := range l.imps {
		if ns == ip.ns {
			return nil
		}
	}
	return fmt.Errorf("lab: %q is not a namespace of lab %s", ns, l.Name)
}

// ip runs the ip command in the root namespace.
func (l *Lab) ip(args ...string) error {
	_, err := l.ipOut(args...)
	return err
}

func (l *Lab) ipAll(cmds ...[]string) error {
	for _, c := range cmds {
		if err := l.ip(c...); err != nil {
			return err
		}
	}
	return nil
}

func (l *Lab) ipOut(args ...string) (string, error) {
	return runOut(exec.Command("ip", args...))
}

// runOut runs cmd and returns its combined output, folding the output into
// the error so failures explain themselves.
func runOut(cmd *exec.Cmd) (string, error) {
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(cmd.Args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}
