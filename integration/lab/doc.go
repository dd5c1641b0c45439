// Package lab builds the network-namespace test lab for ftbridge: one client
// namespace, one box namespace and N replica namespaces, wired with veth
// pairs so that the box namespace sits on every path, exactly like the
// appliance sits between clients and replicas.
//
//	client ns            box ns                replica i ns
//	eth0 198.18.0.1/24 ── up0   (no IP)
//	                      rp<i> (no IP) ────── eth0 198.18.0.10/24 (the VIP)
//
// Every replica carries the same address (the VIP); each sits alone on its
// own box port, so identical addresses never meet on one wire. Without a
// bridging program in the box namespace the client and the replicas are not
// connected at all: the box ports have no address and there is no bridge.
//
// Namespaces on one machine share the kernel's secrets (ISN and timestamp
// offset keys), which hides translation bugs that separate hosts expose. So,
// unless Options.NoVary is set, replica 1 runs with tcp_timestamps=2 (no
// random offset) and another tcp_rmem (another window scale) and replica 2
// with SACK off.
//
// # Impaired links
//
// The kernel may lack tc netem, so links can instead get an impairment
// point (Options.Impaired, naming links by their box port): the link then
// runs through one more namespace, <Name>-imp-<port>, holding two
// interfaces, tohost (facing the client's or replica's eth0) and tobox
// (facing the box port), and a forwarder process, the impair command, that
// copies frames between them with AF_PACKET sockets:
//
//	client ns        <Name>-imp-up0 ns           box ns
//	eth0 ─────────── tohost ⇄ impair ⇄ tobox ─── up0
//
// Interface names, addresses and MACs the other namespaces see are those
// of an unimpaired lab, so dataplane configurations do not change. Impair
// sets loss, duplication, delay and jitter, reordering and a rate per
// direction while traffic flows, ClearImpair removes them, and ImpairStats
// returns the forwarder's counters so that a test can check that the
// impairment really happened (package
// github.com/ftbridge/ftbridge/integration/impair has the details):
//
//	l, _ := lab.New(lab.Options{Impaired: []string{"up0", "rp0"}})
//	l.Impair("up0", impair.Spec{Loss: 0.05, Delay: 20 * time.Millisecond})
//	l.Impair("rp0", impair.Spec{Dir: impair.ToBox, Reorder: 0.1})
//	st, _ := l.ImpairStats("up0") // st.Total().Lost > 0 after traffic
//
// The point passes administrative state through (SetLink on either end
// takes the far end's carrier away), and DeleteNS of the host or the box
// removes it, so faults look as they do on a direct veth pair.
//
// Everything a Lab creates carries a per-lab random name, uses only
// addresses in 198.18.0.0/15, and is removed by Close: recorded processes
// are killed, namespaces and leftover temporary veths are deleted. Processes
// are only ever signalled by the PIDs (and their own process groups) that
// the lab started and recorded, never by name.
//
// All functions need root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and the ip and
// tc commands of iproute2.
package lab
