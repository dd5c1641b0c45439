package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/ftbridge/ftbridge/integration/impair"
)

const (
	// impHostDev and impBoxDev are the two interfaces of an impairment
	// namespace: one faces the client or replica, the other the box.
	impHostDev = "tohost"
	impBoxDev  = "tobox"
	// impReady bounds the wait for a forwarder's control socket and for
	// the link's interfaces to come up.
	impReady = 10 * time.Second
	// sunPathMax is the room for a unix socket path (sun_path minus NUL).
	sunPathMax = 107
)

// impPoint is the impairment point on one link: a namespace between the
// host's eth0 and the box port, with a forwarder process in it.
type impPoint struct {
	link   string // the box port it sits in front of: up0, rp<i>
	ns     string // <lab>-imp-<link>
	peerNS string // the client's or replica's namespace
	ctl    string // the forwarder's control socket
	proc   *Proc  // nil until started; replaced when the link is rebuilt
	// toBox and fromBox are the specs last set, re-applied when the link is
	// rebuilt by RecreateReplica.
	toBox, fromBox impair.Spec
}

// setupImpairs validates opts.Impaired and records an impairment point per
// link; wiring happens as the links are built. Caller holds l.mu.
func (l *Lab) setupImpairs() error {
	if len(l.opts.Impaired) == 0 {
		return nil
	}
	peers := map[string]string{l.Uplink: l.ClientNS}
	for i, p := range l.ReplicaPorts {
		peers[p] = l.ReplicaNS[i]
	}
	l.imps = map[string]*impPoint{}
	for _, link := range l.opts.Impaired {
		peer, ok := peers[link]
		if !ok {
			return fmt.Errorf("lab: Options.Impaired: no link %q (want %s or one of %s)", link, l.Uplink, strings.Join(l.ReplicaPorts, ", "))
		}
		if l.imps[link] != nil {
			return fmt.Errorf("lab: Options.Impaired: link %q listed twice", link)
		}
		ctl := filepath.Join(l.dir, "impair-"+link+".sock")
		if len(ctl) > sunPathMax {
			return fmt.Errorf("lab: control socket path %s too long for a unix socket; use a shorter TMPDIR", ctl)
		}
		l.imps[link] = &impPoint{
			link: link, ns: l.Name + "-imp-" + link, peerNS: peer, ctl: ctl,
			toBox: impair.Spec{Dir: impair.ToBox}, fromBox: impair.Spec{Dir: impair.FromBox},
		}
	}
	bin := l.opts.ImpairBin
	if bin == "" {
		var err error
		if bin, err = impair.Build(l.dir); err != nil {
			return fmt.Errorf("lab: building the impair command (or set Options.ImpairBin): %w", err)
		}
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		return fmt.Errorf("lab: Options.ImpairBin: %w", err)
	}
	if _, err := exec.LookPath(abs); err != nil {
		return fmt.Errorf("lab: Options.ImpairBin: %w", err)
	}
	l.impairBin = abs
	return nil
}

// impNamespaces lists the impairment namespaces, sorted by link.
func (l *Lab) impNamespaces() []string {
	var ns []string
	for _, ip := range l.imps {
		ns = append(ns, ip.ns)
	}
	sort.Strings(ns)
	return ns
}

// wire joins peerNS's eth0 to the box port: directly with one veth pair, or
// through the link's impairment namespace with two. The interfaces are
// left down. Caller holds l.mu.
func (l *Lab) wire(peerNS, port string) error {
	ip := l.imps[port]
	if ip == nil {
		return l.addVeth(peerNS, hostDev, l.BoxNS, port)
	}
	if err := l.addNS(ip.ns); err != nil {
		return err
	}
	// The forwarder's interfaces must not add frames of their own (IPv6
	// DAD, router and multicast listener solicitations) to the link.
	for _, k := range []string{"net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.default.disable_ipv6"} {
		if err := setSysctl(ip.ns, k, "1"); err != nil {
			return err
		}
	}
	if err := l.addVeth(peerNS, hostDev, ip.ns, impHostDev); err != nil {
		return err
	}
	if err := l.addVeth(ip.ns, impBoxDev, l.BoxNS, port); err != nil {
		return err
	}
	return l.ipAll(
		[]string{"-n", ip.ns, "link", "set", impHostDev, "up"},
		[]string{"-n", ip.ns, "link", "set", impBoxDev, "up"},
	)
}

// startImpair starts the forwarder of the link in front of port, if it has
// an impairment point, waits until it answers on its control socket, and
// re-applies the specs last set. Caller holds l.mu.
func (l *Lab) startImpair(port string) error {
	ip := l.imps[port]
	if ip == nil {
		return nil
	}
	p, err := l.start(ip.ns, l.impairBin, "-host", impHostDev, "-box", impBoxDev, "-ctl", ip.ctl)
	if err != nil {
		return err
	}
	ip.proc = p
	ctl := impair.Control{Path: ip.ctl, Timeout: time.Second}
	deadline := time.Now().Add(impReady)
	for {
		if p.Exited() {
			return fmt.Errorf("lab: impair forwarder for %s exited at start: %s", port, strings.TrimSpace(p.Log()))
		}
		if _, err = ctl.Stats(); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("lab: impair forwarder for %s not ready after %v: %w", port, impReady, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, s := range []impair.Spec{ip.toBox, ip.fromBox} {
		if !s.IsZero() {
			if err := ctl.Set(s); err != nil {
				return fmt.Errorf("lab: re-applying %v on %s: %w", s, port, err)
			}
		}
	}
	// Until the kernel's linkwatch work has activated an interface (later
	// under load), its noop qdisc drops every frame while telling the
	// sender it succeeded: the forwarder would lose the first frames
	// without knowing. Operstate UP is set in the same step.
	for _, e := range [][2]string{{ip.peerNS, hostDev}, {ip.ns, impHostDev}, {ip.ns, impBoxDev}, {l.BoxNS, port}} {
		if err := l.waitOperUp(e[0], e[1], deadline); err != nil {
			return err
		}
	}
	return nil
}

// waitOperUp waits until dev in ns is operationally up, or deadline.
func (l *Lab) waitOperUp(ns, dev string, deadline time.Time) error {
	for {
		out, err := l.ipOut("-n", ns, "-o", "link", "show", "dev", dev)
		if err != nil {
			return err
		}
		if strings.Contains(out, "state UP") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("lab: %s/%s not up: %s", ns, dev, strings.TrimSpace(out))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// dropImpairs deletes the impairment namespaces whose link ends in ns (all
// of them for the box), so that deleting a host takes its box port away as
// it does without an impairment point. Caller holds l.mu.
func (l *Lab) dropImpairs(ns string) error {
	var errs []error
	for _, ip := range l.imps {
		if (ns == ip.peerNS || ns == l.BoxNS) && l.live[ip.ns] {
			errs = append(errs, l.deleteNS(ip.ns))
		}
	}
	return errors.Join(errs...)
}

// mirrorLink passes an administrative up/down of a link's end through its
// impairment point, so that the far end gains or loses carrier as it would
// on a direct veth. It returns the impairment namespace's interface to set,
// if any.
func (l *Lab) mirrorLink(ns, dev string) (string, string, bool) {
	for _, ip := range l.imps {
		switch {
		case ns == ip.peerNS && dev == hostDev:
			return ip.ns, impBoxDev, true
		case ns == l.BoxNS && dev == ip.link:
			return ip.ns, impHostDev, true
		}
	}
	return "", "", false
}

// impPoint returns the impairment point of link. Caller holds l.mu.
func (l *Lab) impPoint(link string) (*impPoint, error) {
	if l.closed {
		return nil, errors.New("lab: closed")
	}
	ip := l.imps[link]
	if ip == nil {
		return nil, fmt.Errorf("lab: link %q has no impairment point (list it in Options.Impaired)", link)
	}
	if ip.proc == nil || ip.proc.Exited() || !l.live[ip.ns] {
		return nil, fmt.Errorf("lab: the impair forwarder of link %s is not running (its link was deleted?)", link)
	}
	return ip, nil
}

// Impair sets the impairment of link, named by its box port (Uplink or one
// of ReplicaPorts), which must be listed in Options.Impaired. spec.Dir
// selects the direction(s) set, impair.ToBox being client or replica → box;
// a direction not selected keeps its impairment. When Impair returns, the
// forwarder has taken the spec: every frame it reads from then on is
// shaped by it, while frames already delayed keep their times. Impair
// with the zero Spec (Dir Both) clears the link, like ClearImpair.
func (l *Lab) Impair(link string, spec impair.Spec) error {
	if err := spec.Validate(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	ip, err := l.impPoint(link)
	if err != nil {
		return err
	}
	if err := (impair.Control{Path: ip.ctl}).Set(spec); err != nil {
		return fmt.Errorf("lab: impair %s: %w", link, err)
	}
	if spec.Dir != impair.FromBox {
		ip.toBox = spec
		ip.toBox.Dir = impair.ToBox
	}
	if spec.Dir != impair.ToBox {
		ip.fromBox = spec
		ip.fromBox.Dir = impair.FromBox
	}
	return nil
}

// ClearImpair removes every impairment from link, both directions.
func (l *Lab) ClearImpair(link string) error {
	return l.Impair(link, impair.Spec{})
}

// ImpairStats returns the counters of link's forwarder (per direction,
// since its forwarder started: RecreateReplica starts them again) and the
// specs in force, so that a test can assert the impairment really happened.
func (l *Lab) ImpairStats(link string) (impair.Stats, error) {
	l.mu.Lock()
	ip, err := l.impPoint(link)
	var ctl string
	if err == nil {
		ctl = ip.ctl
	}
	l.mu.Unlock()
	if err != nil {
		return impair.Stats{}, err
	}
	st, err := impair.Control{Path: ctl}.Stats()
	if err != nil {
		return st, fmt.Errorf("lab: impair stats %s: %w", link, err)
	}
	return st, nil
}

// impLog returns the tail of link's forwarder log, for failure messages.
func (l *Lab) impLog(link string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ip := l.imps[link]; ip != nil && ip.proc != nil {
		b, _ := os.ReadFile(ip.proc.LogPath)
		return string(b)
	}
	return ""
}
