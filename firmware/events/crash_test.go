package events

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestKill9DuringAppendAndRotate kills a process appending events with a
// bound small enough to rotate every few events, 20 times at random
// moments: the log must open every time, hold every acknowledged event
// and keep sequence numbers increasing across the kills.
func TestKill9DuringAppendAndRotate(t *testing.T) {
	if dir := os.Getenv("FTBRIDGE_TEST_EVENTS_CRASH_DIR"); dir != "" {
		s, err := Open(Options{Dir: dir, MaxEvents: 20})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(3)
		}
		for {
			ev, err := s.Add(Event{Kind: "failover", Detail: strings.Repeat("x", 200)})
			if err != nil {
				fmt.Println("error", err)
				os.Exit(3)
			}
			fmt.Println("acked", ev.Seq) // unbuffered: printed means added
		}
	}
	if testing.Short() {
		t.Skip("kills 20 child processes")
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	var lastSeq uint64
	for run := 1; run <= 20; run++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKill9DuringAppendAndRotate$")
		cmd.Env = append(os.Environ(), "FTBRIDGE_TEST_EVENTS_CRASH_DIR="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		acked := uint64(0)
		done := make(chan struct{})
		go func() {
			defer close(done)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				if len(f) == 2 && f[0] == "acked" {
					acked, _ = strconv.ParseUint(f[1], 10, 64)
				} else {
					t.Errorf("run %d: child: %s", run, sc.Text())
				}
			}
		}()
		time.Sleep(time.Duration(20+rng.IntN(100)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
		cmd.Wait()
		s, err := Open(Options{Dir: dir, MaxEvents: 20})
		if err != nil {
			t.Fatalf("run %d: the log does not open after the kill: %v", run, err)
		}
		got := s.Query(Query{})
		for i := 1; i < len(got); i++ {
			if got[i].Seq <= got[i-1].Seq {
				t.Fatalf("run %d: seq %d after %d", run, got[i].Seq, got[i-1].Seq)
			}
		}
		if acked > 0 && (len(got) == 0 || got[len(got)-1].Seq < acked) {
			t.Fatalf("run %d: acknowledged event %d missing (log ends at %v)", run, acked, got)
		}
		if s.LastSeq() < lastSeq {
			t.Fatalf("run %d: sequence went back from %d to %d", run, lastSeq, s.LastSeq())
		}
		lastSeq = s.LastSeq()
		s.Close()
	}
	if lastSeq < 100 {
		t.Errorf("only %d events over 20 runs", lastSeq)
	}
	t.Logf("20 kills, %d events", lastSeq)
}
