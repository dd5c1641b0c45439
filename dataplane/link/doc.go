// Package link is the dataplane's port layer: raw Ethernet access to
// network interfaces through AF_PACKET sockets, a poll(2)-based waiter that
// the engine's single packet goroutine blocks in, and an rtnetlink watcher
// that reports interfaces coming, going, and losing carrier.
//
// The design follows the measurements in shared/design/performance-notes.md:
//
//   - Frames move in batches with recvmmsg(2)/sendmmsg(2), issued as raw
//     system calls because golang.org/x/sys/unix has no wrappers for them.
//     The message and iovec arrays live in the Port and are reused, so the
//     hot path does not allocate.
//   - PACKET_VNET_HDR (Options.VNetHdr) lets the kernel hand over GSO
//     super-frames and partial-checksum metadata instead of segmenting and
//     checksumming every frame; each frame is then prefixed by a 10-byte
//     virtio_net_hdr (see VNetHeader).
//   - Sockets are created with protocol 0, so nothing is queued until bind
//     attaches them to exactly one interface with ETH_P_ALL, and
//     PACKET_IGNORE_OUTGOING keeps a port from reading its own
//     transmissions.
//   - There is no TPACKET_V3 ring: its block retirement adds a millisecond of
//     latency to every quiet flow.
//
// A Port is not safe for concurrent use, except that one goroutine may call
// ReadBatch while another calls WriteBatch or Write. Close must not race with
// any of them. Poller.Wake is the only method meant to be called
// from other goroutines.
//
// The package is Linux-only; on other systems every constructor returns
// errors.ErrUnsupported so that the module still builds.
package link
