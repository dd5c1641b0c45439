package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ftbridge/ftbridge/integration/demo"
	"github.com/ftbridge/ftbridge/integration/labsvc"
)

func init() {
	commands["demo"] = command{"run the lab demo: stream through the box while the primary is killed (needs root)", runDemo}
	// The demo's replicas run this binary's copy of the demo service.
	commands["lab-server"] = command{"", func(args []string) int { return labsvc.Main(args) }}
}

func runDemo(args []string) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	size := fs.Int64("size", 24<<20, "bytes the client downloads")
	killAfter := fs.Duration("kill-after", 1500*time.Millisecond, "when the primary's server is killed")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	_, err := demo.Run(ctx, demo.Options{Size: *size, KillAfter: *killAfter, Out: stdout})
	if err != nil {
		fmt.Fprintf(stderr, "ftbridge demo: %v\n", err)
		return 1
	}
	return 0
}
