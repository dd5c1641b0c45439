// Package labsvc is ftbridge's deterministic demo TCP service and the client
// helpers that verify it byte for byte.
//
// Every replica behind the box runs the same service; for the box's output
// comparison (and for failover to continue a stream) replicas must produce
// identical bytes for identical input. So nothing the server writes depends
// on time, randomness, addresses or per-process state: the only state is a
// per-connection counter, and all generated data comes from Stream, a pure
// function of (offset, seed): byte i is byte i%8 (little endian) of
// splitmix64's output for counter i/8 (state seed + (i/8+1)*0x9E3779B97F4A7C15).
//
// The protocol is line based; every command ends in "\n" (a trailing "\r"
// is ignored):
//
//	GEN <n> <seed>               write exactly n bytes of Stream(n, seed)
//	PACE <n> <chunk> <ms> <seed> the same bytes, chunk bytes at a time with
//	                             a pause of ms milliseconds between chunks
//	SINK <n>                     read exactly n bytes, reply "<sha256 hex>\n"
//	ECHO <n>                     echo the next n bytes back as they arrive
//	INCR                         reply "<k>\n", k = 1, 2, ... per connection
//	QUIT                         reply "BYE\n", then close the sending side
//	anything else                reply "ERR <reason>\n" and carry on
//
// The client helpers (Download, Upload, Echo, Incr, Quit, RedisIncr) work
// over any net.Conn, so they run unchanged against a replica directly or
// through the box; they set no deadlines (callers do, with SetDeadline) and
// report the longest client-visible stall, the number a failover test cares
// about. NginxConfig and WriteDeterministicFile prepare an nginx replica
// serving the same bytes.
package labsvc
