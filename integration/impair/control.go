package impair

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"
)

// Target is what a control socket drives; *Forwarder implements it.
type Target interface {
	Set(Spec) error
	Stats() Stats
}

// The control protocol: one JSON request per line, one JSON response per
// line, any number per connection.
//
//	{"op":"set","spec":{"loss":0.05,"delay":"20ms"}}  → {"stats":{...}}
//	{"op":"stats"}                                    → {"stats":{...}}
//
// A failed request is answered {"error":"..."}.
type request struct {
	Op   string `json:"op"`
	Spec *Spec  `json:"spec,omitempty"`
}

type response struct {
	Error string `json:"error,omitempty"`
	Stats *Stats `json:"stats,omitempty"`
}

// connIdle bounds how long the server keeps a silent control connection.
const connIdle = 30 * time.Second

// Serve answers control requests on ln (normally a unix socket) for t until
// ln is closed, then returns the Accept error.
func Serve(ln net.Listener, t Target) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go serveConn(c, t)
	}
}

func serveConn(c net.Conn, t Target) {
	defer c.Close()
	r := bufio.NewReader(c)
	enc := json.NewEncoder(c)
	for {
		c.SetDeadline(time.Now().Add(connIdle))
		line, err := r.ReadBytes('\n')
		if err != nil {
			return
		}
		var req request
		var resp response
		if err := json.Unmarshal(line, &req); err != nil {
			resp.Error = "impair: bad request: " + err.Error()
		} else {
			switch req.Op {
			case "set":
				if req.Spec == nil {
					resp.Error = "impair: set without a spec"
				} else if err := t.Set(*req.Spec); err != nil {
					resp.Error = err.Error()
				}
			case "stats":
			default:
				resp.Error = fmt.Sprintf("impair: unknown op %q", req.Op)
			}
			if resp.Error == "" {
				st := t.Stats()
				resp.Stats = &st
			}
		}
		if err := enc.Encode(resp); err != nil {
			return
		}
	}
}

// Control is a client of a forwarder's control socket. The zero Timeout
// means 5 seconds per call.
type Control struct {
	// Path is the unix socket the forwarder listens on.
	Path string
	// Timeout bounds each call.
	Timeout time.Duration
}

// Set sends spec to the forwarder (see Forwarder.Set).
func (c Control) Set(spec Spec) error {
	if err := spec.Validate(); err != nil {
		return err
	}
	_, err := c.call(request{Op: "set", Spec: &spec})
	return err
}

// Stats fetches the forwarder's counters and specs.
func (c Control) Stats() (Stats, error) {
	return c.call(request{Op: "stats"})
}

func (c Control) call(req request) (Stats, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	conn, err := net.DialTimeout("unix", c.Path, timeout)
	if err != nil {
		return Stats{}, fmt.Errorf("impair: control %s: %w", c.Path, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	b, err := json.Marshal(req)
	if err != nil {
		return Stats{}, err
	}
	if _, err := conn.Write(append(b, '\n')); err != nil {
		return Stats{}, fmt.Errorf("impair: control %s: %w", c.Path, err)
	}
	var resp response
	if err := json.NewDecoder(conn).Decode(&resp); err != nil {
		return Stats{}, fmt.Errorf("impair: control %s: reading the answer: %w", c.Path, err)
	}
	if resp.Error != "" {
		return Stats{}, errors.New(resp.Error)
	}
	if resp.Stats == nil {
		return Stats{}, fmt.Errorf("impair: control %s: answer without stats", c.Path)
	}
	return *resp.Stats, nil
}
