package integration_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ftbridge/ftbridge/integration/labsvc"
)

// TestManagementStreamsFailover runs ftbridged with its management plane
// in the lab's box namespace, follows the API's event stream, fails the
// primary's port under a live connection, and checks that the stream
// delivers the failover event (and the history and metrics count it).
func TestManagementStreamsFailover(t *testing.T) {
	b := newBridgeLab(t, labOptions{replicas: 2})
	// Restart the daemon with a data directory: the management plane on.
	if err := b.daemon.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	b.daemon.Wait()
	data := filepath.Join(b.Dir(), "data")
	p, err := b.Start(b.BoxNS, bins.ftbridged, "--config", b.cfgPath, "--data-dir", data, "-quiet-conns")
	if err != nil {
		t.Fatal(err)
	}
	b.daemon = p
	b.waitLog(15*time.Second, "running:", "management API")

	pw, err := os.ReadFile(filepath.Join(data, "admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(p.Log(), strings.TrimSpace(string(pw))) {
		t.Fatal("the admin password is in the log")
	}
	pem, err := os.ReadFile(filepath.Join(data, "tls", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	// The API listens in the box namespace; dial it there.
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return b.Dial(b.BoxNS, network, addr, 5*time.Second)
		},
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"},
	}}
	get := func(path string, auth bool) (*http.Response, error) {
		req, _ := http.NewRequest("GET", "https://127.0.0.1:8443"+path, nil)
		if auth {
			req.SetBasicAuth("admin", strings.TrimSpace(string(pw)))
		}
		return hc.Do(req)
	}
	res, err := get("/api/v1/replicas", false)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 {
		t.Fatalf("unauthenticated replicas: %d", res.StatusCode)
	}
	b.waitHealthy(7000, "a", "b")
	res, err = get("/api/v1/replicas", true)
	if err != nil {
		t.Fatal(err)
	}
	var reps struct{ Replicas []map[string]any }
	json.NewDecoder(res.Body).Decode(&reps)
	res.Body.Close()
	if len(reps.Replicas) != 2 || reps.Replicas[0]["name"] != "a" || reps.Replicas[0]["role"] != "primary" || reps.Replicas[0]["health"] != "up" {
		t.Fatalf("replicas: %+v", reps)
	}

	stream, err := get("/api/v1/events/stream?kind=failover", true)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	if stream.StatusCode != 200 {
		t.Fatalf("stream: %d", stream.StatusCode)
	}
	got := make(chan map[string]any, 10)
	go func() {
		sc := bufio.NewScanner(stream.Body)
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, "data: ") {
				var ev map[string]any
				if json.Unmarshal([]byte(line[6:]), &ev) == nil {
					got <- ev
				}
			}
		}
		close(got)
	}()

	c := b.dial(7000)
	if last, _, err := labsvc.Incr(c, 5); err != nil || last != 5 {
		t.Fatalf("incr %d %v", last, err)
	}
	// Cable pulled on the primary's port.
	if err := b.SetLink(b.BoxNS, b.ReplicaPorts[0], false); err != nil {
		t.Fatal(err)
	}
	if last, _, err := labsvc.Incr(c, 5); err != nil || last != 10 {
		t.Fatalf("incr across the failover %d %v\nlog:\n%s", last, err, tail(p.Log(), 30))
	}
	select {
	case ev, ok := <-got:
		if !ok {
			t.Fatal("the event stream ended")
		}
		if ev["kind"] != "failover" || ev["from"] != "a" || ev["replica"] != "b" || ev["category"] != "failover" {
			t.Fatalf("streamed event %+v", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no failover event on the stream; log:\n%s", tail(p.Log(), 30))
	}
	// The history has it, and the metrics count it.
	res, err = get("/api/v1/events?kind=failover", true)
	if err != nil {
		t.Fatal(err)
	}
	var hist struct{ Events []map[string]any }
	json.NewDecoder(res.Body).Decode(&hist)
	res.Body.Close()
	if len(hist.Events) == 0 {
		t.Error("failover not in the event history")
	}
	res, err = get("/metrics", true)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(body), `ftbridge_failover_events_total{from="a"`) || !strings.Contains(string(body), `ftbridge_replica_up{replica="a"} 0`) {
		t.Errorf("metrics after the failover:\n%s", grepLines(string(body), "ftbridge_failover", "ftbridge_replica_up"))
	}
	labsvc.Quit(c)
	// SIGTERM still stops the managed daemon cleanly.
	p.Signal(syscall.SIGTERM)
	b.waitLog(10*time.Second, "stopped")
}

func grepLines(s string, prefixes ...string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, p := range prefixes {
			if strings.HasPrefix(l, p) {
				out = append(out, l)
			}
		}
	}
	return strings.Join(out, "\n")
}
