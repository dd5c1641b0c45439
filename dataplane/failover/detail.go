package failover

import (
	"fmt"
	"strings"
	"time"
)

// Detail describes the connection's sequence state for an operator
// looking at a stuck or surprising connection: where the release point,
// the client's ACK and window, and each member's output, ACK and window
// stand, as offsets from the start of each direction, and which gray-
// failure clocks run. It allocates; it is for the management plane.
func (c *Conn) Detail(now time.Time) string {
	var b strings.Builder
	vo := func(x uint32) int64 { return int64(int32(x - uint32(c.vISN) - 1)) }
	co := func(x uint32) int64 { return int64(int32(x - uint32(c.cISN) - 1)) }
	fmt.Fprintf(&b, "out: released=%d held=[%d,%d) client-ack=%d client-edge=%d fin-sent=%t", vo(uint32(c.rel)),
		vo(uint32(c.out.base)), vo(uint32(c.out.end())), vo(uint32(c.cAck)), vo(uint32(c.cEdge)), c.finSent)
	fmt.Fprintf(&b, "; in: client-next=%d acked=%d shown-edge=%d client-fin=%t", co(uint32(c.cNxt)),
		co(uint32(c.ackSent)), co(uint32(c.edgeSent)), c.cFin)
	for i := range c.members {
		m := &c.members[i]
		fmt.Fprintf(&b, "; m%d(%s): out=%d sent=%d ack=%d edge=%d", i, m.state, vo(uint32(m.contig)),
			vo(uint32(m.sndNxt)-m.delta), co(uint32(m.ack)), co(uint32(m.edge)))
		if m.fin {
			fmt.Fprintf(&b, " fin=%d", vo(uint32(m.finSeq)))
		}
		if len(m.ooo) > 0 {
			n := 0
			for _, o := range m.ooo {
				n += len(o.data)
			}
			fmt.Fprintf(&b, " ahead=%d/%dB", len(m.ooo), n)
		}
		for _, t := range [...]struct {
			name string
			at   time.Time
		}{{"out", m.outBehind}, {"ack", m.ackBehind}, {"win", m.winBehind}} {
			if !t.at.IsZero() {
				fmt.Fprintf(&b, " %s-behind=%v", t.name, now.Sub(t.at).Round(time.Millisecond))
			}
		}
	}
	return b.String()
}

var memberStateNames = [...]string{"syn-sent", "syn-acked", "live", "gone", "joining"}

// String returns the member state's name.
func (s memberState) String() string {
	if int(s) < len(memberStateNames) {
		return memberStateNames[s]
	}
	return fmt.Sprintf("member-state(%d)", s)
}
