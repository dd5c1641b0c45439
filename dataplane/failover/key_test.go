package failover

import (
	"net/netip"
	"testing"
	"unsafe"
)

func TestConnKeyRoundTrip(t *testing.T) {
	for _, k := range []Key{
		{Client: netip.MustParseAddrPort("192.0.2.10:40000"), Service: netip.MustParseAddrPort("198.51.100.1:80")},
		{Client: netip.MustParseAddrPort("0.0.0.1:1"), Service: netip.MustParseAddrPort("255.255.255.255:65535")},
		{Client: netip.MustParseAddrPort("[2001:db8::1]:40000"), Service: netip.MustParseAddrPort("[2001:db8::80]:80")},
		{Client: netip.MustParseAddrPort("[::ffff:192.0.2.1]:5"), Service: netip.MustParseAddrPort("198.51.100.1:80")},
		{Client: netip.MustParseAddrPort("[fe80::1%eth0]:7"), Service: netip.MustParseAddrPort("[fe80::2%eth0]:8")},
	} {
		p := packKey(k)
		if got := p.unpack(); got != k {
			t.Errorf("packKey(%v).unpack() = %v", k, got)
		}
		if k.Client.Addr().Is4() && k.Service.Addr().Is4() && p.wide != nil {
			t.Errorf("IPv4 key %v kept wide", k)
		}
	}
}

// TestConnStateSize keeps the per-connection structs from growing into the
// next allocator size class unnoticed: they are the box's memory per
// connection (docs/bench/notes.md).
func TestConnStateSize(t *testing.T) {
	if s := unsafe.Sizeof(Conn{}); s > 480 {
		t.Errorf("Conn is %d bytes, was 480 (size class 480)", s)
	}
	if s := unsafe.Sizeof(member{}); s > 208 {
		t.Errorf("member is %d bytes, was 208 (two fit the 416-byte size class)", s)
	}
}
