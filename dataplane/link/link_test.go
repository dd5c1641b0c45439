package link

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestVNetHeaderRoundTrip(t *testing.T) {
	h := VNetHeader{Flags: VNetFlagNeedsCsum, GSOType: VNetGSOTCPv6 | VNetGSOECN, HdrLen: 74, GSOSize: 1440, CsumStart: 54, CsumOffset: 16}
	b := make([]byte, VNetHdrLen+1)
	b[VNetHdrLen] = 0xaa
	h.Encode(b)
	if got := DecodeVNetHeader(b); got != h {
		t.Errorf("round trip: got %+v, want %+v", got, h)
	}
	if b[0] != VNetFlagNeedsCsum || b[1] != VNetGSOTCPv6|VNetGSOECN || b[VNetHdrLen] != 0xaa {
		t.Errorf("encoded bytes %x: flags and GSO type must lead, and nothing past the header may change", b)
	}
}

func TestPortError(t *testing.T) {
	e := &PortError{Op: "read", Port: "eth9", Kind: ErrPortGone, Err: io.ErrUnexpectedEOF}
	if !errors.Is(e, ErrPortGone) || !errors.Is(e, io.ErrUnexpectedEOF) || errors.Is(e, ErrLinkDown) {
		t.Errorf("errors.Is does not see exactly the kind and the cause of %v", e)
	}
	if s := e.Error(); !strings.Contains(s, "eth9") || !strings.Contains(s, "read") {
		t.Errorf("Error() = %q, want the op and the interface named", s)
	}
}
