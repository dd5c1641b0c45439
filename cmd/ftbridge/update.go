package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ftbridge/ftbridge/firmware/api"
	"github.com/ftbridge/ftbridge/firmware/update"
)

func init() {
	commands["update"] = command{"install a firmware update bundle (install FILE [--reboot]) or show the install's state (status)", runUpdate}
	commands["slots"] = command{"show the A/B firmware slots: running, next boot, trial or committed", runSlots}
}

// installWait bounds how long `update install` follows an install: RAUC
// writes a slot in well under a minute on the appliance, ten on a slow
// emulated one.
var installWait = 30 * time.Minute

// pollEvery is how often `update install` asks for progress.
var pollEvery = time.Second

func runUpdate(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: ftbridge update install FILE [--reboot] | ftbridge update status")
		return 2
	}
	switch args[0] {
	case "install":
		return runUpdateInstall(args[1:])
	case "status":
		fs := subFlags("update status")
		if fs.Parse(args[1:]) != nil {
			return 2
		}
		c, err := newClient()
		if err != nil {
			return fail(err)
		}
		var st api.UpdateState
		data, err := c.call("GET", "/api/v1/system/update", nil, &st)
		if err != nil {
			return fail(err)
		}
		if globals.json {
			printJSON(data)
		} else {
			printUpdateState(st)
		}
		return 0
	}
	fmt.Fprintf(stderr, "ftbridge update: unknown action %q (install, status)\n", args[0])
	return 2
}

func printUpdateState(st api.UpdateState) {
	fmt.Fprintf(stdout, "state: %s\n", st.State)
	switch st.State {
	case api.UpdateReceiving:
		fmt.Fprintf(stdout, "received: %d of %d bytes\n", st.Received, st.Size)
	case api.UpdateInstalling:
		fmt.Fprintf(stdout, "progress: %d%% %s\n", st.Percent, st.Step)
	case api.UpdateInstalled:
		fmt.Fprintf(stdout, "installed into slot %s; reboot to run it on trial (committed once the daemon is healthy, else the box rolls back)\n", st.Slot)
	case api.UpdateFailed:
		fmt.Fprintf(stdout, "error: %s\n", st.Error)
	}
	if !st.Started.IsZero() {
		fmt.Fprintf(stdout, "started: %s by %s\n", st.Started.Local().Format(time.RFC3339), st.User)
	}
	if !st.Finished.IsZero() {
		fmt.Fprintf(stdout, "finished: %s\n", st.Finished.Local().Format(time.RFC3339))
	}
}

// progressReader counts the bytes the upload has taken.
type progressReader struct {
	r io.Reader
	n atomic.Int64
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n.Add(int64(n))
	return n, err
}

func runUpdateInstall(args []string) int {
	fs := subFlags("update install")
	reboot := fs.Bool("reboot", false, "reboot into the new firmware (on trial) once it is installed")
	// Flags may follow the file name, as the usage line shows.
	var file string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		file, args = args[0], args[1:]
	}
	if fs.Parse(args) != nil {
		return 2
	}
	if file == "" && fs.NArg() == 1 {
		file = fs.Arg(0)
	} else if fs.NArg() != 0 || file == "" {
		fmt.Fprintln(stderr, "usage: ftbridge update install FILE [--reboot]")
		return 2
	}
	f, err := os.Open(file)
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	if !fi.Mode().IsRegular() || fi.Size() == 0 {
		return fail(fmt.Errorf("%s: not a bundle file (empty or not a regular file)", file))
	}
	c, err := newClient()
	if err != nil {
		return fail(err)
	}
	// The body streams from the file: a bundle is tens of MiB.
	pr := &progressReader{r: f}
	req, err := http.NewRequest("POST", c.base+"/api/v1/system/update", pr)
	if err != nil {
		return fail(err)
	}
	req.ContentLength = fi.Size()
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Accept", "application/json")
	c.auth(req)
	hc := *c.hc
	hc.Timeout = installWait
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				fmt.Fprintf(stderr, "uploading: %d%% (%d of %d bytes)\n", pr.n.Load()*100/fi.Size(), pr.n.Load(), fi.Size())
			}
		}
	}()
	start := time.Now()
	res, err := hc.Do(req)
	close(stop)
	<-done
	if err != nil {
		return fail(err)
	}
	if res.StatusCode >= 400 {
		return fail(errorAnswer("POST", "/api/v1/system/update", res))
	}
	res.Body.Close()
	fmt.Fprintf(stderr, "uploaded %d bytes in %.1f s; installing\n", fi.Size(), time.Since(start).Seconds())

	// Follow the install until it ends.
	var st api.UpdateState
	var data []byte
	last := ""
	deadline := time.Now().Add(installWait)
	for {
		if data, err = c.call("GET", "/api/v1/system/update", nil, &st); err != nil {
			return fail(err)
		}
		if line := fmt.Sprintf("installing: %3d%% %s", st.Percent, st.Step); st.State == api.UpdateInstalling && line != last {
			fmt.Fprintln(stderr, line)
			last = line
		}
		if st.State != api.UpdateInstalling && st.State != api.UpdateReceiving {
			break
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("the install did not finish within %s (state %s, %d%%)", installWait, st.State, st.Percent))
		}
		time.Sleep(pollEvery)
	}
	if globals.json {
		printJSON(data)
	} else {
		printUpdateState(st)
	}
	if st.State != api.UpdateInstalled {
		return fail(errors.New("the update was not installed: " + st.Error))
	}
	if *reboot {
		if _, err := c.call("POST", "/api/v1/system/reboot", nil, nil); err != nil {
			return fail(fmt.Errorf("installed, but the reboot failed: %w", err))
		}
		fmt.Fprintln(stderr, "rebooting into the new firmware (on trial)")
	}
	return 0
}

func runSlots(args []string) int {
	fs := subFlags("slots")
	if fs.Parse(args) != nil {
		return 2
	}
	c, err := newClient()
	if err != nil {
		return fail(err)
	}
	var st update.Status
	data, err := c.call("GET", "/api/v1/system/slots", nil, &st)
	if err != nil {
		return fail(err)
	}
	if globals.json {
		printJSON(data)
		return 0
	}
	tw := table()
	fmt.Fprintln(tw, "SLOT\tSTATE\tVERSION\tRUNNING\tNEXT BOOT\tPARTITION")
	for _, s := range st.Slots {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Slot, s.State, orDash(s.Version), yes(s.Booted), yes(s.Slot == st.Next), s.Partition)
	}
	tw.Flush()
	if st.Trial {
		fmt.Fprintf(stdout, "slot %s runs on trial: it is committed once the daemon is healthy, else the box rolls back to slot %s\n", st.Booted, st.Booted.Other())
	}
	return 0
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "-"
}
