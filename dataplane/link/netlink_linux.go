//go:build linux

package link

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Watcher subscribes to rtnetlink link notifications (RTMGRP_LINK) in the
// network namespace of the thread that created it.
type Watcher struct {
	fd     int // non-blocking, subscribed to RTMGRP_LINK
	dumpFd int // blocking with a receive timeout, for Dump requests only
	seq    uint32
	buf    []byte
}

const (
	nlmsgHdrLen   = unix.SizeofNlMsghdr
	ifinfomsgLen  = unix.SizeofIfInfomsg
	nlaTypeMask   = 0x3fff   // strips NLA_F_NESTED and NLA_F_NET_BYTEORDER
	watcherRcvBuf = 1 << 20  // room for bursts of notifications
	dumpTimeout   = 5        // seconds a Dump waits for the kernel
	readLimit     = 4096     // datagrams one Read consumes at most
	nlBufLen      = 64 << 10 // larger than any link message
	dumpRetries   = 3        // attempts when a dump is interrupted by changes
	dumpMsgLimit  = 1 << 20  // datagrams one Dump consumes at most
	ifFlagsUp     = unix.IFF_UP | unix.IFF_RUNNING
)

var errMalformed = errors.New("link: malformed netlink message")

// NewWatcher opens the notification socket and a second socket for Dump, so
// that dump replies never interleave with notifications.
func NewWatcher() (*Watcher, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("link: netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: unix.RTMGRP_LINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("link: netlink bind: %w", err)
	}
	setBuf(fd, unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, watcherRcvBuf)

	dfd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("link: netlink socket: %w", err)
	}
	tv := unix.Timeval{Sec: dumpTimeout}
	if err := unix.SetsockoptTimeval(dfd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		unix.Close(dfd)
		return nil, fmt.Errorf("link: netlink SO_RCVTIMEO: %w", err)
	}
	return &Watcher{fd: fd, dumpFd: dfd, buf: make([]byte, nlBufLen)}, nil
}

// Fd returns the notification socket, readable when Read has events.
func (w *Watcher) Fd() int { return w.fd }

// Read returns the events queued now without blocking, oldest first, or nil
// when there are none. If the kernel dropped notifications it returns what it
// has with ErrEventsLost; call Dump to resynchronise.
func (w *Watcher) Read() ([]LinkEvent, error) {
	var evs []LinkEvent
	for range readLimit {
		n, from, err := unix.Recvfrom(w.fd, w.buf, unix.MSG_DONTWAIT|unix.MSG_TRUNC)
		switch {
		case err == unix.EAGAIN:
			return evs, nil
		case err == unix.EINTR:
			continue
		case err == unix.ENOBUFS:
			return evs, ErrEventsLost
		case err != nil:
			return evs, fmt.Errorf("link: netlink receive: %w", err)
		case n > len(w.buf):
			return evs, fmt.Errorf("link: netlink message of %d bytes truncated: %w", n, ErrEventsLost)
		}
		// Only the kernel may speak for rtnetlink.
		if nl, ok := from.(*unix.SockaddrNetlink); !ok || nl.Pid != 0 {
			continue
		}
		if _, err := parseLinkMessages(w.buf[:n], 0, false, &evs); err != nil {
			return evs, err
		}
	}
	return evs, nil
}

// Dump requests RTM_GETLINK for all links and returns their current state.
// It blocks for the kernel's reply (at most a few seconds) and does not
// disturb the notifications that Read returns.
func (w *Watcher) Dump() ([]LinkEvent, error) {
	for range dumpRetries {
		evs, err := w.dumpOnce()
		if err != errDumpInterrupted {
			return evs, err
		}
	}
	return nil, fmt.Errorf("link: link dump: %w", errDumpInterrupted)
}

var errDumpInterrupted = errors.New("link dump kept being interrupted by changes")

func (w *Watcher) dumpOnce() ([]LinkEvent, error) {
	w.seq++
	var req [nlmsgHdrLen + ifinfomsgLen]byte
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], unix.RTM_GETLINK)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	ne.PutUint32(req[8:], w.seq)
	req[nlmsgHdrLen] = unix.AF_UNSPEC
	if err := unix.Sendto(w.dumpFd, req[:], 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("link: link dump request: %w", err)
	}
	var evs []LinkEvent
	interrupted := false
	for range dumpMsgLimit {
		n, from, err := unix.Recvfrom(w.dumpFd, w.buf, unix.MSG_TRUNC)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return nil, fmt.Errorf("link: link dump: no reply within %ds", dumpTimeout)
		case err != nil:
			return nil, fmt.Errorf("link: link dump: %w", err)
		case n > len(w.buf):
			return nil, fmt.Errorf("link: link dump: message of %d bytes truncated", n)
		}
		if nl, ok := from.(*unix.SockaddrNetlink); !ok || nl.Pid != 0 {
			continue
		}
		st, err := parseLinkMessages(w.buf[:n], w.seq, true, &evs)
		if err != nil {
			return nil, fmt.Errorf("link: link dump: %w", err)
		}
		interrupted = interrupted || st.interrupted
		if st.done {
			if interrupted {
				return nil, errDumpInterrupted
			}
			return evs, nil
		}
	}
	return nil, errors.New("link: link dump did not finish")
}

type parseState struct {
	done        bool // NLMSG_DONE seen
	interrupted bool // NLM_F_DUMP_INTR seen: the dump may be inconsistent
}

// parseLinkMessages appends the RTM_NEWLINK/RTM_DELLINK messages in one
// netlink datagram to evs. With matchSeq only messages carrying seq count.
func parseLinkMessages(b []byte, seq uint32, matchSeq bool, evs *[]LinkEvent) (parseState, error) {
	var st parseState
	ne := binary.NativeEndian
	for len(b) >= nlmsgHdrLen {
		l := int(ne.Uint32(b[0:]))
		typ := ne.Uint16(b[4:])
		flags := ne.Uint16(b[6:])
		if l < nlmsgHdrLen || l > len(b) {
			return st, errMalformed
		}
		body := b[nlmsgHdrLen:l]
		if !matchSeq || ne.Uint32(b[8:]) == seq {
			if flags&unix.NLM_F_DUMP_INTR != 0 {
				st.interrupted = true
			}
			switch typ {
			case unix.NLMSG_DONE:
				st.done = true
				if len(body) >= 4 {
					if e := int32(ne.Uint32(body)); e < 0 {
						return st, unix.Errno(-e)
					}
				}
			case unix.NLMSG_ERROR:
				if len(body) < 4 {
					return st, errMalformed
				}
				if e := int32(ne.Uint32(body)); e < 0 {
					return st, unix.Errno(-e)
				}
			case unix.RTM_NEWLINK, unix.RTM_DELLINK:
				ev, ok := parseIfInfo(body)
				if ok {
					ev.Deleted = typ == unix.RTM_DELLINK
					if ev.Deleted {
						ev.Up = false
					}
					*evs = append(*evs, ev)
				}
			}
		}
		adv := (l + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1)
		if adv >= len(b) {
			break
		}
		b = b[adv:]
	}
	return st, nil
}

// parseIfInfo decodes a struct ifinfomsg and its IFLA_IFNAME and
// IFLA_ADDRESS attributes.
func parseIfInfo(b []byte) (LinkEvent, bool) {
	if len(b) < ifinfomsgLen {
		return LinkEvent{}, false
	}
	ne := binary.NativeEndian
	ev := LinkEvent{
		Index: int(int32(ne.Uint32(b[4:]))),
		Up:    ne.Uint32(b[8:])&ifFlagsUp == ifFlagsUp,
	}
	for a := b[ifinfomsgLen:]; len(a) >= unix.SizeofRtAttr; {
		l := int(ne.Uint16(a[0:]))
		if l < unix.SizeofRtAttr || l > len(a) {
			break
		}
		val := a[unix.SizeofRtAttr:l]
		switch ne.Uint16(a[2:]) & nlaTypeMask {
		case unix.IFLA_IFNAME:
			for i, c := range val {
				if c == 0 {
					val = val[:i]
					break
				}
			}
			ev.Name = string(val)
		case unix.IFLA_ADDRESS:
			if len(val) == len(ev.MAC) {
				copy(ev.MAC[:], val)
			}
		}
		adv := (l + unix.RTA_ALIGNTO - 1) &^ (unix.RTA_ALIGNTO - 1)
		if adv >= len(a) {
			break
		}
		a = a[adv:]
	}
	return ev, true
}

// Close closes both netlink sockets.
func (w *Watcher) Close() error {
	if w.fd < 0 {
		return nil
	}
	err := unix.Close(w.fd)
	if e := unix.Close(w.dumpFd); err == nil {
		err = e
	}
	w.fd, w.dumpFd = -1, -1
	return err
}
