package engine

import (
	"errors"
	"net/netip"

	"github.com/ftbridge/ftbridge/dataplane/failover"
	"github.com/ftbridge/ftbridge/dataplane/link"
	"github.com/ftbridge/ftbridge/dataplane/pkt"
)

// hdrRoom is the room a frame needs in front for the virtio header.
func (p *port) hdrRoom() int {
	if p.vnet {
		return link.VNetHdrLen
	}
	return 0
}

// txBuf returns a transmit buffer of at least size bytes from the bounded
// pools, with the virtio header room (if p has one) zeroed: no offload
// asked for. Frames without payload (ACKs, RSTs, ARP, probes) take small
// buffers, so a flood of them costs no memory.
func (e *Engine) txBuf(p *port, size int) []byte {
	var b []byte
	pool, bufSize := &e.txFree, txBufSize
	if size <= smallTxBufSize {
		pool, bufSize = &e.txSmall, smallTxBufSize
	}
	if n := len(*pool); n > 0 {
		b = (*pool)[n-1][:bufSize]
		*pool = (*pool)[:n-1]
	} else {
		b = make([]byte, bufSize)
	}
	clear(b[:p.hdrRoom()])
	return b
}

func (e *Engine) releaseBuf(b []byte) {
	pool := &e.txFree
	if cap(b) < txBufSize {
		pool = &e.txSmall
	}
	if len(*pool) < e.txFreeMax {
		*pool = append(*pool, b[:cap(b)])
	}
}

// queue adds a finished frame to a port's transmit batch.
func (e *Engine) queue(p *port, frame []byte) {
	p.tx = append(p.tx, frame)
	if len(p.tx) >= rxBatch {
		e.flush(p)
	}
}

func (e *Engine) flushAll() {
	e.flush(e.uplink)
	for _, r := range e.replicas {
		if r.port != nil {
			e.flush(r.port)
		}
	}
}

func (e *Engine) flush(p *port) {
	if len(p.tx) == 0 {
		return
	}
	n, err := p.p.WriteBatch(p.tx)
	for i, b := range p.tx {
		if i < n {
			p.ctr.TxFrames.Add(1)
			p.ctr.TxBytes.Add(uint64(len(b)))
		}
		e.releaseBuf(b)
		p.tx[i] = nil
	}
	if n < len(p.tx) {
		for range len(p.tx) - n {
			e.drop(DropTxError)
		}
	}
	p.tx = p.tx[:0]
	if err != nil && (errors.Is(err, link.ErrPortGone) || errors.Is(err, link.ErrLinkDown)) {
		e.portError(p, err)
	}
}

// optionsLen returns the TCP option bytes h needs.
func optionsLen(h *failover.Header) int {
	n := 0
	if h.Flags.Has(pkt.TCPFlagSyn) {
		if h.MSS > 0 {
			n += 4
		}
		if h.HasTS || h.SACKPermitted {
			n += 12
			if !h.HasTS {
				n -= 8
			}
		}
		if h.WScale >= 0 {
			n += 4
		}
		return n
	}
	if h.HasTS {
		n += 12
	}
	if h.NumSACK > 0 {
		n += 4 + 8*h.NumSACK
	}
	return n
}

// putOptions writes h's options in the order Linux uses.
func putOptions(b []byte, h *failover.Header) int {
	n := 0
	if h.Flags.Has(pkt.TCPFlagSyn) {
		if h.MSS > 0 {
			n += pkt.PutMSS(b[n:], h.MSS)
		}
		switch {
		case h.SACKPermitted && h.HasTS:
			n += pkt.PutSACKPermitted(b[n:])
			n += pkt.PutTimestamp(b[n:], h.TSVal, h.TSEcr)
		case h.HasTS:
			n += pkt.PutNops(b[n:], 2)
			n += pkt.PutTimestamp(b[n:], h.TSVal, h.TSEcr)
		case h.SACKPermitted:
			n += pkt.PutNops(b[n:], 2)
			n += pkt.PutSACKPermitted(b[n:])
		}
		if h.WScale >= 0 {
			n += pkt.PutNops(b[n:], 1)
			n += pkt.PutWScale(b[n:], uint8(h.WScale))
		}
		return n
	}
	if h.HasTS {
		n += pkt.PutNops(b[n:], 2)
		n += pkt.PutTimestamp(b[n:], h.TSVal, h.TSEcr)
	}
	if h.NumSACK > 0 {
		n += pkt.PutNops(b[n:], 2)
		n += pkt.PutSACK(b[n:], h.SACK[:h.NumSACK])
	}
	return n
}

// sendTCP builds and queues the frames for one Header and payload. A payload
// larger than h.GSOSize goes as GSO super-frames on a port with a virtio
// header (the kernel segments and checksums them), or as separate frames
// with software checksums otherwise.
func (e *Engine) sendTCP(p *port, dstMAC, srcMAC pkt.MAC, from, to netip.AddrPort, h *failover.Header, payload []byte) {
	if p == nil {
		e.drop(DropPortDown)
		return
	}
	optLen := optionsLen(h)
	tcpHdr := pkt.TCPMinLen + optLen
	mss := int(h.GSOSize)
	if mss <= 0 || mss > p.p.MTU()-pkt.IPv4MinLen-tcpHdr {
		mss = p.p.MTU() - pkt.IPv4MinLen - tcpHdr
	}
	maxChunk := mss
	if p.vnet {
		// One super-frame carries as many whole segments as fit in an
		// IPv4 packet.
		maxChunk = (65535 - pkt.IPv4MinLen - tcpHdr) / mss * mss
	}
	sq := h.Seq
	for {
		chunk := min(len(payload), maxChunk)
		last := chunk == len(payload)
		flags := h.Flags
		if !last {
			flags &^= pkt.TCPFlagFin | pkt.TCPFlagPsh
		}
		e.buildTCP(p, dstMAC, srcMAC, from, to, h, sq, flags, optLen, payload[:chunk], mss)
		sq += uint32(chunk)
		payload = payload[chunk:]
		if last {
			return
		}
	}
}

func (e *Engine) buildTCP(p *port, dstMAC, srcMAC pkt.MAC, from, to netip.AddrPort, h *failover.Header, sq uint32, flags pkt.TCPFlags, optLen int, payload []byte, mss int) {
	room := p.hdrRoom()
	buf := e.txBuf(p, room+pkt.EthernetLen+pkt.IPv4MinLen+pkt.TCPMinLen+optLen+len(payload))
	ipOff := room + pkt.EthernetLen
	tcpOff := ipOff + pkt.IPv4MinLen
	tcpLen := pkt.TCPMinLen + optLen + len(payload)
	total := pkt.IPv4MinLen + tcpLen
	pkt.EncodeEthernet(buf[room:], dstMAC, srcMAC, pkt.EtherTypeIPv4)
	e.ipID++
	pkt.EncodeIPv4(buf[ipOff:], 0, total, e.ipID, 64, pkt.ProtoTCP, from.Addr(), to.Addr())
	pkt.EncodeTCP(buf[tcpOff:], from.Port(), to.Port(), sq, h.Ack, flags, h.Window, optLen)
	putOptions(buf[tcpOff+pkt.TCPMinLen:], h)
	copy(buf[tcpOff+pkt.TCPMinLen+optLen:], payload)
	t := pkt.TCP(buf[tcpOff : tcpOff+tcpLen])
	if p.vnet {
		vh := pkt.VNetHdr(buf[:room])
		gso, gsoSize := pkt.VNetGSONone, uint16(0)
		if len(payload) > mss {
			gso, gsoSize = pkt.VNetGSOTCPv4, uint16(mss)
		}
		// Let the kernel (or the NIC) finish the checksum.
		vh.Encode(pkt.VNetHdrFlagNeedsCsum, gso, uint16(pkt.EthernetLen+pkt.IPv4MinLen+pkt.TCPMinLen+optLen),
			gsoSize, uint16(pkt.EthernetLen+pkt.IPv4MinLen), 16)
		t.SetChecksum(pkt.PartialTCPChecksum(from.Addr(), to.Addr(), tcpLen))
	} else {
		t.SetChecksum(pkt.TCPChecksum(from.Addr(), to.Addr(), t))
	}
	e.queue(p, buf[:tcpOff+tcpLen])
}

// ToClient implements failover.Output.
func (e *Engine) ToClient(c *failover.Conn, h failover.Header, payload []byte) {
	k := c.Key()
	e.sendTCP(e.uplink, c.ClientMAC, e.vipMAC, k.Service, k.Client, &h, payload)
}

// ToReplica implements failover.Output.
func (e *Engine) ToReplica(c *failover.Conn, m int, h failover.Header, payload []byte) {
	r := e.replicas[c.MemberID(m)]
	if r.port == nil || r.peer.IsZero() {
		e.drop(DropPortDown)
		return
	}
	k := c.Key()
	e.sendTCP(r.port, r.peer, r.port.mac, k.Client, k.Service, &h, payload)
}

// Event implements failover.Output.
func (e *Engine) Event(c *failover.Conn, ev failover.Event) {
	name := func(m int) string {
		if m < 0 {
			return ""
		}
		return e.replicas[c.MemberID(m)].name
	}
	k := c.Key().String()
	switch ev.Kind {
	case failover.EventEstablished:
		if c.Members() < len(e.replicas) {
			// Set up without some replica (down, drained or held at
			// the SYN): one that serves later may join it.
			e.rejoinDirty = true
		}
		e.publish(Event{Time: ev.Time, Kind: EventConnEstablished, Conn: k, Replica: name(ev.Member)})
	case failover.EventFailover:
		e.counters.Failovers.Add(1)
		e.publish(Event{Time: ev.Time, Kind: EventFailover, Conn: k, Replica: name(ev.Member), From: name(ev.From), Reason: ev.Reason.String()})
	case failover.EventFailoverDone:
		e.publish(Event{Time: ev.Time, Kind: EventFailoverDone, Conn: k, Replica: name(ev.Member),
			StallMS: float64(ev.Stall.Microseconds()) / 1000})
	case failover.EventMemberRemoved:
		e.rejoinDirty = true
		e.publish(Event{Time: ev.Time, Kind: EventMemberRemoved, Conn: k, Replica: name(ev.Member), Reason: ev.Reason.String()})
	case failover.EventDiverged:
		e.counters.Divergences.Add(1)
		reason := ""
		if ev.Reason == failover.ReasonTolerated {
			reason = ev.Reason.String()
		}
		e.publish(Event{Time: ev.Time, Kind: EventDiverged, Conn: k, Replica: name(ev.Member), Offset: ev.Offset, Reason: reason})
	case failover.EventStalled:
		e.publish(Event{Time: ev.Time, Kind: EventStalled, Conn: k, Replica: name(ev.Member), Detail: stallDetail[ev.Lag]})
		e.pendingFail = append(e.pendingFail, pendingFailure{id: c.MemberID(ev.Member), reason: failover.ReasonStalled, detail: "stalled (no progress while peers progressed)"})
	case failover.EventJoinStarted:
		e.counters.RejoinsStarted.Add(1)
		e.publish(Event{Time: ev.Time, Kind: EventRejoinStarted, Conn: k, Replica: name(ev.Member)})
	case failover.EventJoinCompleted:
		e.rejoinDirty = true // a join slot is free
		e.counters.RejoinsCompleted.Add(1)
		e.publish(Event{Time: ev.Time, Kind: EventRejoinCompleted, Conn: k, Replica: name(ev.Member)})
	case failover.EventJoinFailed:
		e.rejoinDirty = true // a join slot is free
		e.counters.RejoinsFailed.Add(1)
		e.publish(Event{Time: ev.Time, Kind: EventRejoinFailed, Conn: k, Replica: name(ev.Member), Reason: ev.Reason.String()})
	case failover.EventClosed:
		e.publish(Event{Time: ev.Time, Kind: EventConnClosed, Conn: k, Reason: ev.Reason.String()})
	}
}

var _ failover.Output = (*Engine)(nil)

// stallDetail says, for an EventStalled, how the replica fell behind.
var stallDetail = [...]string{
	failover.LagNone:   "",
	failover.LagOutput: "its output stopped behind its peers'",
	failover.LagAck:    "it stopped acknowledging client data its peers acknowledged",
	failover.LagWindow: "its receive window stayed shut while its peers' were open",
}
