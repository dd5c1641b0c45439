//go:build linux

package link

import (
	"encoding/binary"
	"encoding/json"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// nlLink builds one RTM_NEWLINK/RTM_DELLINK message with a name attribute of
// odd length (so padding matters) and, if mac is non-nil, an address.
func nlLink(typ uint16, index int32, flags uint32, name string, mac []byte) []byte {
	ne := binary.NativeEndian
	attr := func(t uint16, v []byte) []byte {
		a := make([]byte, (unix.SizeofRtAttr+len(v)+3)&^3)
		ne.PutUint16(a, uint16(unix.SizeofRtAttr+len(v)))
		ne.PutUint16(a[2:], t)
		copy(a[unix.SizeofRtAttr:], v)
		return a
	}
	body := make([]byte, unix.SizeofIfInfomsg)
	ne.PutUint32(body[4:], uint32(index))
	ne.PutUint32(body[8:], flags)
	body = append(body, attr(unix.IFLA_MTU, []byte{0xdc, 5, 0, 0})...)
	body = append(body, attr(unix.IFLA_IFNAME, append([]byte(name), 0))...)
	if mac != nil {
		body = append(body, attr(unix.IFLA_ADDRESS, mac)...)
	}
	m := make([]byte, unix.SizeofNlMsghdr, unix.SizeofNlMsghdr+len(body))
	ne.PutUint32(m, uint32(unix.SizeofNlMsghdr+len(body)))
	ne.PutUint16(m[4:], typ)
	return append(m, body...)
}

func TestParseLinkMessages(t *testing.T) {
	mac := []byte{2, 1, 2, 3, 4, 5}
	up := uint32(unix.IFF_UP | unix.IFF_RUNNING | unix.IFF_LOWER_UP)
	var b []byte
	b = append(b, nlLink(unix.RTM_NEWLINK, 7, up, "eth1x", mac)...)
	b = append(b, nlLink(unix.RTM_NEWLINK, 8, unix.IFF_UP, "nocarrier", nil)...) // up without carrier
	b = append(b, nlLink(unix.RTM_DELLINK, 7, up, "eth1x", mac)...)
	var evs []LinkEvent
	if _, err := parseLinkMessages(b, 0, false, &evs); err != nil {
		t.Fatal(err)
	}
	want := []LinkEvent{
		{Name: "eth1x", Index: 7, Up: true, MAC: [6]byte(mac)},
		{Name: "nocarrier", Index: 8},
		{Name: "eth1x", Index: 7, Deleted: true, MAC: [6]byte(mac)},
	}
	if len(evs) != len(want) {
		t.Fatalf("parsed %+v, want %+v", evs, want)
	}
	for i := range want {
		if evs[i] != want[i] {
			t.Errorf("event %d = %+v, want %+v", i, evs[i], want[i])
		}
	}
	// A length that runs past the datagram is rejected, not followed.
	bad := nlLink(unix.RTM_NEWLINK, 1, 0, "x", nil)
	binary.NativeEndian.PutUint32(bad, uint32(len(bad)+8))
	if _, err := parseLinkMessages(bad, 0, false, &evs); err == nil {
		t.Error("a message longer than its datagram was accepted")
	}
}

// ipLinkMAC asks ip for an interface's address.
func ipLinkMAC(t *testing.T, ns *testNS, name string) [6]byte {
	t.Helper()
	var links []struct {
		Address string `json:"address"`
	}
	if err := json.Unmarshal([]byte(ns.ip(t, "-j", "link", "show", "dev", name)), &links); err != nil || len(links) != 1 {
		t.Fatalf("ip -j link show %s: %v", name, err)
	}
	hw, err := net.ParseMAC(links[0].Address)
	if err != nil || len(hw) != 6 {
		t.Fatalf("ip reported address %q for %s", links[0].Address, name)
	}
	return [6]byte(hw)
}

func TestWatcher(t *testing.T) {
	ns := newNS(t)
	var w *Watcher
	var err error
	ns.do(t, func() { w, err = NewWatcher() })
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	poller, err := NewPoller()
	if err != nil {
		t.Fatal(err)
	}
	defer poller.Close()

	// await reads events until one for name satisfies ok, within 5s.
	await := func(what, name string, ok func(LinkEvent) bool) LinkEvent {
		t.Helper()
		ready := []bool{false}
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if _, err := poller.Wait([]int{w.Fd()}, ready, 100*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			evs, err := w.Read()
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			for _, ev := range evs {
				if ev.Name == name && ok(ev) {
					return ev
				}
			}
		}
		t.Fatalf("no event within 5s: %s", what)
		return LinkEvent{}
	}

	evs, err := w.Dump()
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Name != "lo" || evs[0].Deleted {
		t.Errorf("Dump of a fresh namespace = %+v, want just lo", evs)
	}
	if evs, err := w.Read(); err != nil || evs != nil {
		t.Errorf("Read with nothing queued = %+v, %v; want nil, nil", evs, err)
	}

	ns.ip(t, "link", "add", "name", "ftbw0", "type", "veth", "peer", "name", "ftbw1")
	mac := ipLinkMAC(t, ns, "ftbw0")
	created := await("ftbw0 created", "ftbw0", func(ev LinkEvent) bool { return !ev.Deleted })
	if created.Up || created.MAC != mac || created.Index <= 1 {
		t.Errorf("creation event %+v, want down with MAC %x", created, mac)
	}

	// Both ends must be up for carrier: ftbw0 alone up is not Up.
	ns.ip(t, "link", "set", "ftbw0", "up")
	ns.ip(t, "link", "set", "ftbw1", "up")
	await("ftbw0 up with carrier", "ftbw0", func(ev LinkEvent) bool { return ev.Up })

	dump, err := w.Dump()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ev := range dump {
		if ev.Name == "ftbw0" {
			found = true
			if !ev.Up || ev.Index != created.Index || ev.MAC != mac {
				t.Errorf("Dump entry %+v, want up, index %d, MAC %x", ev, created.Index, mac)
			}
		}
	}
	if !found || len(dump) != 3 {
		t.Errorf("Dump = %+v, want lo, ftbw0, ftbw1", dump)
	}
	var st LinkEvent
	var ok bool
	ns.do(t, func() { st, ok = LinkState("ftbw0") })
	if !ok || !st.Up || st.Index != created.Index || st.MAC != mac {
		t.Errorf("LinkState(ftbw0) = %+v, %v; want up, index %d", st, ok, created.Index)
	}

	// Carrier loss: the peer going down takes ftbw0 down too.
	ns.ip(t, "link", "set", "ftbw1", "down")
	await("ftbw0 loses carrier", "ftbw0", func(ev LinkEvent) bool { return !ev.Up && !ev.Deleted })
	ns.do(t, func() { st, ok = LinkState("ftbw0") })
	if !ok || st.Up {
		t.Errorf("LinkState(ftbw0) without carrier = %+v, %v; want present and not up", st, ok)
	}
	ns.ip(t, "link", "set", "ftbw1", "up")
	await("ftbw0 regains carrier", "ftbw0", func(ev LinkEvent) bool { return ev.Up })
	ns.ip(t, "link", "set", "ftbw0", "down")
	await("ftbw0 set down", "ftbw0", func(ev LinkEvent) bool { return !ev.Up && !ev.Deleted })

	ns.ip(t, "link", "del", "ftbw0")
	del := await("ftbw0 deleted", "ftbw0", func(ev LinkEvent) bool { return ev.Deleted })
	if del.Index != created.Index || del.Up {
		t.Errorf("deletion event %+v, want index %d and not up", del, created.Index)
	}
	ns.do(t, func() { _, ok = LinkState("ftbw0") })
	if ok {
		t.Error("LinkState reports a deleted interface")
	}
}
