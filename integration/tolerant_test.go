package integration_test

import (
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftbridge/ftbridge/integration/lab"
	"github.com/ftbridge/ftbridge/integration/labsvc"
)

// TestReplicationModes: nginx replicas whose responses differ in a header
// (as a Date header does across a second boundary; here a fixed
// X-Replica header, so that it always happens). In tolerant mode the
// download survives the primary's death, because the client has
// acknowledged the header before; in strict mode the backup was
// disqualified at the header and the connection cannot survive.
func TestReplicationModes(t *testing.T) {
	needLab(t)
	if _, err := exec.LookPath("nginx"); err != nil {
		t.Skip("needs nginx (apt-get install nginx-light)")
	}
	for _, mode := range []string{"tolerant", "strict"} {
		t.Run(mode, func(t *testing.T) {
			b := newBridgeLab(t, labOptions{replicas: 2, ports: []uint16{80}, noServers: true,
				service: fmt.Sprintf(`, "replication": %q`, mode)})
			const size = 24 << 20
			root := filepath.Join(b.Dir(), "www")
			os.MkdirAll(root, 0o755)
			if err := labsvc.WriteDeterministicFile(filepath.Join(root, "big"), size, 5); err != nil {
				t.Fatal(err)
			}
			var primary *lab.Proc
			for i, ns := range b.ReplicaNS {
				dir := filepath.Join(b.Dir(), fmt.Sprintf("nginx%d", i))
				conf, err := labsvc.NginxConfig(dir, b.VIP.String()+":80", root)
				if err != nil {
					t.Fatal(err)
				}
				text, _ := os.ReadFile(conf)
				text = []byte(strings.Replace(string(text), "location / {", fmt.Sprintf("location / {\n            add_header X-Replica r%d;", i), 1))
				os.WriteFile(conf, text, 0o644)
				p, err := b.Start(ns, "nginx", labsvc.NginxArgs(dir)...)
				if err != nil {
					t.Fatal(err)
				}
				if i == 0 {
					primary = p
				}
				waitListening(t, b.Lab, ns, 80)
			}
			b.waitHealthy(80, "a", "b")
			out := filepath.Join(b.Dir(), "got")
			curl := b.Command(b.ClientNS, "curl", "-sS", "--max-time", "30", "--limit-rate", "8M", "-o", out,
				"-w", "%{http_code}", "http://"+b.VIP.String()+"/big")
			var res []byte
			done := make(chan error, 1)
			go func() {
				var err error
				res, err = curl.CombinedOutput()
				done <- err
			}()
			time.Sleep(600 * time.Millisecond)
			primary.Kill()
			err := <-done
			if mode == "strict" {
				if err == nil {
					t.Fatalf("strict: the download survived although the only backup had diverged (%s)", res)
				}
				b.waitLog(2*time.Second, "diverged", "replica=b")
				return
			}
			if err != nil {
				t.Fatalf("tolerant: curl: %v %s\nlog:\n%s", err, res, tail(b.daemon.Log(), 30))
			}
			got, _ := os.ReadFile(out)
			if sha256.Sum256(got) != labsvc.StreamHash(size, 5) || string(res) != "200" {
				t.Fatalf("tolerant: %d bytes, status %s, hash mismatch", len(got), res)
			}
			b.waitLog(2*time.Second, "diverged", "replica=b", "reason=tolerated")
			b.waitLog(2*time.Second, "failover", "from=a", "replica=b")
		})
	}
}
