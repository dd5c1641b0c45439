// Package impair is a userspace link impairer for the ftbridge lab: the
// stand-in for tc netem on kernels built without CONFIG_NET_SCH_NETEM.
//
// A Forwarder joins two interfaces of one network namespace, one facing a
// host (the client or a replica) and one facing the box, with AF_PACKET
// sockets (dataplane/link ports with virtio_net_hdr, so GSO super-frames
// and partial checksums pass through unchanged), and applies a Spec to
// each direction:
//
//   - Loss, Duplicate: per-frame probabilities;
//   - Delay and Jitter: uniform in [Delay-Jitter, Delay+Jitter], frames
//     keeping their order;
//   - Reorder: a frame is held back until ReorderGap later frames have
//     passed it (or ReorderHold after its due time on a quiet link);
//   - RateBps: a serialising bottleneck;
//   - Limit: the queue bound (frames beyond it are dropped as Overflow).
//
// While Loss, Duplicate or Reorder is on, TCP super-frames are first split
// into the MSS-sized segments a wire would carry, so that those decisions
// hit packets. Decisions come from a seeded generator (Spec.Seed, default
// DefaultSeed), so a run over the same frames repeats exactly. Counters
// (forwarded, lost, duplicated, reordered, delayed, overflow, ...) show
// what the impairment did.
//
// # In the lab
//
// Tests normally use the forwarder through the lab (package
// integration/lab): Options.Impaired names the links, by box port, that get
// an impairment point, a namespace between the host's eth0 and the box
// port running the impair command (cmd/impair). Then:
//
//	l, err := lab.New(lab.Options{Replicas: 2, Impaired: []string{"up0", "rp0"}})
//	...
//	// 5% loss and 20ms delay both ways on the client link.
//	err = l.Impair("up0", impair.Spec{Loss: 0.05, Delay: 20 * time.Millisecond})
//	// Replica 0's responses reordered; its other direction untouched.
//	err = l.Impair("rp0", impair.Spec{Dir: impair.ToBox, Reorder: 0.1})
//	...
//	st, err := l.ImpairStats("up0")
//	if st.Total().Lost == 0 { t.Error("no loss happened") }
//	err = l.ClearImpair("up0")
//
// Directions are named from the box: ToBox is host → box, FromBox is box →
// host. A Spec with Dir Both sets both; otherwise only the named direction
// changes. The zero Spec clears. A change applies to frames arriving from
// then on: frames already delayed keep their times and new frames never
// overtake them, so a change itself reorders nothing.
//
// Building a lab with impaired links compiles the command with the go tool
// unless Options.ImpairBin names a binary; tests that build many labs call
// Build once (e.g. in TestMain) and pass its result.
//
// # Control
//
// The command listens on a unix socket; Control is its client. The protocol
// is one JSON object per line each way:
//
//	{"op":"set","spec":{"dir":"to-box","loss":0.05,"delay":"20ms"}}
//	{"op":"stats"}
//
// and each answer is {"stats":{...}} or {"error":"..."}. SIGUSR1 makes the
// command print its counters to stderr (its lab log); it prints them again
// when it exits.
//
// # Limits
//
// Timers have millisecond resolution (poll(2)), so a delay is accurate to
// about a millisecond and a rate limit releases frames in millisecond
// bursts. Each direction runs on one goroutine. One TCP stream through a
// forwarder on the 2-core lab VM, under load, ran at about 2.5 Gbit/s
// clear, 3 Gbit/s delayed and 1 Gbit/s while super-frames are split. UDP
// GSO frames are never split. The forwarder carries every frame, whatever
// its protocol, and adds no frames of its own; frames a veth drops after
// accepting them (its per-CPU backlog is shared with the whole machine)
// are counted as forwarded.
package impair
