//go:build linux

package link

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// fuzzLinkMsg builds one RTM_NEWLINK or RTM_DELLINK message like the
// kernel's: an ifinfomsg, then attributes, each padded to 4 bytes. The
// attributes are an unknown one (type 0x3ff0) carrying extra (placed first, so that its
// length and padding decide where the others start), IFLA_IFNAME (with the
// NLA_F_NESTED bit set when nested, which the parser must mask off),
// IFLA_ADDRESS when mac is not nil, and IFLA_MTU last.
func fuzzLinkMsg(typ uint16, seq uint32, index int32, flags uint32, name []byte, mac, extra []byte, nested bool) []byte {
	ne := binary.NativeEndian
	attr := func(t uint16, v []byte) []byte {
		a := make([]byte, (unix.SizeofRtAttr+len(v)+unix.RTA_ALIGNTO-1)&^(unix.RTA_ALIGNTO-1))
		ne.PutUint16(a, uint16(unix.SizeofRtAttr+len(v)))
		ne.PutUint16(a[2:], t)
		copy(a[unix.SizeofRtAttr:], v)
		return a
	}
	body := make([]byte, unix.SizeofIfInfomsg)
	ne.PutUint32(body[4:], uint32(index))
	ne.PutUint32(body[8:], flags)
	body = append(body, attr(0x3ff0, extra)...)
	nameType := uint16(unix.IFLA_IFNAME)
	if nested {
		nameType |= unix.NLA_F_NESTED
	}
	body = append(body, attr(nameType, name)...)
	if mac != nil {
		body = append(body, attr(unix.IFLA_ADDRESS, mac)...)
	}
	body = append(body, attr(unix.IFLA_MTU, []byte{0xdc, 5, 0, 0})...)
	m := make([]byte, unix.SizeofNlMsghdr, unix.SizeofNlMsghdr+len(body))
	ne.PutUint32(m, uint32(unix.SizeofNlMsghdr+len(body)))
	ne.PutUint16(m[4:], typ)
	ne.PutUint32(m[8:], seq)
	return append(m, body...)
}

// nlControl builds an NLMSG_DONE or NLMSG_ERROR message carrying errno
// (negative, as the kernel sends it) and the given header flags.
func nlControl(typ, flags uint16, seq uint32, errno int32) []byte {
	ne := binary.NativeEndian
	m := make([]byte, unix.SizeofNlMsghdr+4)
	ne.PutUint32(m, uint32(len(m)))
	ne.PutUint16(m[4:], typ)
	ne.PutUint16(m[6:], flags)
	ne.PutUint32(m[8:], seq)
	ne.PutUint32(m[unix.SizeofNlMsghdr:], uint32(errno))
	return m
}

// addNetlinkSeeds adds datagrams shaped like the kernel's: notifications,
// a dump's last part, an error answer, and damaged variants of them.
func addNetlinkSeeds(f *testing.F) {
	mac := []byte{2, 1, 2, 3, 4, 5}
	up := uint32(unix.IFF_UP | unix.IFF_RUNNING | unix.IFF_LOWER_UP)
	newLink := fuzzLinkMsg(unix.RTM_NEWLINK, 0, 7, up, []byte("eth1x\x00"), mac, nil, false)
	delLink := fuzzLinkMsg(unix.RTM_DELLINK, 0, 7, up, []byte("eth1x\x00"), mac, nil, false)
	dump := append(fuzzLinkMsg(unix.RTM_NEWLINK, 5, 1, up, []byte("lo\x00"), make([]byte, 6), nil, false),
		fuzzLinkMsg(unix.RTM_NEWLINK, 5, 2, unix.IFF_UP, []byte("port1\x00"), mac, []byte{1, 2, 3}, true)...)
	dump = append(dump, nlControl(unix.NLMSG_DONE, unix.NLM_F_MULTI|unix.NLM_F_DUMP_INTR, 5, 0)...)
	f.Add(newLink)
	f.Add(append(newLink, delLink...))
	f.Add(nlLink(unix.RTM_NEWLINK, 8, unix.IFF_UP, "nocarrier", nil))
	f.Add(dump)
	f.Add(nlControl(unix.NLMSG_ERROR, 0, 5, -int32(unix.EBUSY)))
	f.Add(nlControl(unix.NLMSG_DONE, unix.NLM_F_MULTI, 5, -int32(unix.EINTR)))
	f.Add(newLink[:len(newLink)-3])                                        // torn
	f.Add(append(newLink[:unix.SizeofNlMsghdr:unix.SizeofNlMsghdr], 0, 0)) // header only
	f.Add([]byte{})
}

// FuzzParseLinkMessages feeds arbitrary datagrams to the rtnetlink parser,
// which reads what the kernel sends. Besides never panicking it checks:
//
//   - it only appends to the caller's slice, and appends at most one event
//     per message the datagram can hold;
//   - every event is plausible: a deleted link is never up, a name has no
//     NUL (it ends at the first one) and is no longer than the datagram;
//   - every event survives a round trip: the message a kernel would send
//     for it parses back to the same event;
//   - filtering by sequence number only ever drops: with matchSeq the
//     events are a subsequence of the unfiltered ones, and an error with
//     the filter implies an error without it (framing errors do not depend
//     on the filter).
func FuzzParseLinkMessages(f *testing.F) {
	addNetlinkSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		sentinel := LinkEvent{Name: "sentinel", Index: -42}
		evs := []LinkEvent{sentinel}
		st, err := parseLinkMessages(b, 0, false, &evs)
		if len(evs) == 0 || evs[0] != sentinel {
			t.Fatalf("the caller's events were overwritten: %+v", evs)
		}
		got := evs[1:]
		if maxMsgs := len(b)/unix.SizeofNlMsghdr + 1; len(got) > maxMsgs {
			t.Fatalf("%d events from %d bytes", len(got), len(b))
		}
		for i, ev := range got {
			if ev.Deleted && ev.Up {
				t.Errorf("event %d: deleted and up: %+v", i, ev)
			}
			if strings.IndexByte(ev.Name, 0) >= 0 || len(ev.Name) > len(b) {
				t.Errorf("event %d: name %q not cut at NUL or longer than the datagram", i, ev.Name)
			}
			typ := uint16(unix.RTM_NEWLINK)
			flags := uint32(0)
			if ev.Deleted {
				typ = unix.RTM_DELLINK
			}
			if ev.Up {
				flags = unix.IFF_UP | unix.IFF_RUNNING
			}
			var mac []byte
			if ev.MAC != ([6]byte{}) {
				mac = ev.MAC[:]
			}
			var again []LinkEvent
			if _, err := parseLinkMessages(nlLink(typ, int32(ev.Index), flags, ev.Name, mac), 0, false, &again); err != nil || len(again) != 1 || again[0] != ev {
				t.Errorf("event %d %+v does not round-trip: %+v, %v", i, ev, again, err)
			}
		}
		if len(b) < unix.SizeofNlMsghdr {
			return
		}
		seq := binary.NativeEndian.Uint32(b[8:])
		var filtered []LinkEvent
		fst, ferr := parseLinkMessages(b, seq, true, &filtered)
		if ferr != nil && err == nil {
			t.Fatalf("error %v only with the sequence filter", ferr)
		}
		if err == nil {
			j := 0
			for _, ev := range got {
				if j < len(filtered) && filtered[j] == ev {
					j++
				}
			}
			if j != len(filtered) {
				t.Fatalf("filtered events %+v are not a subsequence of %+v", filtered, got)
			}
			if fst.done && !st.done || fst.interrupted && !st.interrupted {
				t.Fatalf("filtered state %+v not implied by unfiltered %+v", fst, st)
			}
		}
	})
}

// FuzzLinkMessageFields builds well-formed link messages from fuzzed field
// values (any name bytes, any address length, an unknown attribute of any
// size in front, the nested bit set or not) and checks that the parser
// decodes exactly what was encoded: index, up only with IFF_UP and
// IFF_RUNNING both set, deleted for RTM_DELLINK, the name up to its first
// NUL, the address only when it has Ethernet length. Two copies in one
// datagram must give the same event twice, so the second message's start
// (after the first one's padding) is found correctly too.
func FuzzLinkMessageFields(f *testing.F) {
	f.Add(true, int32(7), uint32(unix.IFF_UP|unix.IFF_RUNNING), []byte("eth1x\x00"), []byte{2, 1, 2, 3, 4, 5}, []byte{}, false)
	f.Add(false, int32(8), uint32(unix.IFF_UP), []byte("nocarrier"), []byte{}, []byte{9}, true)
	f.Add(true, int32(-1), uint32(0xffffffff), []byte("a\x00b"), []byte{1, 2, 3, 4, 5, 6, 7, 8}, []byte{1, 2, 3, 4, 5}, false)
	f.Fuzz(func(t *testing.T, newLink bool, index int32, flags uint32, name, mac, extra []byte, nested bool) {
		// The kernel's attributes are at most 64 KiB; keep well within.
		if len(name) > 4096 || len(mac) > 64 || len(extra) > 4096 {
			return
		}
		typ := uint16(unix.RTM_DELLINK)
		if newLink {
			typ = unix.RTM_NEWLINK
		}
		var macArg []byte
		if len(mac) > 0 {
			macArg = mac
		}
		msg := fuzzLinkMsg(typ, 3, index, flags, name, macArg, extra, nested)
		want := LinkEvent{Index: int(index), Deleted: !newLink}
		want.Up = newLink && flags&(unix.IFF_UP|unix.IFF_RUNNING) == unix.IFF_UP|unix.IFF_RUNNING
		if i := bytes.IndexByte(name, 0); i >= 0 {
			want.Name = string(name[:i])
		} else {
			want.Name = string(name)
		}
		if len(mac) == 6 {
			want.MAC = [6]byte(mac)
		}
		var evs []LinkEvent
		st, err := parseLinkMessages(append(msg, msg...), 3, true, &evs)
		if err != nil || st.done || st.interrupted {
			t.Fatalf("well-formed messages: state %+v, error %v", st, err)
		}
		if len(evs) != 2 || evs[0] != want || evs[1] != want {
			t.Fatalf("parsed %+v, want twice %+v", evs, want)
		}
		// Another sequence number: a dump must not take them for its own.
		evs = evs[:0]
		if _, err := parseLinkMessages(msg, 4, true, &evs); err != nil || len(evs) != 0 {
			t.Fatalf("messages of another dump were taken: %+v, %v", evs, err)
		}
	})
}

// FuzzVNetHeader checks that DecodeVNetHeader and Encode are inverses on
// any 10 bytes, and that Encode writes exactly the header: the bytes after
// it are the frame and must stay untouched.
func FuzzVNetHeader(f *testing.F) {
	seed := make([]byte, VNetHdrLen+4)
	VNetHeader{Flags: VNetFlagNeedsCsum, GSOType: VNetGSOTCPv4 | VNetGSOECN, HdrLen: 66, GSOSize: 1448, CsumStart: 34, CsumOffset: 16}.Encode(seed)
	f.Add(seed)
	f.Add(make([]byte, VNetHdrLen))
	f.Add(bytes.Repeat([]byte{0xff}, VNetHdrLen+1))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < VNetHdrLen {
			return // Decode's contract: at least VNetHdrLen bytes
		}
		h := DecodeVNetHeader(b)
		out := bytes.Repeat([]byte{0x5a}, len(b)+8)
		h.Encode(out)
		if !bytes.Equal(out[:VNetHdrLen], b[:VNetHdrLen]) {
			t.Fatalf("Encode(Decode(%x)) = %x", b[:VNetHdrLen], out[:VNetHdrLen])
		}
		for i, c := range out[VNetHdrLen:] {
			if c != 0x5a {
				t.Fatalf("Encode wrote byte %d past the header", VNetHdrLen+i)
			}
		}
		if again := DecodeVNetHeader(out); again != h {
			t.Fatalf("Decode(Encode(%+v)) = %+v", h, again)
		}
	})
}
