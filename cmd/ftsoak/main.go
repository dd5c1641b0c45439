// Command ftsoak is ftbridge's soak and chaos runner. It builds a lab of
// network namespaces, runs the demo service on every replica and ftbridged
// in the box, keeps many verified client connections of mixed kinds busy
// through the service address while it injects faults (kill -9, SIGSTOP,
// link flaps, namespace deletion, loss, duplication, reordering, delay),
// and writes a report (markdown and JSON):
//
//	go run ./cmd/ftsoak -duration 5m -replicas 3 -seed 7
//
// It needs root. It stops by itself after -duration (or -max-faults
// faults); Ctrl-C ends it early, still tearing the lab down and writing
// the report. The exit status is 0 when the run passed (no stream lost,
// duplicated or reset a byte, the daemon's memory came back), 1 when it
// did not, 2 on a usage error.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ftbridge/ftbridge/integration/soak"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ftsoak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg soak.Config
	fs.DurationVar(&cfg.Duration, "duration", 5*time.Minute, "how long traffic and faults run")
	fs.IntVar(&cfg.Replicas, "replicas", 2, "number of replicas (2..8)")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the fault schedule and the traffic")
	fs.IntVar(&cfg.MaxFaults, "max-faults", 10000, "stop after this many faults")
	fs.DurationVar(&cfg.FaultGap, "fault-gap", time.Second, "mean pause between one fault's recovery and the next fault")
	fs.IntVar(&cfg.Workers, "workers", 12, "concurrent client sessions (downloads, uploads, echoes, request/response)")
	fs.IntVar(&cfg.Idle, "idle", 4, "long-lived idle connections (INCR now and then)")
	fs.BoolVar(&cfg.Redis, "redis", false, "also run redis-server on every replica and verify INCR sessions against it")
	faults := fs.String("faults", "", "comma-separated fault kinds to use, with optional weights (kill9=4,sigstop), \"crash\" for the crash kinds only, or none; default: all")
	out := fs.String("out", "docs/soak", "directory for the report")
	name := fs.String("name", "", "report file name without extension (default soak-<replicas>r-<date>)")
	keepLog := fs.Bool("keep-log", false, "also keep the daemon's full log next to the report")
	fs.DurationVar(&cfg.Settle, "settle", 150*time.Second, "how long the daemon's memory may take to come back after the traffic")
	rejoin := fs.String("rejoin", "", "the service's rejoin setting (auto, manual, new-only; default: the daemon's)")
	release := fs.String("release", "", "the service's release policy (matched, immediate; default: the daemon's)")
	fs.IntVar(&cfg.Loops, "loops", 0, "the daemon's dataplane loops (default: the daemon's, one per core beyond two)")
	fs.BoolVar(&cfg.NoImpair, "no-impair", false, "plain links: no impairment points, no loss/duplication/reordering/delay faults")
	quiet := fs.Bool("q", false, "no progress lines")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "ftsoak: unexpected arguments %q\n", fs.Args())
		return 2
	}
	switch *faults {
	case "":
	case "none":
		cfg.Faults = map[string]int{}
	case "crash":
		cfg.Faults = soak.CrashFaults()
	default:
		m, err := parseFaults(*faults)
		if err != nil {
			fmt.Fprintf(stderr, "ftsoak: -faults: %v\n", err)
			return 2
		}
		cfg.Faults = m
	}
	if !*quiet {
		cfg.Progress = stdout
	}
	cfg.Service = map[string]any{}
	if *rejoin != "" {
		cfg.Service["rejoin"] = *rejoin
	}
	if *release != "" {
		cfg.Service["release"] = *release
	}
	if *name == "" {
		*name = fmt.Sprintf("soak-%dr-%s", cfg.Replicas, time.Now().UTC().Format("20060102-150405"))
	}
	if *keepLog {
		if err := os.MkdirAll(*out, 0o755); err != nil {
			fmt.Fprintf(stderr, "ftsoak: %v\n", err)
			return 1
		}
		f, err := os.Create(filepath.Join(*out, *name+".daemon.log"))
		if err != nil {
			fmt.Fprintf(stderr, "ftsoak: %v\n", err)
			return 1
		}
		defer f.Close()
		cfg.LogCopy = f
	}

	// Ctrl-C or SIGTERM end the run early; the report is still written.
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	rep, err := soak.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "ftsoak: %v\n", err)
		return 1
	}
	jp, mp, err := rep.WriteFiles(*out, *name)
	if err != nil {
		fmt.Fprintf(stderr, "ftsoak: writing the report: %v\n", err)
		return 1
	}
	verdict := "PASS"
	if !rep.Pass {
		verdict = "FAIL"
	}
	fmt.Fprintf(stdout, "%s: %d failovers, %d of %d connections verified, %d failed, stalls with failover %s; report %s (%s)\n",
		verdict, rep.Failovers, rep.Verified, rep.Sessions, rep.Failed, rep.FailoverStall, mp, jp)
	if !rep.Pass {
		return 1
	}
	return 0
}

// parseFaults parses "kill9=4,sigstop,loss=2".
func parseFaults(s string) (map[string]int, error) {
	m := map[string]int{}
	for _, part := range strings.Split(s, ",") {
		k, v, hasW := strings.Cut(strings.TrimSpace(part), "=")
		w := 1
		if hasW {
			if _, err := fmt.Sscanf(v, "%d", &w); err != nil || w <= 0 {
				return nil, fmt.Errorf("bad weight %q for %s", v, k)
			}
		}
		if _, ok := soak.DefaultFaults[k]; !ok {
			return nil, fmt.Errorf("unknown fault kind %q (known: %s)", k, strings.Join(soak.FaultKinds(), ", "))
		}
		m[k] = w
	}
	return m, nil
}
