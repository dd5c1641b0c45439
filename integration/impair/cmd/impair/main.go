// Command impair is the userspace link impairer of the ftbridge lab: it
// forwards Ethernet frames between two interfaces of its network namespace
// and impairs each direction (loss, duplication, delay and jitter,
// reordering, rate) as told through a unix control socket. It stands in for
// tc netem on kernels without CONFIG_NET_SCH_NETEM.
//
// Usage (normally started by the lab inside an impairment namespace):
//
//	impair -host tohost -box tobox -ctl /tmp/lab/impair-up0.sock [-spec '{"loss":0.05}']
//
// SIGUSR1 prints the counters to stderr; SIGTERM and SIGINT print them and
// exit 0. The exit status is 1 when an interface disappears or a port fails.
// See package github.com/ftbridge/ftbridge/integration/impair.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/ftbridge/ftbridge/integration/impair"
)

func main() {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	log.SetPrefix("impair: ")
	host := flag.String("host", "", "interface facing the client or replica (required)")
	box := flag.String("box", "", "interface facing the box (required)")
	ctl := flag.String("ctl", "", "unix socket path for control requests (required)")
	spec := flag.String("spec", "", "initial spec as JSON, e.g. '{\"loss\":0.05,\"delay\":\"20ms\"}'")
	flag.Parse()
	if *host == "" || *box == "" || *ctl == "" || flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*host, *box, *ctl, *spec); err != nil {
		log.Print(err)
		os.Exit(1)
	}
}

func run(host, box, ctl, initial string) error {
	f, err := impair.New(host, box)
	if err != nil {
		return err
	}
	defer f.Close()
	if initial != "" {
		var s impair.Spec
		if err := json.Unmarshal([]byte(initial), &s); err != nil {
			return err
		}
		if err := f.Set(s); err != nil {
			return err
		}
		log.Printf("spec %v", s)
	}
	// A socket left by a killed predecessor would make Listen fail; only
	// a socket is removed, never a file someone put there.
	if st, err := os.Lstat(ctl); err == nil && st.Mode().Type() == fs.ModeSocket {
		os.Remove(ctl)
	}
	ln, err := net.Listen("unix", ctl)
	if err != nil {
		return err
	}
	defer ln.Close()
	// The control socket exists only once both ports are open, so a lab
	// waiting for it knows no frame is missed from then on: frames that
	// arrive before Run starts wait in the sockets' buffers.
	go impair.Serve(ln, logged{f})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1)
	go func() {
		for sig := range sigs {
			printStats(f)
			if sig != syscall.SIGUSR1 {
				cancel()
				return
			}
		}
	}()
	log.Printf("forwarding %s <-> %s, control %s", host, box, ctl)
	err = f.Run(ctx)
	if err != nil && !errors.Is(err, context.Canceled) {
		printStats(f)
		return err
	}
	return nil
}

// logged records every spec change in the log, so that a test's failure
// output shows what the link was doing.
type logged struct{ f *impair.Forwarder }

func (l logged) Set(s impair.Spec) error {
	err := l.f.Set(s)
	if err != nil {
		log.Printf("spec %v refused: %v", s, err)
	} else {
		log.Printf("spec %v", s)
	}
	return err
}

func (l logged) Stats() impair.Stats { return l.f.Stats() }

func printStats(f *impair.Forwarder) {
	b, _ := json.Marshal(f.Stats())
	fmt.Fprintf(os.Stderr, "impair: stats %s\n", b)
}
