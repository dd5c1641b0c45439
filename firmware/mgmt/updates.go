package mgmt

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ftbridge/ftbridge/firmware/api"
	"github.com/ftbridge/ftbridge/firmware/events"
	"github.com/ftbridge/ftbridge/firmware/update"
)

// raucConf is RAUC's system configuration; the appliance image has it, a
// development machine does not.
const raucConf = "/etc/rauc/system.conf"

// raucUpdater is the appliance's api.Updater: RAUC writes the slots, the
// ESP's loader entries say which slot is which.
type raucUpdater struct {
	rauc *update.Rauc
	sys  *update.System
}

func (u raucUpdater) Install(ctx context.Context, bundle string, progress func(int, string)) error {
	return u.rauc.Install(ctx, bundle, progress)
}

func (u raucUpdater) Slots() (update.Status, error) { return u.sys.Status() }

// systemUpdater returns the RAUC updater when this system has RAUC set
// up, else nil (the update routes then answer 503).
func systemUpdater() api.Updater {
	if _, err := os.Stat(raucConf); err != nil {
		return nil
	}
	if _, err := exec.LookPath("rauc"); err != nil {
		return nil
	}
	// The command line only matters for writing entries, which RAUC's
	// backend (ftconsole) does, not the daemon.
	return raucUpdater{rauc: &update.Rauc{}, sys: update.NewSystem(update.ESPDir, "")}
}

// importUpdateEvents copies the update outcomes ftconsole bootcheck
// appends to log (update.committed, update.rollback; written before or
// after the daemon starts, even by another slot's firmware) into the event
// log, from the byte offset recorded in mark on. A log shorter than the
// mark was replaced (factory reset) and is read from the start.
func importUpdateEvents(log, mark string, add func(events.Event)) error {
	f, err := os.Open(log)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	var off int64
	if b, err := os.ReadFile(mark); err == nil {
		off, _ = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	}
	if off > fi.Size() || off < 0 {
		off = 0
	}
	if off == fi.Size() {
		return nil
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return err
	}
	data, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return err
	}
	// Only whole lines: bootcheck may be writing the next one.
	data = data[:bytes.LastIndexByte(data, '\n')+1]
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var ev update.Event
		if json.Unmarshal(sc.Bytes(), &ev) != nil || ev.Kind == "" {
			continue
		}
		e := events.Event{Kind: ev.Kind, Detail: ev.Message, Reason: "slot " + string(ev.Slot)}
		if t, err := time.Parse(time.RFC3339, ev.Time); err == nil {
			e.Time = t
		}
		add(e)
	}
	if len(data) == 0 {
		return nil
	}
	tmp := mark + ".new"
	if err := os.WriteFile(tmp, []byte(strconv.FormatInt(off+int64(len(data)), 10)+"\n"), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, mark)
}

// watchUpdateEvents imports update outcomes now and then every interval
// until ctx ends: bootcheck records a commit or rollback after the daemon
// is up (it waits for the daemon to be healthy).
func (p *Plane) watchUpdateEvents(ctx context.Context, interval time.Duration) {
	log := filepath.Join(p.o.DataDir, "events", "update.jsonl")
	mark := filepath.Join(p.o.DataDir, "events", "update.imported")
	for {
		if err := importUpdateEvents(log, mark, func(ev events.Event) { p.Events.Add(ev) }); err != nil {
			p.o.Logf("update events: %v", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}
