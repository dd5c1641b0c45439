// Package pkt provides zero-copy views over Ethernet, ARP, IPv4 and TCP
// headers, TCP option parsing and encoding, Internet checksums, and the
// virtio_net_hdr that AF_PACKET prepends when PACKET_VNET_HDR is enabled.
//
// Every header type is a named []byte whose methods read and write fields in
// place, in network byte order, so a frame read from a socket can be
// classified and rewritten without copying or allocating. The design follows
// gVisor's pkg/tcpip/header: validation (the Check methods and ParseTCPv4) is
// kept apart from the accessors, which assume a view that has already been
// validated and therefore do no bounds checking of their own beyond what the
// Go runtime does. Calling an accessor on an unvalidated slice may panic.
//
// The package depends on the standard library only, so that it can be used
// (and fuzzed) in isolation from the socket and engine code.
package pkt
