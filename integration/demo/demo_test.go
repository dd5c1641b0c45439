package demo

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ftbridge/ftbridge/integration/labsvc"
)

// TestMain lets this test binary stand in for `ftbridge lab-server`, the
// demo's default server command.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "lab-server" {
		os.Exit(labsvc.Main(os.Args[2:]))
	}
	os.Exit(m.Run())
}

func TestDemo(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the demo builds network namespaces")
	}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := Run(ctx, Options{Size: 8 << 20, KillAfter: 500 * time.Millisecond, Out: &out})
	t.Log(out.String())
	if err != nil {
		t.Fatal(err)
	}
	if !res.HashMatch || res.Bytes != 8<<20 {
		t.Fatalf("client saw %d bytes, hash match %v", res.Bytes, res.HashMatch)
	}
	if res.Failovers < 1 {
		t.Fatal("the primary was killed but no failover was counted")
	}
	if !strings.Contains(out.String(), "failover") {
		t.Fatal("the narrative does not show the failover")
	}
}
