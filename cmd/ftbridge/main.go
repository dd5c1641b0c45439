// Command ftbridge is the operator's tool for an ftbridge appliance: a
// client of the management API (status, replicas, connections, events,
// configuration, tokens) with human tables by default and --json for
// scripts, plus the lab demo.
//
//	ftbridge [global flags] COMMAND [flags] [args]
//
// Global flags and their environment defaults: --url (FTBRIDGE_URL,
// default https://127.0.0.1:8443), --token (FTBRIDGE_TOKEN), --user and
// --password-file (FTBRIDGE_PASSWORD), --cacert, --insecure, --data-dir
// (default /var/lib/ftbridge: on the box, its certificate is trusted and
// its admin-password used when readable), --json.
//
// Subcommands register themselves in the commands map from init functions,
// each in its own file.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
)

// command is one subcommand: run gets the arguments after its name and
// returns the exit code. An empty summary hides it from the usage text.
type command struct {
	summary string
	run     func(args []string) int
}

// commands maps subcommand names to their implementations.
var commands = map[string]command{}

// Output streams; tests replace them.
var (
	stdout io.Writer = os.Stdout
	stderr io.Writer = os.Stderr
)

func main() { os.Exit(dispatch(os.Args[1:])) }

// dispatch parses the global flags and runs the subcommand.
func dispatch(args []string) int {
	fs := newGlobalFlags()
	if err := fs.Parse(args); err != nil {
		return 2
	}
	args = fs.Args()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "ftbridge: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	return cmd.run(args[1:])
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "usage: ftbridge [global flags] COMMAND [flags] [args]\n\ncommands:\n")
	var names []string
	for n, c := range commands {
		if c.summary != "" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(w, "\nglobal flags:\n")
	fs := newGlobalFlags()
	fs.SetOutput(w)
	fs.PrintDefaults()
}
