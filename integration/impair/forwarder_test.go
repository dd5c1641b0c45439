//go:build linux

package impair

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/link"
	"golang.org/x/sys/unix"
)

// netns is a network namespace made for one test and deleted after it.
type netns string

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("forwarder tests create network namespaces and AF_PACKET sockets: need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("forwarder tests need iproute2's ip command")
	}
}

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func newNetns(t *testing.T, tag string) netns {
	t.Helper()
	n := netns(fmt.Sprintf("ftbimp-%d-%s-%06x", os.Getpid(), tag, rand.Uint32()&0xffffff))
	ipCmd(t, "netns", "add", string(n))
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", string(n)).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", n, err, out)
		}
	})
	// Silent links: every frame seen is one the test sent.
	n.do(t, func() error {
		for _, k := range []string{"all", "default"} {
			if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+k+"/disable_ipv6", []byte("1"), 0); err != nil {
				return err
			}
		}
		return nil
	})
	return n
}

// do runs f on a thread inside the namespace; the thread is discarded
// afterwards (never unlocked), so no other goroutine inherits the namespace.
func (n netns) do(t *testing.T, f func() error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open("/run/netns/"+string(n), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		errc <- f()
	}()
	if err := <-errc; err != nil {
		t.Fatalf("in %s: %v", n, err)
	}
}

// vethBetween links devA in a with devB in b, both up.
func vethBetween(t *testing.T, a netns, devA string, b netns, devB string) {
	t.Helper()
	tmpA := fmt.Sprintf("fi%07xa", rand.Uint32()&0xfffffff)
	tmpB := tmpA[:len(tmpA)-1] + "b"
	ipCmd(t, "link", "add", tmpA, "type", "veth", "peer", "name", tmpB)
	ipCmd(t, "link", "set", tmpA, "netns", string(a), "name", devA)
	ipCmd(t, "link", "set", tmpB, "netns", string(b), "name", devB)
	ipCmd(t, "-n", string(a), "link", "set", devA, "up")
	ipCmd(t, "-n", string(b), "link", "set", devB, "up")
}

// waitUp waits (bounded) until dev in n is operationally up. Carrier alone
// is not enough: the kernel attaches the device's real qdisc from its
// linkwatch work, later under load, and until then every frame sent is
// dropped by noop_qdisc while the sender is told it succeeded.
func waitUp(t *testing.T, n netns, dev string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := exec.Command("ip", "-n", string(n), "-o", "link", "show", "dev", dev).CombinedOutput()
		if err != nil {
			t.Fatalf("ip link show %s: %v: %s", dev, err, out)
		}
		if strings.Contains(string(out), "state UP") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/%s not up after 10s: %s", n, dev, out)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// rig is host ns ─ fwd ns (forwarder) ─ box ns, with plain ports at both
// ends for sending and receiving test frames.
type rig struct {
	host, fwd, box netns
	hp, bp         *link.Port
	f              *Forwarder
	done           chan error
	cancel         context.CancelFunc
}

func newRig(t *testing.T) *rig {
	needRoot(t)
	r := &rig{host: newNetns(t, "h"), fwd: newNetns(t, "f"), box: newNetns(t, "b")}
	vethBetween(t, r.host, "eth0", r.fwd, "tohost")
	vethBetween(t, r.fwd, "tobox", r.box, "up0")
	for _, e := range []struct {
		n   netns
		dev string
	}{{r.host, "eth0"}, {r.fwd, "tohost"}, {r.fwd, "tobox"}, {r.box, "up0"}} {
		waitUp(t, e.n, e.dev)
	}
	r.fwd.do(t, func() (err error) { r.f, err = New("tohost", "tobox"); return err })
	r.host.do(t, func() (err error) { r.hp, err = link.Open("eth0", &link.Options{Promisc: true}); return err })
	r.box.do(t, func() (err error) { r.bp, err = link.Open("up0", &link.Options{Promisc: true}); return err })
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan error, 1)
	go func() { r.done <- r.f.Run(ctx) }()
	t.Cleanup(func() {
		r.stop(t)
		r.hp.Close()
		r.bp.Close()
	})
	return r
}

// stop ends Run (bounded) and closes the forwarder; it returns Run's error.
func (r *rig) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	var err error
	select {
	case err = <-r.done:
		r.done <- err // later stops see the same result
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	r.f.Close()
	return err
}

const etherTest = 0x88B5

// testFrame is a broadcast frame of the local experimental EtherType
// carrying tag and id.
func testFrame(tag byte, id uint32, size int) []byte {
	f := make([]byte, size)
	for i := range 6 {
		f[i] = 0xff
	}
	copy(f[6:12], []byte{2, 0, 0, 0, 0, tag})
	binary.BigEndian.PutUint16(f[12:], etherTest)
	f[14] = tag
	binary.BigEndian.PutUint32(f[15:], id)
	for i := 19; i < size; i++ {
		f[i] = byte(i) ^ byte(id)
	}
	return f
}

// send writes n frames tagged tag from p, pacing so no socket overflows.
func send(t *testing.T, p *link.Port, tag byte, n int) {
	t.Helper()
	for i := range n {
		if err := p.Write(testFrame(tag, uint32(i), 100)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		if i%32 == 31 {
			time.Sleep(time.Millisecond)
		}
	}
}

// recv collects frames tagged tag from p until want arrived or quiet has
// passed without one; it checks that each is intact and returns the ids.
func recv(t *testing.T, p *link.Port, tag byte, want int, quiet time.Duration) []uint32 {
	t.Helper()
	poller, err := link.NewPoller()
	if err != nil {
		t.Fatal(err)
	}
	defer poller.Close()
	bufs := make([][]byte, 16)
	for i := range bufs {
		bufs[i] = make([]byte, 2048)
	}
	sizes := make([]int, len(bufs))
	var ids []uint32
	last := time.Now()
	for len(ids) < want && time.Since(last) < quiet {
		ready := []bool{false}
		if _, err := poller.Wait([]int{p.Fd()}, ready, 10*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		n, err := p.ReadBatch(bufs, sizes)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			f := bufs[i][:sizes[i]]
			if len(f) < 19 || binary.BigEndian.Uint16(f[12:]) != etherTest || f[14] != tag {
				continue
			}
			id := binary.BigEndian.Uint32(f[15:])
			if string(f) != string(testFrame(tag, id, len(f))) || len(f) != 100 {
				t.Errorf("frame %d altered", id)
			}
			ids = append(ids, id)
			last = time.Now()
		}
	}
	return ids
}

// enough is the share of test frames that must arrive: the kernel's
// per-CPU receive backlog is shared with everything else on the machine
// and drops silently when other tests flood it, so exact delivery is
// asserted on the forwarder's own counters instead.
func enough(n int) int { return n * 9 / 10 }

func TestForwarderBothWaysAndLiveSpecs(t *testing.T) {
	r := newRig(t)
	send(t, r.hp, 1, 200)
	if ids := recv(t, r.bp, 1, 200, time.Second); len(ids) < enough(200) {
		t.Fatalf("to box: %d of 200 frames; %+v", len(ids), r.f.Stats())
	}
	send(t, r.bp, 2, 200)
	if ids := recv(t, r.hp, 2, 200, time.Second); len(ids) < enough(200) {
		t.Fatalf("from box: %d of 200 frames; %+v", len(ids), r.f.Stats())
	}
	before := r.f.Stats()
	for _, c := range []Counters{before.ToBox, before.FromBox} {
		if c.Received == 0 || c.Forwarded != c.Received || c.Errors != 0 {
			t.Errorf("clear forwarder counters %+v: want all forwarded", c)
		}
	}

	// Loss on one direction only, set while running.
	if err := r.f.Set(Spec{Dir: ToBox, Loss: 1}); err != nil {
		t.Fatal(err)
	}
	send(t, r.hp, 3, 50)
	send(t, r.bp, 4, 50)
	if ids := recv(t, r.bp, 3, 1, 200*time.Millisecond); len(ids) != 0 {
		t.Errorf("%d frames crossed a 100%% loss direction", len(ids))
	}
	if ids := recv(t, r.hp, 4, 50, time.Second); len(ids) < enough(50) {
		t.Errorf("the other direction carried %d of 50", len(ids))
	}
	st := r.f.Stats()
	toBox := st.ToBox.Sub(before.ToBox)
	if toBox.Lost == 0 || toBox.Lost != toBox.Received || toBox.Forwarded != 0 || st.FromBox.Lost != 0 ||
		st.Specs[0].Loss != 1 || st.Specs[1].Loss != 0 {
		t.Errorf("stats %+v (to box during loss: %+v)", st, toBox)
	}

	// A delay that the receiver can see, then cleared.
	if err := r.f.Set(Spec{Delay: 30 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	send(t, r.hp, 5, 5)
	if ids := recv(t, r.bp, 5, 1, time.Second); len(ids) == 0 || time.Since(start) < 25*time.Millisecond {
		t.Errorf("first delayed frame: %d after %v", len(ids), time.Since(start))
	}
	if err := r.f.Set(Spec{}); err != nil {
		t.Fatal(err)
	}
	if err := r.f.Set(Spec{Loss: 3}); err == nil {
		t.Error("Set accepted loss 3")
	}
	if st := r.f.Stats(); !st.Specs[0].IsZero() || !st.Specs[1].IsZero() {
		t.Errorf("specs after clearing: %+v", st.Specs)
	}
	if err := r.f.Run(context.Background()); err == nil {
		t.Error("second Run succeeded")
	}
}

func TestForwarderLinkDownAndGone(t *testing.T) {
	r := newRig(t)
	// The box side goes down: frames toward it are counted as errors,
	// and the forwarder keeps running.
	ipCmd(t, "-n", string(r.fwd), "link", "set", "tobox", "down")
	send(t, r.hp, 1, 20)
	deadline := time.Now().Add(2 * time.Second)
	for r.f.Stats().ToBox.Errors < 20 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := r.f.Stats().ToBox; st.Errors != 20 || st.Received != 20 {
		t.Errorf("with tobox down: %+v, want 20 received and 20 errors", st)
	}
	ipCmd(t, "-n", string(r.fwd), "link", "set", "tobox", "up")
	// Carrier takes a moment to come back; retry until frames pass.
	var got int
	for i := 0; i < 50 && got == 0; i++ {
		send(t, r.hp, 2, 5)
		got = len(recv(t, r.bp, 2, 5, 50*time.Millisecond))
	}
	if got == 0 {
		t.Fatal("no frames after tobox came back up")
	}
	select {
	case err := <-r.done:
		t.Fatalf("Run ended on a link flap: %v", err)
	default:
	}

	// The host side disappears: Run ends with ErrPortGone.
	ipCmd(t, "-n", string(r.host), "link", "del", "eth0")
	// No traffic follows: the reader must notice the deletion by itself.
	select {
	case err := <-r.done:
		r.done <- err
		if !errors.Is(err, link.ErrPortGone) {
			t.Errorf("Run = %v, want ErrPortGone", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run kept going after its interface was deleted")
	}
	if err := r.f.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := r.f.Set(Spec{}); err == nil {
		t.Error("Set after Close succeeded")
	}
}

func TestNewFailsOnMissingInterface(t *testing.T) {
	needRoot(t)
	n := newNetns(t, "m")
	n.do(t, func() error {
		if f, err := New("nosuch0", "lo"); err == nil {
			f.Close()
			return errors.New("New accepted a missing interface")
		}
		return nil
	})
}
