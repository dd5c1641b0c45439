package update

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// Rauc installs update bundles with the rauc command line. On the
// appliance `rauc install` hands the bundle to the RAUC service over D-Bus:
// the service (root, full privileges) checks the signature and the
// compatible string and writes the inactive slot; the caller needs no
// privileges beyond the system bus, which is why the hardened daemon can
// run it.
type Rauc struct {
	// Command is the rauc binary; empty means "rauc" from PATH.
	Command string
}

// progressRE matches RAUC's progress lines: "  20% Checking bundle done.".
var progressRE = regexp.MustCompile(`^\s*(\d{1,3})%\s+(.*\S)\s*$`)

// maxOutput bounds the output kept for an error message.
const maxOutput = 32 << 10

// Install runs `rauc install BUNDLE` and calls progress for every progress
// line RAUC prints (percent 0 to 100 and RAUC's step). It returns nil once
// RAUC reports success, or an error with RAUC's own reason (a bad
// signature, another board's bundle, a slot write failure).
func (r *Rauc) Install(ctx context.Context, bundle string, progress func(percent int, step string)) error {
	name := r.Command
	if name == "" {
		name = "rauc"
	}
	cmd := exec.CommandContext(ctx, name, "install", bundle)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	var (
		mu      sync.Mutex
		lines   []string
		kept    int
		lastErr string
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 4096), 1<<20)
		for sc.Scan() {
			l := strings.TrimRight(sc.Text(), "\r")
			if m := progressRE.FindStringSubmatch(l); m != nil {
				if p, err := strconv.Atoi(m[1]); err == nil && p <= 100 && progress != nil {
					progress(p, m[2])
				}
				continue
			}
			mu.Lock()
			if e, ok := strings.CutPrefix(strings.TrimSpace(l), "LastError:"); ok {
				lastErr = strings.TrimSpace(e)
			}
			if kept < maxOutput && strings.TrimSpace(l) != "" {
				lines = append(lines, l)
				kept += len(l)
			}
			mu.Unlock()
		}
		io.Copy(io.Discard, pr)
	}()
	err := cmd.Start()
	if err != nil {
		pw.Close()
		<-done
		return fmt.Errorf("starting rauc: %w", err)
	}
	err = cmd.Wait()
	pw.Close()
	<-done
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("rauc install: %w", ctx.Err())
	}
	mu.Lock()
	defer mu.Unlock()
	msg := lastErr
	if msg == "" {
		// No LastError line (an old rauc, or the command itself failed):
		// the last lines it printed say why.
		msg = strings.Join(lines[max(0, len(lines)-3):], "; ")
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if msg == "" {
			msg = fmt.Sprintf("exit status %d", ee.ExitCode())
		}
		return errors.New("rauc install failed: " + msg)
	}
	return fmt.Errorf("rauc install: %w", err)
}
