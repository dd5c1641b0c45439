package pkt

// Frame is a parsed Ethernet+IPv4+TCP frame: views into one buffer, so
// writing through a view rewrites the frame.
type Frame struct {
	// Eth spans the whole frame.
	Eth Ethernet
	// IP spans the IPv4 packet: header and payload up to the total length,
	// without Ethernet padding (or to the end of the frame for a GSO
	// super-frame with total length 0).
	IP IPv4
	// TCP spans the TCP header and payload.
	TCP TCP
	// Opts is the parsed TCP option list; its offsets index TCP.Options().
	Opts TCPOptions
}

// ParseTCPv4 parses an untagged Ethernet frame carrying TCP over IPv4 into
// f without copying or allocating. It returns ErrNotTCPv4 for any other
// EtherType (VLAN-tagged frames included) or IP protocol, ErrFragment for IP
// fragments, and otherwise the first validation error found in the
// Ethernet, IPv4 or TCP header or the TCP options (ErrBadOption). The IPv4
// total length must not be 0; see ParseTCPv4GSO for super-frames.
//
// verifyChecksums makes it verify the IPv4 header checksum; the TCP checksum
// is left to the caller, who knows whether the NIC or virtio header already
// vouched for it.
//
// On error, the views that were validated before the failure are set and the
// rest are nil; on ErrBadOption Eth, IP and TCP are all valid, so a caller
// may still forward the segment untouched.
func ParseTCPv4(frame []byte, f *Frame, verifyChecksums bool) error {
	return parseTCPv4(frame, f, verifyChecksums, false)
}

// ParseTCPv4GSO is ParseTCPv4 for frames read with PACKET_VNET_HDR, where a
// GSO super-frame larger than 64 KiB carries an IPv4 total length of 0; the
// packet then extends to the end of the frame.
func ParseTCPv4GSO(frame []byte, f *Frame, verifyChecksums bool) error {
	return parseTCPv4(frame, f, verifyChecksums, true)
}

func parseTCPv4(frame []byte, f *Frame, verifyChecksums, allowZeroTotalLen bool) error {
	f.Eth, f.IP, f.TCP = nil, nil, nil
	eth := Ethernet(frame)
	if err := eth.Check(); err != nil {
		f.Opts.reset()
		return err
	}
	f.Eth = eth
	if eth.Type() != EtherTypeIPv4 {
		f.Opts.reset()
		return ErrNotTCPv4
	}
	ip := IPv4(eth.Payload())
	if err := ip.Check(verifyChecksums, allowZeroTotalLen); err != nil {
		f.Opts.reset()
		return err
	}
	if tl := ip.TotalLen(); tl != 0 {
		// Trim Ethernet padding so that len(f.IP) is the packet length
		// and TCP.Payload() excludes the padding.
		ip = ip[:tl]
	}
	f.IP = ip
	if ip.Protocol() != ProtoTCP {
		f.Opts.reset()
		return ErrNotTCPv4
	}
	if ip.IsFragment() {
		f.Opts.reset()
		return ErrFragment
	}
	tcp := TCP(ip.Payload())
	if err := tcp.Check(); err != nil {
		f.Opts.reset()
		return err
	}
	f.TCP = tcp
	return ParseTCPOptions(tcp.Options(), &f.Opts)
}
