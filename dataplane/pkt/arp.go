package pkt

import (
	"encoding/binary"
	"net/netip"
)

// ARPLen is the length of an IPv4-over-Ethernet ARP body.
const ARPLen = 28

// ARP operation codes.
const (
	ARPRequest uint16 = 1
	ARPReply   uint16 = 2
)

// Fixed values of the ARP header for IPv4 over Ethernet (RFC 826).
const (
	arpHTypeEthernet = 1
	arpHLen          = 6
	arpPLen          = 4
)

// ARP is a view of an IPv4-over-Ethernet ARP body, the bytes after the
// Ethernet header. Accessors assume Check succeeded.
type ARP []byte

// Check validates a as a request or reply for IPv4 over Ethernet. It returns
// ErrTruncated when a is shorter than ARPLen and ErrBadARP for any other
// hardware or protocol type, address length or operation, since those are
// not something the appliance answers or learns from.
func (a ARP) Check() error {
	if len(a) < ARPLen {
		return ErrTruncated
	}
	if binary.BigEndian.Uint16(a[0:2]) != arpHTypeEthernet ||
		EtherType(binary.BigEndian.Uint16(a[2:4])) != EtherTypeIPv4 ||
		a[4] != arpHLen || a[5] != arpPLen {
		return ErrBadARP
	}
	if op := a.Op(); op != ARPRequest && op != ARPReply {
		return ErrBadARP
	}
	return nil
}

// Op returns the operation code (ARPRequest or ARPReply).
func (a ARP) Op() uint16 {
	return binary.BigEndian.Uint16(a[6:8])
}

// SenderMAC returns the sender hardware address.
func (a ARP) SenderMAC() MAC {
	return MAC(a[8:14])
}

// SenderIP returns the sender protocol address.
func (a ARP) SenderIP() netip.Addr {
	return netip.AddrFrom4([4]byte(a[14:18]))
}

// TargetMAC returns the target hardware address (zero in most requests).
func (a ARP) TargetMAC() MAC {
	return MAC(a[18:24])
}

// TargetIP returns the target protocol address.
func (a ARP) TargetIP() netip.Addr {
	return netip.AddrFrom4([4]byte(a[24:28]))
}

// EncodeARP writes an IPv4-over-Ethernet ARP body of ARPLen bytes into b.
// senderIP and targetIP must be IPv4 (or IPv4-mapped IPv6) addresses; any
// other address panics, as netip.Addr.As4 does.
func EncodeARP(b []byte, op uint16, senderMAC MAC, senderIP netip.Addr, targetMAC MAC, targetIP netip.Addr) {
	b = b[:ARPLen]
	binary.BigEndian.PutUint16(b[0:2], arpHTypeEthernet)
	binary.BigEndian.PutUint16(b[2:4], uint16(EtherTypeIPv4))
	b[4] = arpHLen
	b[5] = arpPLen
	binary.BigEndian.PutUint16(b[6:8], op)
	copy(b[8:14], senderMAC[:])
	putAddr4(b[14:18], senderIP)
	copy(b[18:24], targetMAC[:])
	putAddr4(b[24:28], targetIP)
}

// putAddr4 writes a as four bytes. An IPv4-mapped IPv6 address is accepted
// because netip.ParseAddr and many socket APIs produce that form for IPv4.
func putAddr4(b []byte, a netip.Addr) {
	a4 := a.Unmap().As4()
	copy(b[:4], a4[:])
}
