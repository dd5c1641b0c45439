// Command ftconsole is the appliance's serial-console recovery tool and the
// small helpers the image's systemd units run.
//
//	ftconsole [--tty /dev/ttyS0]     the recovery menu (default)
//	ftconsole firstboot               lay out /data, write defaults
//	ftconsole health [--timeout 90s]  wait for a healthy daemon; fails a
//	                                  trial boot that does not get there
//	ftconsole bootcheck               record an update's commit or rollback
//	ftconsole rauc-backend OP ARGS    RAUC's custom boot loader backend
//
// See docs/console.md and docs/updates.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ftbridge/ftbridge/board"
	"github.com/ftbridge/ftbridge/firmware/console"
	"github.com/ftbridge/ftbridge/firmware/update"
)

// boardFile is where the image keeps its board definition.
const boardFile = "/usr/share/ftbridge/board.json"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func loadBoard() (*board.Board, error) {
	f, err := os.Open(boardFile)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return board.Parse(f)
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer cancel()
	sub := "menu"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "ftconsole %s: %v\n", sub, err)
		return 1
	}
	b, err := loadBoard()
	if err != nil {
		return fail(fmt.Errorf("board: %w", err))
	}
	sys := console.NewSystem(b, "")
	switch sub {
	case "menu":
		fs := flag.NewFlagSet("ftconsole", flag.ContinueOnError)
		fs.SetOutput(stderr)
		tty := fs.String("tty", "", "terminal `device` to run on (default: standard input and output)")
		if err := fs.Parse(args); err != nil {
			return 2
		}
		in, out := stdin, stdout
		sys.TTY = "/proc/self/fd/0"
		if *tty != "" {
			f, err := os.OpenFile(*tty, os.O_RDWR, 0)
			if err != nil {
				return fail(err)
			}
			defer f.Close()
			in, out, sys.TTY = f, f, *tty
		}
		// SIGHUP on a serial hang-up ends the menu; systemd restarts it.
		signal.Ignore(syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTSTP)
		m := &console.Menu{In: in, Out: out, Actions: sys}
		if err := m.Run(ctx); err != nil {
			return fail(err)
		}
	case "firstboot":
		id, err := console.Firstboot(sys.DataDir, b)
		if err != nil {
			return fail(err)
		}
		if err := syscall.Sethostname([]byte(id)); err != nil {
			fmt.Fprintf(stderr, "ftconsole firstboot: hostname: %v\n", err)
		}
		if err := console.InstallNetwork(sys.DataDir, sys.RunNetworkDir); err != nil {
			return fail(err)
		}
		os.MkdirAll("/data/rauc", 0o755)
		fmt.Fprintf(stdout, "data partition ready; identity %s\n", id)
	case "health":
		fs := flag.NewFlagSet("ftconsole health", flag.ContinueOnError)
		fs.SetOutput(stderr)
		timeout := fs.Duration("timeout", 90*time.Second, "how long the daemon may take to become healthy")
		stable := fs.Duration("stable", 10*time.Second, "how long it must then stay up without a restart")
		if err := fs.Parse(args); err != nil {
			return 2
		}
		h := &console.Health{Command: sys.Command, Timeout: *timeout, Stable: *stable}
		err := h.Wait(ctx)
		trial := onTrial(sys.Update)
		switch {
		case err == nil:
			fmt.Fprintln(stdout, "ftbridged is healthy")
		case trial:
			// Fail: ftbridge-healthy.service's FailureAction reboots and
			// systemd-boot falls back to the previous slot.
			return fail(fmt.Errorf("trial boot not healthy: %w", err))
		default:
			// A committed slot has nowhere better to go: rebooting it
			// would only loop. Report and let the daemon's own restarts
			// and the watchdog do their work.
			fmt.Fprintf(stdout, "ftbridged is not healthy (%v); committed slot, not rebooting\n", err)
		}
	case "bootcheck":
		ev, err := sys.Update.CheckBoot()
		if err != nil {
			return fail(err)
		}
		if ev != nil {
			fmt.Fprintf(stdout, "%s: %s\n", ev.Kind, ev.Message)
		}
	case "rauc-backend":
		return sys.Update.BackendMain(args, stdout, stderr)
	default:
		return fail(fmt.Errorf("unknown subcommand (menu, firstboot, health, bootcheck, rauc-backend)"))
	}
	return 0
}

// onTrial reports whether this boot is an update's trial: the running
// slot's entry still carries a boot counter.
func onTrial(u *update.System) bool {
	cur, err := u.Current()
	if err != nil {
		return false
	}
	e, ok, err := u.ESP.Newest(cur)
	return err == nil && ok && !e.Good()
}
