package pkt

import (
	"encoding/binary"
	"errors"
)

// MAC is an IEEE 802 48-bit hardware address. It is an array rather than a
// slice so that it can be compared with == and used as a map key.
type MAC [6]byte

// BroadcastMAC is the Ethernet broadcast address ff:ff:ff:ff:ff:ff.
var BroadcastMAC = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

var errBadMAC = errors.New("pkt: invalid MAC address")

// String formats m as six lower-case, colon-separated hex octets.
func (m MAC) String() string {
	const hexDigits = "0123456789abcdef"
	var buf [17]byte
	for i, b := range m {
		if i > 0 {
			buf[i*3-1] = ':'
		}
		buf[i*3] = hexDigits[b>>4]
		buf[i*3+1] = hexDigits[b&0xf]
	}
	return string(buf[:])
}

// ParseMAC parses six two-digit hex octets separated by ':' or '-' (one
// separator style throughout), in either case. On error it returns the zero
// MAC. Unlike net.ParseMAC it rejects
// EUI-64 and InfiniBand forms, since only 48-bit Ethernet addresses are
// meaningful here.
func ParseMAC(s string) (MAC, error) {
	var m MAC
	if len(s) != 17 {
		return m, errBadMAC
	}
	sep := s[2]
	if sep != ':' && sep != '-' {
		return m, errBadMAC
	}
	for i := range m {
		off := i * 3
		if i > 0 && s[off-1] != sep {
			return MAC{}, errBadMAC
		}
		hi, ok1 := unhex(s[off])
		lo, ok2 := unhex(s[off+1])
		if !ok1 || !ok2 {
			return MAC{}, errBadMAC
		}
		m[i] = hi<<4 | lo
	}
	return m, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// IsZero reports whether m is 00:00:00:00:00:00, which is never a valid
// station address and is used to mean "unknown" (for example the target of
// an ARP request).
func (m MAC) IsZero() bool {
	return m == MAC{}
}

// EtherType is the 16-bit type field of an Ethernet II header.
type EtherType uint16

// EtherType values the dataplane distinguishes.
const (
	EtherTypeIPv4 EtherType = 0x0800
	EtherTypeARP  EtherType = 0x0806
	EtherTypeIPv6 EtherType = 0x86DD
	EtherTypeVLAN EtherType = 0x8100
)

// EthernetLen is the length of an untagged Ethernet II header.
const EthernetLen = 14

// Ethernet is a view of an untagged Ethernet II frame. Accessors assume
// len(e) >= EthernetLen.
type Ethernet []byte

// Dst returns the destination MAC address.
func (e Ethernet) Dst() MAC {
	return MAC(e[0:6])
}

// Src returns the source MAC address.
func (e Ethernet) Src() MAC {
	return MAC(e[6:12])
}

// Type returns the EtherType.
func (e Ethernet) Type() EtherType {
	return EtherType(binary.BigEndian.Uint16(e[12:14]))
}

// SetDst sets the destination MAC address.
func (e Ethernet) SetDst(m MAC) {
	copy(e[0:6], m[:])
}

// SetSrc sets the source MAC address.
func (e Ethernet) SetSrc(m MAC) {
	copy(e[6:12], m[:])
}

// SetType sets the EtherType.
func (e Ethernet) SetType(t EtherType) {
	binary.BigEndian.PutUint16(e[12:14], uint16(t))
}

// Payload returns the bytes after the Ethernet header, including any
// trailing padding the sender added to reach the 60-byte minimum frame.
func (e Ethernet) Payload() []byte {
	return e[EthernetLen:]
}

// Check reports ErrTruncated when e is too short to hold an Ethernet header.
func (e Ethernet) Check() error {
	if len(e) < EthernetLen {
		return ErrTruncated
	}
	return nil
}

// EncodeEthernet writes an Ethernet header into b[:EthernetLen].
func EncodeEthernet(b []byte, dst, src MAC, t EtherType) {
	e := Ethernet(b[:EthernetLen])
	e.SetDst(dst)
	e.SetSrc(src)
	e.SetType(t)
}
