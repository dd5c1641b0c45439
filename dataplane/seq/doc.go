// Package seq implements TCP sequence-number arithmetic.
//
// TCP sequence and acknowledgment numbers live in a 32-bit space that wraps
// around, so plain integer comparison is wrong as soon as a connection
// crosses 2^32 (which a long-lived or fast connection always does, and which a
// randomised ISN can make happen on the very first segment). Following RFC 793
// section 3.3 and the serial-number arithmetic of RFC 1982, two values are
// compared by the sign of their 32-bit difference: v is before w when
// int32(v-w) < 0. This is only meaningful while the two values are within 2^31
// of each other, which TCP's window limits guarantee for live connections.
package seq
