package engine

import (
	"encoding/binary"
	"net/netip"

	"golang.org/x/net/bpf"
)

// Flow affinity. With several loops every port has one socket per loop,
// each with a classic BPF filter that accepts a disjoint share of the
// port's frames: a TCP segment goes to loop flowHash % loops, everything
// else (ARP, ICMP, fragments, frames too short to classify, answers to the
// box's own probes) to loop 0, which also runs the health probes.
//
// The box does not rewrite addresses: a connection's segments carry the
// same two addresses and ports on the uplink and on every replica port,
// in one order or the other. The hash is an XOR of the four, symmetric in
// source and destination, so both directions of a connection, from every
// port, reach the same loop, and that loop owns the connection's state
// without locks. The kernel's own fanout hash (PACKET_FANOUT_HASH) would
// do the same but maps a hash to a socket by the order the sockets
// joined, which a port reopened by one loop would reshuffle; a filter per
// socket has no such coupling.

// shardAcceptLen is what an accepting filter returns: the frame's length,
// capped far above any frame (the whole frame is delivered).
const shardAcceptLen = 0x40000

// shardMix is 2^32 divided by the golden ratio, odd.
const shardMix = 0x9e3779b1

// Offsets in an untagged Ethernet frame carrying IPv4.
const (
	offEtherType = 12
	offIPv4      = 14
	offIPFlags   = offIPv4 + 6
	offIPProto   = offIPv4 + 9
	offIPSrc     = offIPv4 + 12
	offIPDst     = offIPv4 + 16
	// minClassify: Ethernet and a minimal IPv4 header.
	minClassify = offIPv4 + 20
)

// shardFilter returns the socket filter of loop index out of loops: it
// accepts exactly the frames shardOf assigns to index.
func shardFilter(index, loops int, probeSrc netip.Addr) []bpf.RawInstruction {
	other := bpf.RetConstant{Val: 0}
	if index == 0 {
		other = bpf.RetConstant{Val: shardAcceptLen}
	}
	probe := probeWord(probeSrc)
	// Jump targets are written as labels and resolved below: cBPF jumps
	// are relative, and counting them by hand is how filters go wrong.
	const (
		lOther = iota + 1
		lAccept
		lReject
	)
	type jump struct {
		in           bpf.Instruction
		skipT, skipF int // labels (0: fall through)
	}
	prog := []jump{
		{in: bpf.LoadExtension{Num: bpf.ExtLen}},
		{in: bpf.JumpIf{Cond: bpf.JumpLessThan, Val: minClassify}, skipT: lOther},
		{in: bpf.LoadAbsolute{Off: offEtherType, Size: 2}},
		{in: bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 0x0800}, skipT: lOther},
		{in: bpf.LoadAbsolute{Off: offIPProto, Size: 1}},
		{in: bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 6}, skipT: lOther},
		{in: bpf.LoadAbsolute{Off: offIPFlags, Size: 2}},
		{in: bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 0x1fff}, skipT: lOther}, // a later fragment: no ports
		{in: bpf.LoadAbsolute{Off: offIPDst, Size: 4}},
		{in: bpf.JumpIf{Cond: bpf.JumpEqual, Val: probe}, skipT: lOther}, // a probe's answer
		{in: bpf.TAX{}},
		{in: bpf.LoadAbsolute{Off: offIPSrc, Size: 4}},
		{in: bpf.ALUOpX{Op: bpf.ALUOpXor}},
		{in: bpf.StoreScratch{Src: bpf.RegA, N: 0}}, // M[0] = src ^ dst
		// The ports must lie inside the frame: len - 18 >= 4*IHL.
		{in: bpf.LoadMemShift{Off: offIPv4}}, // X = 4*IHL
		{in: bpf.LoadExtension{Num: bpf.ExtLen}},
		{in: bpf.ALUOpConstant{Op: bpf.ALUOpSub, Val: offIPv4 + 4}},
		{in: bpf.JumpIfX{Cond: bpf.JumpLessThan}, skipT: lOther},
		{in: bpf.LoadIndirect{Off: offIPv4, Size: 2}}, // source port
		{in: bpf.StoreScratch{Src: bpf.RegA, N: 1}},
		{in: bpf.LoadIndirect{Off: offIPv4 + 2, Size: 2}}, // destination port
		{in: bpf.LoadScratch{Dst: bpf.RegX, N: 1}},
		{in: bpf.ALUOpX{Op: bpf.ALUOpXor}},
		{in: bpf.LoadScratch{Dst: bpf.RegX, N: 0}},
		{in: bpf.ALUOpX{Op: bpf.ALUOpXor}},
		// Mix (Fibonacci hashing: the high half of the product depends on
		// every bit): the XOR alone keeps the parity patterns of clients
		// whose addresses and ports step together.
		{in: bpf.ALUOpConstant{Op: bpf.ALUOpMul, Val: shardMix}},
		{in: bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 16}},
		{in: bpf.ALUOpConstant{Op: bpf.ALUOpMod, Val: uint32(loops)}},
		{in: bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(index)}, skipT: lAccept, skipF: lReject},
	}
	// The tail: other, accept, reject.
	labels := map[int]int{lOther: len(prog), lAccept: len(prog) + 1, lReject: len(prog) + 2}
	tail := []bpf.Instruction{other, bpf.RetConstant{Val: shardAcceptLen}, bpf.RetConstant{Val: 0}}
	out := make([]bpf.Instruction, 0, len(prog)+len(tail))
	for i, j := range prog {
		switch in := j.in.(type) {
		case bpf.JumpIf:
			if j.skipT != 0 {
				in.SkipTrue = uint8(labels[j.skipT] - i - 1)
			}
			if j.skipF != 0 {
				in.SkipFalse = uint8(labels[j.skipF] - i - 1)
			}
			out = append(out, in)
		case bpf.JumpIfX:
			if j.skipT != 0 {
				in.SkipTrue = uint8(labels[j.skipT] - i - 1)
			}
			out = append(out, in)
		default:
			out = append(out, j.in)
		}
	}
	out = append(out, tail...)
	raw, err := bpf.Assemble(out)
	if err != nil {
		panic("engine: shard filter does not assemble: " + err.Error()) // a bug here, not bad input
	}
	return raw
}

// shardOf returns the loop, out of loops, whose socket filter accepts
// frame b (an Ethernet frame without virtio header). It is the filter's
// reference: tests run both over the same frames.
func shardOf(b []byte, loops int, probeSrc netip.Addr) int {
	if len(b) < minClassify || binary.BigEndian.Uint16(b[offEtherType:]) != 0x0800 || b[offIPProto] != 6 ||
		binary.BigEndian.Uint16(b[offIPFlags:])&0x1fff != 0 {
		return 0
	}
	dst := binary.BigEndian.Uint32(b[offIPDst:])
	if dst == probeWord(probeSrc) {
		return 0
	}
	ihl := int(b[offIPv4]&0xf) * 4
	if len(b)-(offIPv4+4) < ihl {
		return 0
	}
	ports := binary.BigEndian.Uint16(b[offIPv4+ihl:]) ^ binary.BigEndian.Uint16(b[offIPv4+ihl+2:])
	v := binary.BigEndian.Uint32(b[offIPSrc:]) ^ dst ^ uint32(ports)
	v = (v * shardMix) >> 16
	return int(v % uint32(loops))
}

// probeWord is the probe source as the filter compares it (0 when unset:
// no frame is addressed to 0.0.0.0 but a malformed one, which loop 0
// counts).
func probeWord(a netip.Addr) uint32 {
	if !a.Is4() {
		return 0
	}
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}
