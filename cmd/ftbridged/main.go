// Command ftbridged is the ftbridge appliance daemon: it runs the
// transparent TCP failover dataplane between an uplink and the replica
// ports named in its configuration file.
//
//	ftbridged --config /etc/ftbridge/config.json [--data-dir /var/lib/ftbridge]
//
// It runs in the foreground, logs to stderr (one line per event; -json for
// JSON lines), and stops cleanly on SIGTERM or SIGINT. SIGUSR1 writes a
// JSON snapshot of the dataplane (replicas, connections, counters) to
// stderr; SIGUSR2 collects garbage, returns free memory to the system and
// writes a MEMSTATS line with the live heap's bytes. It works
// inside a network namespace (ip netns exec NS ftbridged).
//
// With --data-dir, or when the configuration has a "management" section,
// it also runs the management plane (firmware/mgmt): the REST API over
// HTTPS, the event log, the configuration history and safe apply, metrics,
// and the systemd notify protocol (docs/api.md). Without either it listens
// on nothing.
//
// -cpuprofile FILE writes a pprof CPU profile of the whole run to FILE when
// the daemon stops (go tool pprof ftbridged FILE), -memprofile FILE a heap
// profile on every SIGUSR2; the benchmark uses them. They open no listener.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ftbridge/ftbridge/dataplane/engine"
	"github.com/ftbridge/ftbridge/firmware/config"
	"github.com/ftbridge/ftbridge/firmware/hooks"
	"github.com/ftbridge/ftbridge/firmware/mgmt"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	// Take SIGUSR1 over first: its default action would kill the daemon.
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	// SIGUSR2 collects garbage and returns free memory to the system, so
	// that its MEMSTATS line (and the RSS) show what is live: the
	// benchmark's measure of memory per connection.
	usr2 := make(chan os.Signal, 1)
	signal.Notify(usr2, syscall.SIGUSR2)
	defer signal.Stop(usr2)
	var heapProfile atomic.Pointer[string]
	go func() {
		for range usr2 {
			debug.FreeOSMemory()
			// Read at once: right after a complete collection the
			// heap's object bytes are what is live.
			fmt.Fprintf(stderr, "MEMSTATS %s\n", memStats())
			if p := heapProfile.Load(); p != nil {
				writeHeapProfile(*p)
			}
		}
	}()
	fs := flag.NewFlagSet("ftbridged", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "path of the JSON configuration `file` (required)")
	jsonLog := fs.Bool("json", false, "log events as JSON lines")
	quiet := fs.Bool("quiet-conns", false, "do not log per-connection open/close events")
	check := fs.Bool("check", false, "validate the configuration and exit")
	cpuProfile := fs.String("cpuprofile", "", "write a pprof CPU profile of the run to `FILE` when stopping (for benchmarks)")
	memProfile := fs.String("memprofile", "", "write a pprof heap profile to `FILE` on SIGUSR2, after the collection (for benchmarks)")
	dataDir := fs.String("data-dir", "", "run the management plane with its state in `DIR` (default "+mgmt.DefaultDataDir+" when the configuration has a management section)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	logger := log.New(stderr, "ftbridged: ", log.LstdFlags|log.Lmicroseconds)
	if *cfgPath == "" {
		logger.Print("no configuration: use --config FILE")
		return 2
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		logger.Print(err)
		return 1
	}
	if *check {
		fmt.Fprintln(stderr, "configuration OK")
		return 0
	}
	if *memProfile != "" {
		// Fine-grained sampling, so that small per-connection objects
		// show up; it costs CPU, which only a benchmark's memory test
		// can spare.
		runtime.MemProfileRate = 256
		heapProfile.Store(memProfile)
	}
	if *cpuProfile != "" {
		f, err := os.OpenFile(*cpuProfile, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			logger.Print(err)
			return 1
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			logger.Print(err)
			return 1
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	if *dataDir != "" || cfg.Management != nil {
		if *dataDir == "" {
			*dataDir = mgmt.DefaultDataDir
		}
		return runManaged(*cfgPath, *dataDir, logger, stderr, usr1, *jsonLog, *quiet)
	}
	eng, err := engine.New(cfg.Dataplane())
	if err != nil {
		logger.Print(err)
		return 1
	}
	defer eng.Close()

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	events, unsubscribe := eng.Subscribe(4096)
	defer unsubscribe()
	hs := configHooks(cfg)
	gate := startGate(ctx, func() []hooks.Hook { return hs }, eng, logger)
	go func() {
		logEvents(logger, stderr, events, *jsonLog, *quiet, gate)
	}()
	go func() {
		for range usr1 {
			sctx, scancel := context.WithTimeout(ctx, 2*time.Second)
			snap, err := eng.Snapshot(sctx, 1000)
			scancel()
			if err != nil {
				continue
			}
			b, _ := json.Marshal(snap)
			fmt.Fprintf(stderr, "SNAPSHOT %s\n", b)
		}
	}()
	go releaseWhenIdle(ctx, eng.Snapshot)
	logger.Printf("running: uplink %s, %d replicas, %d services", cfg.Uplink, len(cfg.Replicas), len(cfg.Services))
	err = eng.Run(ctx)
	signal.Stop(usr1)
	unsubscribe()
	time.Sleep(10 * time.Millisecond)
	if err != nil {
		logger.Print(err)
		return 1
	}
	logger.Print("stopped")
	return 0
}

// writeHeapProfile writes the heap's in-use profile to path (errors go
// nowhere: it is a benchmark aid).
func writeHeapProfile(path string) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return
	}
	pprof.Lookup("heap").WriteTo(f, 0)
	f.Close()
}

// memStats returns the Go heap figures a benchmark needs to tell the
// dataplane's state per connection from the garbage collector's slack in
// the RSS, as JSON: the bytes of heap objects (live ones only, when read
// right after a collection) and the number of collections so far.
func memStats() []byte {
	ms := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(ms)
	var v struct {
		HeapLive uint64 `json:"heap_live_bytes"`
		GCCycles uint64 `json:"gc_cycles"`
	}
	if ms[0].Value.Kind() == metrics.KindUint64 {
		v.HeapLive = ms[0].Value.Uint64()
	}
	if ms[1].Value.Kind() == metrics.KindUint64 {
		v.GCCycles = ms[1].Value.Uint64()
	}
	b, _ := json.Marshal(v)
	return b
}

// logEvents writes the dataplane's events as they come.
func logEvents(logger *log.Logger, w io.Writer, events <-chan engine.Event, asJSON, quiet bool, also ...func(engine.Event)) {
	for ev := range events {
		for _, f := range also {
			f(ev)
		}
		if quiet && (ev.Kind == engine.EventConnEstablished || ev.Kind == engine.EventConnClosed || ev.Kind == engine.EventMemberRemoved) {
			continue
		}
		if asJSON {
			b, _ := json.Marshal(ev)
			fmt.Fprintf(w, "%s\n", b)
			continue
		}
		line := string(ev.Kind)
		add := func(k, v string) {
			if v != "" {
				line += " " + k + "=" + v
			}
		}
		add("replica", ev.Replica)
		add("from", ev.From)
		add("conn", ev.Conn)
		add("port", ev.Port)
		add("reason", ev.Reason)
		add("detail", ev.Detail)
		if ev.Offset != 0 {
			add("offset", fmt.Sprint(ev.Offset))
		}
		logger.Print(line)
	}
}
