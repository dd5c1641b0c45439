package integration_test

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestStateHookGatesRecoveredReplica: with a state hook configured, a
// replica whose server came back serves nothing and joins nothing until
// the hook passes; a failing or timed-out hook keeps it out until it comes
// back again.
func TestStateHookGatesRecoveredReplica(t *testing.T) {
	needLab(t)
	dir := t.TempDir()
	// The hook passes for a replica only while dir/allow-NAME exists, and
	// hangs while dir/hang-NAME exists.
	script := filepath.Join(dir, "hook.sh")
	body := fmt.Sprintf("#!/bin/sh\n[ -e %[1]s/hang-$1 ] && sleep 30\n[ -e %[1]s/allow-$1 ]\n", dir)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	flag := func(kind, name string, on bool) {
		p := filepath.Join(dir, kind+"-"+name)
		if on {
			os.WriteFile(p, nil, 0o600)
		} else {
			os.Remove(p)
		}
	}
	flag("allow", "a", true)
	flag("allow", "b", true)
	b := newBridgeLab(t, labOptions{replicas: 2,
		service: fmt.Sprintf(`, "state_hook": {"command": [%q], "timeout": "500ms"}`, script)})
	b.waitHealthy(7000, "a", "b")
	b.waitLog(5*time.Second, "state hooks for a passed")
	c := b.dial(7000)
	next := incrN(t, c, 3, 1)

	// a's server dies and comes back while its hook fails: a stays out.
	flag("allow", "a", false)
	b.server(0).Signal(syscall.SIGKILL)
	b.waitLog(5*time.Second, "failover", "from=a")
	b.startLabsvc(0)
	b.waitLog(10*time.Second, "state hooks for a failed")
	time.Sleep(700 * time.Millisecond) // room for a wrongful rejoin
	s := b.snapshot()
	if len(s.Conns) != 1 || s.Conns[0].Redundancy != 1 {
		t.Fatalf("a replica whose hook failed joined a live connection: %+v", s.Conns)
	}
	c2 := b.dial(7000)
	incrN(t, c2, 1, 1)
	for _, cs := range b.snapshot().Conns {
		for _, m := range cs.Members {
			if m.Replica == "a" && m.Live {
				t.Fatalf("a replica whose hook failed serves a new connection: %+v", cs)
			}
		}
	}

	// The same with a hook that hangs past its timeout.
	flag("allow", "a", true)
	flag("hang", "a", true)
	b.server(0).Signal(syscall.SIGKILL)
	time.Sleep(300 * time.Millisecond)
	b.startLabsvc(0)
	b.waitLog(10*time.Second, "state hooks for a failed", "timed out")
	if r := b.snapshot().Conns; len(r) == 0 {
		t.Fatal("connections vanished")
	}

	// Once the hook passes, a comes back into the live connection.
	flag("hang", "a", false)
	b.server(0).Signal(syscall.SIGKILL)
	time.Sleep(300 * time.Millisecond)
	b.startLabsvc(0)
	b.waitLog(15*time.Second, "rejoin-completed", "replica=a")
	next = incrN(t, c, 3, next)
	b.server(1).Signal(syscall.SIGKILL)
	b.waitLog(5*time.Second, "failover", "from=b", "replica=a")
	incrN(t, c, 3, next)
}
