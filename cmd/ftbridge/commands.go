package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

func init() {
	commands["status"] = command{"show the appliance's status", runStatus}
	commands["replicas"] = command{"list replicas; show, drain, disable, enable or promote one", runReplicas}
	commands["connections"] = command{"list connections (filters: --replica --primary --service --client --state --diverged)", runConnections}
	commands["events"] = command{"show stored events, or follow them live with --follow", runEvents}
	commands["config"] = command{"get, validate, apply, confirm, history or roll back the configuration", runConfig}
	commands["token"] = command{"list, create or revoke API tokens", runToken}
}

func table() *tabwriter.Writer { return tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0) }

func runStatus(args []string) int {
	fs := subFlags("status")
	if fs.Parse(args) != nil {
		return 2
	}
	c, err := newClient()
	if err != nil {
		return fail(err)
	}
	var st struct {
		Version       string
		Hostname      string
		UptimeSeconds float64 `json:"uptime_seconds"`
		Dataplane     struct {
			Running  bool
			Restarts int
		}
		Ports []struct {
			Name, Role, Replica string
			Present, Carrier    bool
			RxFrames            uint64 `json:"rx_frames"`
			TxFrames            uint64 `json:"tx_frames"`
		}
		Roles struct {
			Preferred string
			Primaries map[string]int
		}
		Connections, Failovers, Divergences int
		HeldBytes                           int64 `json:"held_bytes"`
		Drops                               map[string]uint64
		Config                              struct {
			Version int
			Pending bool
		}
	}
	data, err := c.call("GET", "/api/v1/status", nil, &st)
	if err != nil {
		return fail(err)
	}
	if globals.json {
		printJSON(data)
		return 0
	}
	var drops uint64
	for _, n := range st.Drops {
		drops += n
	}
	pending := ""
	if st.Config.Pending {
		pending = " (pending confirmation)"
	}
	fmt.Fprintf(stdout, "ftbridge %s on %s, up %s\n", st.Version, st.Hostname, (time.Duration(st.UptimeSeconds) * time.Second).String())
	fmt.Fprintf(stdout, "preferred primary: %s\nconnections: %d  failovers: %d  divergences: %d  held: %d bytes  drops: %d\nconfiguration: version %d%s\n\n",
		st.Roles.Preferred, st.Connections, st.Failovers, st.Divergences, st.HeldBytes, drops, st.Config.Version, pending)
	w := table()
	fmt.Fprintln(w, "PORT\tROLE\tREPLICA\tCARRIER\tRX FRAMES\tTX FRAMES\tPRIMARY OF")
	for _, p := range st.Ports {
		prim := ""
		if p.Role == "replica" {
			prim = strconv.Itoa(st.Roles.Primaries[p.Replica])
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%v\t%d\t%d\t%s\n", p.Name, p.Role, p.Replica, p.Carrier, p.RxFrames, p.TxFrames, prim)
	}
	w.Flush()
	return 0
}

type replica struct {
	Name, Interface, Role, Health, Admin, Reason string
	Carrier                                      bool
	Connections                                  int     `json:"connections"`
	PrimaryOf                                    int     `json:"primary_of"`
	RTT                                          float64 `json:"probe_rtt_ms"`
	Since                                        time.Time
}

func printReplicas(rs []replica) {
	w := table()
	fmt.Fprintln(w, "NAME\tINTERFACE\tROLE\tHEALTH\tADMIN\tCONNS\tPRIMARY OF\tRTT\tREASON")
	for _, r := range rs {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%.2fms\t%s\n", r.Name, r.Interface, r.Role, r.Health, r.Admin, r.Connections, r.PrimaryOf, r.RTT, r.Reason)
	}
	w.Flush()
}

func runReplicas(args []string) int {
	fs := subFlags("replicas")
	if fs.Parse(args) != nil {
		return 2
	}
	args = fs.Args()
	action := "list"
	if len(args) > 0 {
		action, args = args[0], args[1:]
	}
	c, err := newClient()
	if err != nil {
		return fail(err)
	}
	switch action {
	case "list":
		var out struct{ Replicas []replica }
		data, err := c.call("GET", "/api/v1/replicas", nil, &out)
		if err != nil {
			return fail(err)
		}
		if globals.json {
			printJSON(data)
		} else {
			printReplicas(out.Replicas)
		}
		return 0
	case "show", "drain", "disable", "enable", "promote", "rejoin":
		if len(args) != 1 {
			fmt.Fprintf(stderr, "usage: ftbridge replicas %s NAME\n", action)
			return 2
		}
		method, path := "POST", "/api/v1/replicas/"+url.PathEscape(args[0])+"/"+action
		if action == "show" {
			method, path = "GET", "/api/v1/replicas/"+url.PathEscape(args[0])
		}
		var r replica
		data, err := c.call(method, path, nil, &r)
		if err != nil {
			return fail(err)
		}
		if globals.json {
			printJSON(data)
		} else {
			printReplicas([]replica{r})
		}
		return 0
	}
	fmt.Fprintf(stderr, "ftbridge replicas: unknown action %q (list, show, drain, disable, enable, promote, rejoin)\n", action)
	return 2
}

func runConnections(args []string) int {
	fs := subFlags("connections")
	q := url.Values{}
	filters := map[string]*string{}
	for _, f := range []string{"replica", "primary", "service", "client", "state", "diverged"} {
		filters[f] = fs.String(f, "", "only connections with this "+f)
	}
	limit := fs.Int("limit", 100, "at most `N` connections")
	offset := fs.Int("offset", 0, "skip `N` connections")
	if fs.Parse(args) != nil {
		return 2
	}
	c, err := newClient()
	if err != nil {
		return fail(err)
	}
	type conn struct {
		ID, Client, Service, State, Primary string
		Members                             []struct {
			Replica       string
			Live, Primary bool
		}
		BytesIn   uint64 `json:"bytes_in"`
		BytesOut  uint64 `json:"bytes_out"`
		Failovers int
		Diverged  bool
	}
	print := func(cs []conn) {
		w := table()
		fmt.Fprintln(w, "CLIENT\tSERVICE\tSTATE\tPRIMARY\tMEMBERS\tIN\tOUT\tFAILOVERS\tDIVERGED")
		for _, c := range cs {
			var ms []string
			for _, m := range c.Members {
				s := m.Replica
				if !m.Live {
					s += "(gone)"
				}
				ms = append(ms, s)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%v\n", c.Client, c.Service, c.State, c.Primary, strings.Join(ms, ","), c.BytesIn, c.BytesOut, c.Failovers, c.Diverged)
		}
		w.Flush()
	}
	if fs.NArg() == 1 {
		var one conn
		data, err := c.call("GET", "/api/v1/connections/"+url.PathEscape(fs.Arg(0)), nil, &one)
		if err != nil {
			return fail(err)
		}
		if globals.json {
			printJSON(data)
		} else {
			print([]conn{one})
		}
		return 0
	}
	for k, v := range filters {
		if *v != "" {
			q.Set(k, *v)
		}
	}
	q.Set("limit", strconv.Itoa(*limit))
	q.Set("offset", strconv.Itoa(*offset))
	var out struct {
		Total       int
		Truncated   bool
		Connections []conn
	}
	data, err := c.call("GET", "/api/v1/connections?"+q.Encode(), nil, &out)
	if err != nil {
		return fail(err)
	}
	if globals.json {
		printJSON(data)
		return 0
	}
	print(out.Connections)
	fmt.Fprintf(stdout, "%d of %d connections\n", len(out.Connections), out.Total)
	return 0
}

type event struct {
	Seq                                                       uint64
	Time                                                      time.Time
	Kind, Category, Replica, From, Conn, Port, Reason, Detail string
	User, Remote                                              string
}

func (e event) line() string {
	s := e.Time.Local().Format("2006-01-02 15:04:05.000") + " " + e.Kind
	for _, kv := range [][2]string{{"replica", e.Replica}, {"from", e.From}, {"conn", e.Conn}, {"port", e.Port}, {"reason", e.Reason}, {"user", e.User}, {"remote", e.Remote}, {"detail", e.Detail}} {
		if kv[1] != "" {
			s += " " + kv[0] + "=" + kv[1]
		}
	}
	return s
}

func runEvents(args []string) int {
	fs := subFlags("events")
	follow := fs.Bool("follow", false, "print events live as they happen (Ctrl-C ends)")
	count := fs.Int("count", 0, "with --follow, exit after `N` events")
	kind := fs.String("kind", "", "only these `kinds` (comma-separated)")
	category := fs.String("category", "", "only these `categories` (failover, health, connection, config, auth, system)")
	replicaF := fs.String("replica", "", "only events about this replica")
	since := fs.String("since", "", "only events since this RFC 3339 `time` or this long ago (\"1h\")")
	limit := fs.Int("limit", 100, "at most `N` stored events (the newest)")
	if fs.Parse(args) != nil {
		return 2
	}
	c, err := newClient()
	if err != nil {
		return fail(err)
	}
	q := url.Values{}
	for k, v := range map[string]string{"kind": *kind, "category": *category, "replica": *replicaF} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if *follow {
		return followEvents(c, q, *count)
	}
	if *since != "" {
		if d, err := time.ParseDuration(*since); err == nil {
			*since = time.Now().Add(-d).UTC().Format(time.RFC3339)
		}
		q.Set("since", *since)
	}
	q.Set("limit", strconv.Itoa(*limit))
	var out struct{ Events []event }
	data, err := c.call("GET", "/api/v1/events?"+q.Encode(), nil, &out)
	if err != nil {
		return fail(err)
	}
	if globals.json {
		printJSON(data)
		return 0
	}
	for _, e := range out.Events {
		fmt.Fprintln(stdout, e.line())
	}
	return 0
}

// followEvents reads the event stream, reconnecting with Last-Event-ID
// when it breaks, so no event is missed.
func followEvents(c *client, q url.Values, count int) int {
	var last string
	seen := 0
	failures := 0
	for {
		path := "/api/v1/events/stream"
		if len(q) > 0 {
			path += "?" + q.Encode()
		}
		req := func() error {
			res, err := c.requestSSE(path, last)
			if err != nil {
				return err
			}
			defer res.Body.Close()
			failures = 0
			sc := bufio.NewScanner(res.Body)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			var id, data string
			for sc.Scan() {
				line := sc.Text()
				switch {
				case strings.HasPrefix(line, "id: "):
					id = line[4:]
				case strings.HasPrefix(line, "data: "):
					data = line[6:]
				case line == "" && data != "":
					last = id
					if globals.json {
						fmt.Fprintln(stdout, data)
					} else {
						var e event
						json.Unmarshal([]byte(data), &e)
						fmt.Fprintln(stdout, e.line())
					}
					data = ""
					seen++
					if count > 0 && seen >= count {
						return errDone
					}
				}
			}
			return sc.Err()
		}()
		if errors.Is(req, errDone) {
			return 0
		}
		var ae *apiError
		if errors.As(req, &ae) {
			return fail(req)
		}
		failures++
		if failures > 30 {
			return fail(fmt.Errorf("event stream: %v", req))
		}
		time.Sleep(2 * time.Second)
	}
}

var errDone = errors.New("done")

func runConfig(args []string) int {
	fs := subFlags("config")
	if fs.Parse(args) != nil {
		return 2
	}
	args = fs.Args()
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: ftbridge config get [VERSION] | validate FILE | apply [--confirm-timeout D] [--auto-confirm] FILE | confirm | history | rollback [VERSION]")
		return 2
	}
	action, args := args[0], args[1:]
	c, err := newClient()
	if err != nil {
		return fail(err)
	}
	switch action {
	case "get":
		path := "/api/v1/config"
		if len(args) == 1 {
			path = "/api/v1/config/history/" + url.PathEscape(args[0])
		}
		var out struct{ Config json.RawMessage }
		data, err := c.call("GET", path, nil, &out)
		if err != nil {
			return fail(err)
		}
		if globals.json {
			printJSON(data)
		} else {
			printJSON(out.Config) // the document itself, ready to edit and apply
		}
		return 0
	case "validate":
		if len(args) != 1 {
			fmt.Fprintln(stderr, "usage: ftbridge config validate FILE")
			return 2
		}
		doc, err := os.ReadFile(args[0])
		if err != nil {
			return fail(err)
		}
		var out struct {
			Valid bool
			Error struct{ Error apiError }
		}
		data, err := c.call("POST", "/api/v1/config/validate", doc, &out)
		if err != nil {
			return fail(err)
		}
		if globals.json {
			printJSON(data)
		} else if out.Valid {
			fmt.Fprintln(stdout, "configuration OK")
		} else {
			fmt.Fprintf(stdout, "%s: %s\n", args[0], out.Error.Error.Message)
		}
		if !out.Valid {
			return 1
		}
		return 0
	case "apply":
		afs := subFlags("config apply")
		timeout := afs.String("confirm-timeout", "", "roll back unless confirmed within this `duration` (default: the appliance's, 0s: no confirmation)")
		auto := afs.Bool("auto-confirm", false, "confirm at once if the API is still reachable after the change")
		if afs.Parse(args) != nil || afs.NArg() != 1 {
			fmt.Fprintln(stderr, "usage: ftbridge config apply [--confirm-timeout D] [--auto-confirm] FILE")
			return 2
		}
		doc, err := os.ReadFile(afs.Arg(0))
		if err != nil {
			return fail(err)
		}
		path := "/api/v1/config"
		if *timeout != "" {
			path += "?confirm_timeout=" + url.QueryEscape(*timeout)
		}
		var res struct {
			Version            int
			DataplaneRestarted bool `json:"dataplane_restarted"`
			Pending            *struct {
				ConfirmBy time.Time `json:"confirm_by"`
			}
		}
		data, err := c.call("PUT", path, doc, &res)
		if err != nil {
			return fail(err)
		}
		if *auto && res.Pending != nil {
			// A fresh connection proves the box is still reachable.
			if cc, err := newClient(); err == nil {
				cc.hc = cloneFresh(cc.hc)
				if _, err := cc.call("GET", "/api/v1/status", nil, nil); err == nil {
					if _, err := cc.call("POST", "/api/v1/config/confirm", nil, nil); err == nil {
						res.Pending = nil
					}
				}
			}
		}
		if globals.json {
			printJSON(data)
			return 0
		}
		fmt.Fprintf(stdout, "applied as version %d", res.Version)
		if res.DataplaneRestarted {
			fmt.Fprint(stdout, "; the dataplane restarted (live connections were dropped)")
		}
		fmt.Fprintln(stdout)
		if res.Pending != nil {
			fmt.Fprintf(stdout, "confirm before %s with `ftbridge config confirm`, or it rolls back by itself\n", res.Pending.ConfirmBy.Local().Format(time.TimeOnly))
		} else if *auto {
			fmt.Fprintln(stdout, "confirmed")
		}
		return 0
	case "confirm":
		data, err := c.call("POST", "/api/v1/config/confirm", nil, nil)
		if err != nil {
			return fail(err)
		}
		if globals.json {
			printJSON(data)
		} else {
			fmt.Fprintln(stdout, "confirmed")
		}
		return 0
	case "history":
		var out struct {
			Versions []struct {
				Version         int
				Applied         time.Time
				Source, Comment string
			}
		}
		data, err := c.call("GET", "/api/v1/config/history", nil, &out)
		if err != nil {
			return fail(err)
		}
		if globals.json {
			printJSON(data)
			return 0
		}
		w := table()
		fmt.Fprintln(w, "VERSION\tAPPLIED\tSOURCE\tCOMMENT")
		for _, v := range out.Versions {
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\n", v.Version, v.Applied.Local().Format(time.DateTime), v.Source, v.Comment)
		}
		w.Flush()
		return 0
	case "rollback":
		body := map[string]any{}
		if len(args) == 1 {
			v, err := strconv.Atoi(args[0])
			if err != nil {
				return fail(fmt.Errorf("%q is not a version number", args[0]))
			}
			body["version"] = v
		}
		var res struct{ Version int }
		data, err := c.call("POST", "/api/v1/config/rollback", body, &res)
		if err != nil {
			return fail(err)
		}
		if globals.json {
			printJSON(data)
		} else {
			fmt.Fprintf(stdout, "rolled back; now version %d\n", res.Version)
		}
		return 0
	}
	fmt.Fprintf(stderr, "ftbridge config: unknown action %q\n", action)
	return 2
}

func runToken(args []string) int {
	fs := subFlags("token")
	if fs.Parse(args) != nil {
		return 2
	}
	args = fs.Args()
	if len(args) == 0 {
		args = []string{"list"}
	}
	c, err := newClient()
	if err != nil {
		return fail(err)
	}
	switch {
	case args[0] == "list" && len(args) == 1:
		var out struct {
			Tokens []struct {
				ID, Name string
				Created  time.Time
				LastUsed time.Time `json:"last_used"`
			}
		}
		data, err := c.call("GET", "/api/v1/system/tokens", nil, &out)
		if err != nil {
			return fail(err)
		}
		if globals.json {
			printJSON(data)
			return 0
		}
		w := table()
		fmt.Fprintln(w, "ID\tNAME\tCREATED\tLAST USED")
		for _, t := range out.Tokens {
			used := "never"
			if !t.LastUsed.IsZero() {
				used = t.LastUsed.Local().Format(time.DateTime)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Created.Local().Format(time.DateTime), used)
		}
		w.Flush()
		return 0
	case args[0] == "create" && len(args) == 2:
		var out struct{ ID, Name, Token string }
		data, err := c.call("POST", "/api/v1/system/tokens", map[string]string{"name": args[1]}, &out)
		if err != nil {
			return fail(err)
		}
		if globals.json {
			printJSON(data)
		} else {
			fmt.Fprintf(stdout, "token %s (%s) created; it is shown only now:\n%s\n", out.ID, out.Name, out.Token)
		}
		return 0
	case args[0] == "revoke" && len(args) == 2:
		if _, err := c.call("DELETE", "/api/v1/system/tokens/"+url.PathEscape(args[1]), nil, nil); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "token %s revoked\n", args[1])
		return 0
	}
	fmt.Fprintln(stderr, "usage: ftbridge token list | create NAME | revoke ID")
	return 2
}
