// Command ftbench measures ftbridge side by side with kernel routing and
// HAProxy on the project's network-namespace lab, and writes
// docs/benchmarks.md with the numbers, their ratios and PNG plots in
// docs/bench/.
//
//	go run ./cmd/ftbench            # full run, under 15 minutes
//	go run ./cmd/ftbench -quick     # a few minutes
//	go run ./cmd/ftbench -only bulk,rr -topos kernel,ftbridge-2
//
// In one run it measures bulk TCP throughput (1 and 4 streams, both
// directions, with its own deterministic load and an iperf3 cross-check),
// 64-byte request/response rate and round-trip percentiles, new connections
// per second, the box's memory per open connection, the client-visible
// stall over repeated failovers per fault kind, box CPU per Gbit, and a
// perf profile of ftbridged.
//
// The same binary is also the load server run in every replica namespace
// ("ftbench serve") and the load client run in the client namespace
// ("ftbench load"): the server's output is a function of the stream offset
// alone, so every replica produces the same bytes, which replicating through
// the box requires. It needs root.
package main
