package pkt

import "encoding/binary"

// TCP option kinds (RFC 793, RFC 7323, RFC 2018, RFC 7413 and the
// experimental TFO encoding of RFC 6994 that older stacks still send).
const (
	OptEnd           = 0
	OptNop           = 1
	OptMSS           = 2
	OptWScale        = 3
	OptSACKPermitted = 4
	OptSACK          = 5
	OptTimestamp     = 8
	OptFastOpen      = 34
	OptFastOpenExp   = 254
)

// Fixed option lengths, kind and length bytes included.
const (
	OptMSSLen           = 4
	OptWScaleLen        = 3
	OptSACKPermittedLen = 2
	OptTimestampLen     = 10
)

// fastOpenExpMagic is the RFC 6994 experiment identifier that marks a kind
// 254 option as TCP Fast Open.
const fastOpenExpMagic = 0xF989

// maxSACKBlocks is the most SACK blocks that fit in 40 bytes of options.
const maxSACKBlocks = 4

// SACKBlock is one selective acknowledgment block: the bytes Left up to but
// not including Right have been received.
type SACKBlock struct {
	Left, Right uint32
}

// TCPOptions is the parsed form of a TCP option list. The offsets are byte
// offsets into the option slice that was parsed (-1 when the option is
// absent) so that callers can rewrite values in place or strip an option with
// NopOut.
type TCPOptions struct {
	// MSS is the maximum segment size (kind 2), valid when HasMSS.
	MSS    uint16
	HasMSS bool
	// WScale is the window scale shift (kind 3), valid when HasWScale. It
	// is reported as sent; RFC 7323 says to clamp values above 14.
	WScale    uint8
	HasWScale bool
	// SACKPermitted is set when the SACK-permitted option (kind 4) is
	// present.
	SACKPermitted bool
	// HasTimestamp is set when a timestamp option (kind 8) is present;
	// TSVal and TSEcr are its values and TimestampOffset the offset of its
	// kind byte.
	HasTimestamp    bool
	TSVal, TSEcr    uint32
	TimestampOffset int
	// SACK holds NumSACK blocks from the SACK option (kind 5); SACKOffset
	// is the offset of its kind byte.
	SACK       [4]SACKBlock
	NumSACK    int
	SACKOffset int
	// FastOpen is set for a TCP Fast Open option, either kind 34 or the
	// experimental kind 254 carrying the 0xF989 magic. FastOpenOffset is the
	// offset of its kind byte and FastOpenLen the whole option length (kind
	// and length bytes, magic and cookie included), so that
	// NopOut(opts, o.FastOpenOffset, o.FastOpenLen) strips it.
	FastOpen       bool
	FastOpenOffset int
	FastOpenLen    int
}

// reset clears o and marks every offset absent.
func (o *TCPOptions) reset() {
	*o = TCPOptions{TimestampOffset: -1, SACKOffset: -1, FastOpenOffset: -1}
}

// ParseTCPOptions parses the option list opts (TCP.Options) into o, which is
// reset first. Parsing stops at an End-of-Option-List byte; what follows it
// is padding. Unknown kinds are skipped by their length, and a repeated
// option is not an error: the last one wins, as in Linux.
//
// It returns ErrBadOption when a non-NOP, non-EOL kind has no length byte or
// a length below 2, when an option runs past the end of opts, and when a
// known option has the wrong length: MSS != 4, window scale != 3,
// SACK-permitted != 2, timestamp != 10, or SACK other than 2+8n with
// 1 <= n <= 4. On error, o holds whatever was parsed before the bad option.
// It never panics and never allocates.
func ParseTCPOptions(opts []byte, o *TCPOptions) error {
	o.reset()
	for i := 0; i < len(opts); {
		kind := opts[i]
		switch kind {
		case OptEnd:
			return nil
		case OptNop:
			i++
			continue
		}
		if i+1 >= len(opts) {
			return ErrBadOption
		}
		l := int(opts[i+1])
		if l < 2 || l > len(opts)-i {
			return ErrBadOption
		}
		body := opts[i+2 : i+l]
		switch kind {
		case OptMSS:
			if l != OptMSSLen {
				return ErrBadOption
			}
			o.MSS = binary.BigEndian.Uint16(body)
			o.HasMSS = true
		case OptWScale:
			if l != OptWScaleLen {
				return ErrBadOption
			}
			o.WScale = body[0]
			o.HasWScale = true
		case OptSACKPermitted:
			if l != OptSACKPermittedLen {
				return ErrBadOption
			}
			o.SACKPermitted = true
		case OptTimestamp:
			if l != OptTimestampLen {
				return ErrBadOption
			}
			o.TSVal = binary.BigEndian.Uint32(body[0:4])
			o.TSEcr = binary.BigEndian.Uint32(body[4:8])
			o.HasTimestamp = true
			o.TimestampOffset = i
		case OptSACK:
			n := len(body) / 8
			if len(body)%8 != 0 || n < 1 || n > maxSACKBlocks {
				return ErrBadOption
			}
			for j := 0; j < n; j++ {
				o.SACK[j] = SACKBlock{
					Left:  binary.BigEndian.Uint32(body[j*8:]),
					Right: binary.BigEndian.Uint32(body[j*8+4:]),
				}
			}
			// Clear blocks left over from an earlier duplicate so that
			// the result does not depend on what was overwritten.
			for j := n; j < maxSACKBlocks; j++ {
				o.SACK[j] = SACKBlock{}
			}
			o.NumSACK = n
			o.SACKOffset = i
		case OptFastOpen:
			o.FastOpen = true
			o.FastOpenOffset = i
			o.FastOpenLen = l
		case OptFastOpenExp:
			// Kind 254 is shared by all RFC 6994 experiments; only the
			// TFO magic makes it Fast Open, anything else is skipped.
			if len(body) >= 2 && binary.BigEndian.Uint16(body) == fastOpenExpMagic {
				o.FastOpen = true
				o.FastOpenOffset = i
				o.FastOpenLen = l
			}
		}
		i += l
	}
	return nil
}

// PutMSS writes an MSS option at b[0:] and returns its length, 4.
func PutMSS(b []byte, mss uint16) int {
	_ = b[OptMSSLen-1]
	b[0] = OptMSS
	b[1] = OptMSSLen
	binary.BigEndian.PutUint16(b[2:], mss)
	return OptMSSLen
}

// PutWScale writes a window scale option at b[0:] and returns its length, 3.
func PutWScale(b []byte, shift uint8) int {
	_ = b[OptWScaleLen-1]
	b[0] = OptWScale
	b[1] = OptWScaleLen
	b[2] = shift
	return OptWScaleLen
}

// PutSACKPermitted writes a SACK-permitted option at b[0:] and returns its
// length, 2.
func PutSACKPermitted(b []byte) int {
	_ = b[OptSACKPermittedLen-1]
	b[0] = OptSACKPermitted
	b[1] = OptSACKPermittedLen
	return OptSACKPermittedLen
}

// PutTimestamp writes a timestamp option at b[0:] and returns its length, 10.
func PutTimestamp(b []byte, val, ecr uint32) int {
	_ = b[OptTimestampLen-1]
	b[0] = OptTimestamp
	b[1] = OptTimestampLen
	binary.BigEndian.PutUint32(b[2:], val)
	binary.BigEndian.PutUint32(b[6:], ecr)
	return OptTimestampLen
}

// PutSACK writes a SACK option with the given blocks at b[0:] and returns
// its length, 2+8*len(blocks). It writes at most four blocks, the most a
// TCP header can carry; the caller is expected to have trimmed the list.
func PutSACK(b []byte, blocks []SACKBlock) int {
	if len(blocks) > maxSACKBlocks {
		blocks = blocks[:maxSACKBlocks]
	}
	n := 2 + 8*len(blocks)
	_ = b[n-1]
	b[0] = OptSACK
	b[1] = byte(n)
	for i, blk := range blocks {
		binary.BigEndian.PutUint32(b[2+i*8:], blk.Left)
		binary.BigEndian.PutUint32(b[6+i*8:], blk.Right)
	}
	return n
}

// PutFastOpen writes a kind 34 TCP Fast Open option carrying cookie (empty
// for a cookie request) at b[0:] and returns its length, 2+len(cookie).
func PutFastOpen(b []byte, cookie []byte) int {
	n := 2 + len(cookie)
	_ = b[n-1]
	b[0] = OptFastOpen
	b[1] = byte(n)
	copy(b[2:n], cookie)
	return n
}

// PutNops writes n NOP bytes at b[0:] and returns n. NOPs are used to align
// options and to pad the option list to a multiple of four.
func PutNops(b []byte, n int) int {
	b = b[:n]
	for i := range b {
		b[i] = OptNop
	}
	return n
}

// NopOut overwrites opts[off:off+n] with NOP bytes. Replacing an option with
// NOPs removes it without moving the rest of the header, so the data offset
// stays valid; the TCP checksum must be updated by the caller.
func NopOut(opts []byte, off, n int) {
	PutNops(opts[off:], n)
}
