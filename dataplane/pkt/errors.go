package pkt

import "errors"

// Sentinel errors returned by the validation functions. They are package
// level values so that returning one on the hot path never allocates; compare
// with errors.Is or ==.
var (
	// ErrTruncated means the buffer is shorter than a header or a length
	// field claims.
	ErrTruncated = errors.New("pkt: truncated packet")
	// ErrBadVersion means the IP version field is not 4.
	ErrBadVersion = errors.New("pkt: bad IP version")
	// ErrBadHeaderLen means an IPv4 IHL or TCP data offset is below the
	// minimum of five 32-bit words.
	ErrBadHeaderLen = errors.New("pkt: bad header length")
	// ErrBadTotalLen means the IPv4 total length is smaller than its header.
	ErrBadTotalLen = errors.New("pkt: bad IPv4 total length")
	// ErrBadChecksum means the IPv4 header checksum does not verify.
	ErrBadChecksum = errors.New("pkt: bad checksum")
	// ErrBadOption means the TCP option list is malformed.
	ErrBadOption = errors.New("pkt: malformed TCP option")
	// ErrBadARP means an ARP body is not an IPv4-over-Ethernet request or
	// reply.
	ErrBadARP = errors.New("pkt: unsupported or malformed ARP")
	// ErrNotTCPv4 means a frame is valid as far as it was parsed but does
	// not carry TCP over IPv4 in an untagged Ethernet frame.
	ErrNotTCPv4 = errors.New("pkt: not a TCP/IPv4 frame")
	// ErrFragment means an IPv4 packet is a fragment, whose TCP header is
	// either incomplete or absent.
	ErrFragment = errors.New("pkt: IPv4 fragment")
)
