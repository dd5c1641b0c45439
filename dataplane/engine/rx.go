package engine

import (
	"net/netip"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/failover"
	"github.com/ftbridge/ftbridge/dataplane/link"
	"github.com/ftbridge/ftbridge/dataplane/pkt"
)

// handleFrame classifies one received frame (with its virtio header when
// the port has one).
func (e *Engine) handleFrame(p *port, b []byte) {
	var vh pkt.VNetHdr
	if p.vnet {
		if len(b) < link.VNetHdrLen {
			e.drop(DropMalformed)
			return
		}
		vh, b = pkt.VNetHdr(b[:link.VNetHdrLen]), b[link.VNetHdrLen:]
	}
	eth := pkt.Ethernet(b)
	if eth.Check() != nil {
		e.drop(DropMalformed)
		return
	}
	var r *replica
	if p != e.uplink {
		r = e.replicaOf(p)
		if r == nil {
			return
		}
		if src := eth.Src(); src != r.peer && src[0]&1 == 0 {
			r.peer = src
		}
		e.heardReplica(r)
	}
	switch eth.Type() {
	case pkt.EtherTypeARP:
		e.handleARP(p, r, eth)
	case pkt.EtherTypeIPv4:
		e.handleIPv4(p, r, vh, b)
	case pkt.EtherTypeIPv6:
		e.drop(DropIPv6)
	default:
		e.drop(DropNotForUs)
	}
}

func (e *Engine) replicaOf(p *port) *replica {
	for _, r := range e.replicas {
		if r.port == p {
			return r
		}
	}
	return nil
}

// handleARP answers for the service addresses on the uplink, and for
// everyone else on replica ports (proxy ARP), so that every frame either
// side sends for the other comes to the box.
func (e *Engine) handleARP(p *port, r *replica, eth pkt.Ethernet) {
	a := pkt.ARP(eth.Payload())
	if a.Check() != nil {
		e.drop(DropMalformed)
		return
	}
	sip, tip := a.SenderIP(), a.TargetIP()
	if r == nil {
		if sip.IsValid() && !sip.IsUnspecified() && !e.vips[sip] {
			e.learnNeighbor(sip, a.SenderMAC())
		}
		if a.Op() == pkt.ARPRequest && e.vips[tip] {
			e.arpReply(p, e.vipMAC, tip, a.SenderMAC(), sip)
		}
		return
	}
	switch a.Op() {
	case pkt.ARPReply:
		if e.vips[sip] && tip == e.probeSrc {
			r.arpSeen = true
			r.lastARP = e.now
			r.peer = a.SenderMAC()
		}
	case pkt.ARPRequest:
		if !e.vips[tip] && !tip.IsUnspecified() && tip != sip {
			e.arpReply(p, p.mac, tip, a.SenderMAC(), sip)
		}
	}
}

func (e *Engine) arpReply(p *port, mac pkt.MAC, ip netip.Addr, toMAC pkt.MAC, toIP netip.Addr) {
	buf := e.txBuf(p, smallTxBufSize)
	n := p.hdrRoom()
	pkt.EncodeEthernet(buf[n:], toMAC, mac, pkt.EtherTypeARP)
	pkt.EncodeARP(buf[n+pkt.EthernetLen:], pkt.ARPReply, mac, ip, toMAC, toIP)
	e.queue(p, buf[:n+pkt.EthernetLen+pkt.ARPLen])
	e.counters.ARPReplies.Add(1)
}

// gratuitousARP announces the service addresses on the uplink at start, so
// clients that cached another MAC for them move to the box's at once.
func (e *Engine) gratuitousARP() {
	for vip := range e.vips {
		buf := e.txBuf(e.uplink, smallTxBufSize)
		n := e.uplink.hdrRoom()
		pkt.EncodeEthernet(buf[n:], pkt.BroadcastMAC, e.vipMAC, pkt.EtherTypeARP)
		pkt.EncodeARP(buf[n+pkt.EthernetLen:], pkt.ARPRequest, e.vipMAC, vip, pkt.MAC{}, vip)
		e.queue(e.uplink, buf[:n+pkt.EthernetLen+pkt.ARPLen])
	}
	e.flushAll()
}

func (e *Engine) learnNeighbor(ip netip.Addr, mac pkt.MAC) {
	if mac[0]&1 != 0 || mac.IsZero() {
		return
	}
	if old, ok := e.neighbors[ip]; ok && old == mac {
		return
	}
	if len(e.neighbors) >= maxNeighbors {
		if _, ok := e.neighbors[ip]; !ok {
			return // bounded: a flood of made-up senders cannot grow it
		}
	}
	e.neighbors[ip] = mac
}

// handleIPv4 dispatches an IPv4 frame.
func (e *Engine) handleIPv4(p *port, r *replica, vh pkt.VNetHdr, b []byte) {
	gso := vh != nil && vh.GSOType() != pkt.VNetGSONone
	csumTrusted := vh != nil && vh.Flags()&(pkt.VNetHdrFlagNeedsCsum|pkt.VNetHdrFlagDataValid) != 0
	f := &e.frame
	err := pkt.ParseTCPv4GSO(b, f, !gso)
	switch err {
	case nil:
	case pkt.ErrNotTCPv4:
		if f.IP != nil || pkt.IPv4(pkt.Ethernet(b).Payload()).Check(true, false) == nil {
			e.bridgeOther(p, r, vh, b)
			return
		}
		e.drop(DropMalformed)
		return
	case pkt.ErrFragment:
		e.drop(DropFragment)
		return
	default:
		e.drop(DropMalformed)
		return
	}
	ip, tcp := f.IP, f.TCP
	if r == nil {
		if !e.vips[ip.Dst()] {
			e.drop(DropNotForUs)
			return
		}
		e.learnNeighbor(ip.Src(), f.Eth.Src())
		si, ok := e.svcIndex[netip.AddrPortFrom(ip.Dst(), tcp.DstPort())]
		if !ok || (e.services[si].retired && e.conns[makeConnKey(netip.AddrPortFrom(ip.Src(), tcp.SrcPort()), si)] == nil) {
			e.bridgeOther(p, r, vh, b)
			return
		}
		if !csumTrusted && pkt.TCPChecksum(ip.Src(), ip.Dst(), tcp) != tcp.Checksum() {
			e.drop(DropBadChecksum)
			return
		}
		e.fromClient(si, f, vh)
		return
	}
	if ip.Dst() == e.probeSrc {
		if e.leader == nil { // (the filters send answers to loop 0)
			e.probeReply(r, f)
		}
		return
	}
	si, ok := e.svcIndex[netip.AddrPortFrom(ip.Src(), tcp.SrcPort())]
	if !ok {
		e.bridgeOther(p, r, vh, b)
		return
	}
	if !csumTrusted && pkt.TCPChecksum(ip.Src(), ip.Dst(), tcp) != tcp.Checksum() {
		e.drop(DropBadChecksum)
		return
	}
	e.fromReplica(r, si, f, vh)
}

// segment fills e.seg from a parsed frame.
func (e *Engine) segment(f *pkt.Frame, vh pkt.VNetHdr) *failover.Segment {
	t, o := f.TCP, &f.Opts
	s := &e.seg
	*s = failover.Segment{
		Seq: t.Seq(), Ack: t.Ack(), Flags: t.Flags(), Window: t.Window(),
		HasTS: o.HasTimestamp, TSVal: o.TSVal, TSEcr: o.TSEcr,
		NumSACK: o.NumSACK, SACK: o.SACK,
		MSS: o.MSS, HasMSS: o.HasMSS, WScale: o.WScale, HasWScale: o.HasWScale,
		SACKPermitted: o.SACKPermitted,
		Payload:       t.Payload(),
	}
	if vh != nil && vh.GSOType() != pkt.VNetGSONone {
		s.GSOSize = vh.GSOSize()
	}
	return s
}

// fromClient runs a client segment through its connection.
func (e *Engine) fromClient(si int, f *pkt.Frame, vh pkt.VNetHdr) {
	client := netip.AddrPortFrom(f.IP.Src(), f.TCP.SrcPort())
	ck := makeConnKey(client, si)
	s := e.segment(f, vh)
	ce := e.conns[ck]
	isSyn := s.Flags.Has(pkt.TCPFlagSyn) && !s.Flags.Has(pkt.TCPFlagAck)
	if ce != nil && isSyn && ce.conn.State() != failover.StateSynRcvd && s.Seq != ce.conn.ClientISN() {
		if ce.conn.State() == failover.StateTimeWait || !ce.conn.HandshakeDone() {
			// A new incarnation of the 4-tuple replaces the old entry.
			e.forget(ce)
			ce = nil
		} else {
			// RFC 5961 4.2: a SYN on a synchronized connection draws a
			// challenge ACK, never a reset of the connection; a client
			// that really lost it answers with an RST the box believes.
			ce.conn.ChallengeACK(e.now, e)
			e.schedule(ce)
			return
		}
	}
	if ce == nil {
		svc := e.services[si].addr
		if !isSyn {
			if !s.Flags.Has(pkt.TCPFlagRst) {
				e.drop(DropNoConn)
				e.resetUnknown(e.uplink, f.Eth.Src(), e.vipMAC, svc, client, s)
			}
			return
		}
		if len(e.conns) >= e.maxConns {
			e.drop(DropTableFull)
			return
		}
		ids := e.eligible(si)
		if len(ids) == 0 {
			e.drop(DropNoReplica)
			e.publish(Event{Kind: EventConnRefused, Conn: failover.Key{Client: client, Service: svc}.String(), Reason: "no healthy replica"})
			e.resetUnknown(e.uplink, f.Eth.Src(), e.vipMAC, svc, client, s)
			return
		}
		ce = &connEntry{svc: si, key: ck}
		e.conns[ck] = ce
		e.counters.ActiveConns.Add(1)
		e.counters.ConnsOpened.Add(1)
		ce.conn = failover.NewConn(e.now, failover.Key{Client: client, Service: svc}, f.Eth.Src(), s, ids, e.services[si].params, e)
		e.schedule(ce)
		return
	}
	if mac := f.Eth.Src(); mac != ce.conn.ClientMAC {
		ce.conn.ClientMAC = mac
	}
	ce.conn.FromClient(e.now, s, e)
	e.schedule(ce)
}

// forget drops a connection entry from the table at once.
func (e *Engine) forget(ce *connEntry) {
	c := ce.conn
	c.Abandon(e.now, e)
	e.schedule(ce)
}

// fromReplica runs a replica's segment through its connection.
func (e *Engine) fromReplica(r *replica, si int, f *pkt.Frame, vh pkt.VNetHdr) {
	client := netip.AddrPortFrom(f.IP.Dst(), f.TCP.DstPort())
	s := e.segment(f, vh)
	if s.Flags&(pkt.TCPFlagSyn|pkt.TCPFlagAck|pkt.TCPFlagRst) == pkt.TCPFlagSyn|pkt.TCPFlagAck {
		// The service's listener answered a SYN: as good as a probe
		// answer, and it keeps arriving when a burst of connections
		// crowds the probes out.
		r.svcSeen[si] = true
		r.svcLast[si] = e.now
	}
	ce := e.conns[makeConnKey(client, si)]
	m := -1
	if ce != nil {
		m = ce.conn.MemberIndex(r.id)
	}
	if m < 0 {
		if !s.Flags.Has(pkt.TCPFlagRst) {
			e.drop(DropNoConn)
			e.resetUnknown(r.port, r.peer, r.port.mac, client, e.services[si].addr, s)
		}
		return
	}
	ce.conn.FromReplica(e.now, m, s, e)
	e.schedule(ce)
}

// eligible lists the replicas that may take a new connection on service
// si, the preferred primary first. The slice is scratch, valid until the
// next call (NewConn copies it).
func (e *Engine) eligible(si int) []int {
	ids := e.eligibleIDs[:0]
	for _, id := range e.order {
		if r := e.replicas[id]; r.eligible(si, e.now) {
			ids = append(ids, r.id)
		}
	}
	if len(ids) == 0 {
		for _, id := range e.order {
			if r := e.replicas[id]; r.lastResort(si, e.now) {
				ids = append(ids, r.id)
			}
		}
		if len(ids) > 0 {
			e.counters.LastResortConns.Add(1)
		}
	}
	e.eligibleIDs = ids
	return ids
}

// primaryReplica returns the replica whose non-service traffic is bridged:
// the first serving one in preference order.
func (e *Engine) primaryReplica() *replica {
	for _, id := range e.order {
		if r := e.replicas[id]; r.serving() && !r.peer.IsZero() {
			return r
		}
	}
	return nil
}

// bridgeOther forwards traffic that is not a replicated connection: from
// the uplink to the service address it goes to the primary replica, from
// the primary replica it goes to the uplink; a backup's is contained.
func (e *Engine) bridgeOther(p *port, r *replica, vh pkt.VNetHdr, b []byte) {
	ip := pkt.IPv4(pkt.Ethernet(b).Payload())
	if ip.Check(false, true) != nil {
		e.drop(DropMalformed)
		return
	}
	if r == nil {
		if !e.vips[ip.Dst()] {
			e.drop(DropNotForUs)
			return
		}
		e.learnNeighbor(ip.Src(), pkt.Ethernet(b).Src())
		pr := e.primaryReplica()
		if pr == nil {
			e.drop(DropNoReplica)
			return
		}
		e.forwardFrame(pr.port, pr.peer, pr.port.mac, vh, b)
		return
	}
	if ip.Protocol() == pkt.ProtoICMP && e.icmpUnreachable(r, ip) {
		return
	}
	if pr := e.primaryReplica(); pr != r {
		e.drop(DropBackupTraffic)
		return
	}
	mac, ok := e.neighbors[ip.Dst()]
	if !ok {
		e.drop(DropNoNeighbor)
		return
	}
	e.forwardFrame(e.uplink, mac, e.vipMAC, vh, b)
}

// forwardFrame copies a frame to another port with new MAC addresses.
func (e *Engine) forwardFrame(to *port, dst, src pkt.MAC, vh pkt.VNetHdr, b []byte) {
	n := to.hdrRoom()
	buf := e.txBuf(to, n+len(b))
	if len(b)+n > len(buf) {
		e.drop(DropTruncated)
		e.releaseBuf(buf)
		return
	}
	if n > 0 {
		if vh != nil {
			copy(buf, vh)
		} else {
			clear(buf[:n])
		}
	}
	copy(buf[n:], b)
	eth := pkt.Ethernet(buf[n:])
	eth.SetDst(dst)
	eth.SetSrc(src)
	e.queue(to, buf[:n+len(b)])
}

// resetUnknown answers a segment of no known connection with an RST, as a
// host with no such connection would.
func (e *Engine) resetUnknown(p *port, dstMAC, srcMAC pkt.MAC, from, to netip.AddrPort, s *failover.Segment) {
	if p == nil || dstMAC.IsZero() || !e.rstLimit.allow(e.now) {
		return
	}
	h := failover.Header{Flags: pkt.TCPFlagRst, WScale: -1}
	if s.Flags.Has(pkt.TCPFlagAck) {
		h.Seq = s.Ack
	} else {
		n := uint32(len(s.Payload))
		if s.Flags.Has(pkt.TCPFlagSyn) {
			n++
		}
		if s.Flags.Has(pkt.TCPFlagFin) {
			n++
		}
		h.Ack = s.Seq + n
		h.Flags |= pkt.TCPFlagAck
	}
	e.sendTCP(p, dstMAC, srcMAC, from, to, &h, nil)
}

// icmpUnreachable looks at an ICMP message from a replica: a destination
// unreachable that quotes one of the replica's service segments is a sign
// of trouble on its side, so its health is checked again at once instead
// of at the next probe round. It reports whether the message was consumed.
func (e *Engine) icmpUnreachable(r *replica, ip pkt.IPv4) bool {
	icmp := ip.Payload()
	if len(icmp) < 8+pkt.IPv4MinLen+4 || icmp[0] != 3 {
		return false
	}
	quoted := pkt.IPv4(icmp[8:])
	// The quote is a header plus at least 8 bytes, not a whole packet:
	// check the header alone.
	if quoted[0]>>4 != 4 || quoted.HeaderLen() < pkt.IPv4MinLen || len(quoted) < quoted.HeaderLen()+4 ||
		quoted.Protocol() != pkt.ProtoTCP {
		return false
	}
	tcp := quoted[quoted.HeaderLen():]
	src := netip.AddrPortFrom(quoted.Src(), uint16(tcp[0])<<8|uint16(tcp[1]))
	if _, ok := e.svcIndex[src]; !ok {
		return false
	}
	e.counters.ICMPUnreachable.Add(1)
	// Probe now rather than at the next round: r's verdict comes sooner.
	e.nextProbe = e.now
	e.publish(Event{Kind: EventReplicaICMP, Replica: r.name, Port: src.String(), Reason: "ICMP destination unreachable"})
	return true
}

// tokenBucket limits a rate, as Linux limits its answers to invalid
// segments (tcp_invalid_ratelimit): a flood of stray segments must not
// turn the box into a reset amplifier that starves live connections.
type tokenBucket struct {
	tokens float64
	last   time.Time
	rate   float64 // per second
	burst  float64
}

func (b *tokenBucket) allow(now time.Time) bool {
	if b.last.IsZero() {
		b.tokens = b.burst
	} else {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
