package api

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/ftbridge/ftbridge/dataplane/engine"
	"github.com/ftbridge/ftbridge/firmware/events"
)

// snapshotTimeout bounds how long a request waits for the dataplane loop.
const snapshotTimeout = 3 * time.Second

// maxScan bounds the connections one request reads from the dataplane.
const maxScan = 65536

func (s *Server) snapshot(w http.ResponseWriter, r *http.Request, maxConns int) (engine.Snapshot, bool) {
	ctx, cancel := context.WithTimeout(r.Context(), snapshotTimeout)
	defer cancel()
	snap, err := s.o.Dataplane.Snapshot(ctx, maxConns)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, "", "the dataplane did not answer: %v", err)
		return snap, false
	}
	return snap, true
}

// Port is one port in the status.
type Port struct {
	Name     string `json:"name"`
	Role     string `json:"role"`
	Replica  string `json:"replica,omitempty"`
	Present  bool   `json:"present"`
	Carrier  bool   `json:"carrier"`
	RxFrames uint64 `json:"rx_frames"`
	TxFrames uint64 `json:"tx_frames"`
	RxBytes  uint64 `json:"rx_bytes"`
	TxBytes  uint64 `json:"tx_bytes"`
}

// Status is the answer of GET /status.
type Status struct {
	Version       string  `json:"version"`
	Hostname      string  `json:"hostname"`
	Started       string  `json:"started"`
	UptimeSeconds float64 `json:"uptime_seconds"`
	Dataplane     struct {
		Running  bool      `json:"running"`
		Started  time.Time `json:"started"`
		Restarts int       `json:"restarts"`
	} `json:"dataplane"`
	Ports []Port `json:"ports"`
	Roles struct {
		Preferred string         `json:"preferred"`
		Primaries map[string]int `json:"primaries"`
	} `json:"roles"`
	Connections int               `json:"connections"`
	Failovers   uint64            `json:"failovers"`
	Divergences uint64            `json:"divergences"`
	HeldBytes   int64             `json:"held_bytes"`
	Drops       map[string]uint64 `json:"drops"`
	Config      struct {
		Version int  `json:"version"`
		Pending bool `json:"pending"`
	} `json:"config"`
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	snap, ok := s.snapshot(w, r, 0)
	if !ok {
		return
	}
	var st Status
	st.Version = s.o.Version
	st.Hostname = hostname()
	st.Started = s.o.Started.UTC().Format(time.RFC3339)
	st.UptimeSeconds = s.now().Sub(s.o.Started).Seconds()
	st.Dataplane.Running = true
	st.Dataplane.Started = snap.Started.UTC()
	st.Dataplane.Restarts = s.o.Dataplane.Restarts()
	cur := s.o.Config.Current()
	st.Ports = append(st.Ports, Port{Name: cur.Config.Uplink, Role: "uplink", Present: true, Carrier: true,
		RxFrames: snap.Uplink.RxFrames, TxFrames: snap.Uplink.TxFrames, RxBytes: snap.Uplink.RxBytes, TxBytes: snap.Uplink.TxBytes})
	st.Roles.Primaries = map[string]int{}
	for _, rs := range snap.Replicas {
		st.Ports = append(st.Ports, Port{Name: rs.Interface, Role: "replica", Replica: rs.Name, Present: rs.Port, Carrier: rs.Carrier,
			RxFrames: rs.RxFrames, TxFrames: rs.TxFrames, RxBytes: rs.RxBytes, TxBytes: rs.TxBytes})
		st.Roles.Primaries[rs.Name] = rs.Primaries
		if rs.Preferred {
			st.Roles.Preferred = rs.Name
		}
	}
	st.Connections, st.Failovers, st.Divergences, st.HeldBytes, st.Drops = snap.Connections, snap.Failovers, snap.Divergences, snap.HeldBytes, snap.Drops
	st.Config.Version = cur.Version
	st.Config.Pending = s.o.Config.Pending() != nil
	writeJSON(w, http.StatusOK, st)
}

// Replica is a replica as the API shows it: the dataplane's status plus
// its role and health.
type Replica struct {
	engine.ReplicaStatus
	Role   string `json:"role"`
	Health string `json:"health"`
}

func replicaOf(rs engine.ReplicaStatus) Replica {
	r := Replica{ReplicaStatus: rs, Role: "backup", Health: "down"}
	if rs.Preferred {
		r.Role = "primary"
	}
	if rs.Up {
		r.Health = "up"
	}
	if r.Services == nil {
		r.Services = []string{}
	}
	return r
}

func (s *Server) handleReplicas(w http.ResponseWriter, r *http.Request) {
	snap, ok := s.snapshot(w, r, 0)
	if !ok {
		return
	}
	out := []Replica{}
	for _, rs := range snap.Replicas {
		out = append(out, replicaOf(rs))
	}
	writeJSON(w, http.StatusOK, map[string]any{"replicas": out})
}

// findReplica answers 404 itself when the replica is unknown.
func (s *Server) findReplica(w http.ResponseWriter, r *http.Request, name string) (Replica, bool) {
	snap, ok := s.snapshot(w, r, 0)
	if !ok {
		return Replica{}, false
	}
	for _, rs := range snap.Replicas {
		if rs.Name == name {
			return replicaOf(rs), true
		}
	}
	writeError(w, http.StatusNotFound, codeNotFound, "", "no replica %q", name)
	return Replica{}, false
}

func (s *Server) handleReplica(w http.ResponseWriter, r *http.Request) {
	if rep, ok := s.findReplica(w, r, mux.Vars(r)["name"]); ok {
		writeJSON(w, http.StatusOK, rep)
	}
}

func (s *Server) replicaAction(action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := mux.Vars(r)["name"]
		if _, ok := s.findReplica(w, r, name); !ok {
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), snapshotTimeout)
		defer cancel()
		var err error
		switch action {
		case "drain":
			err = s.o.Dataplane.SetAdmin(ctx, name, engine.AdminDrained)
		case "disable":
			err = s.o.Dataplane.SetAdmin(ctx, name, engine.AdminDisabled)
		case "enable":
			err = s.o.Dataplane.SetAdmin(ctx, name, engine.AdminEnabled)
		case "promote":
			err = s.o.Dataplane.Promote(ctx, name)
		case "rejoin":
			rj, ok := s.o.Dataplane.(rejoiner)
			if !ok {
				writeError(w, http.StatusConflict, codeConflict, "", "this dataplane cannot rejoin replicas")
				return
			}
			_, err = rj.Rejoin(ctx, name)
		}
		if err != nil {
			if ctx.Err() != nil {
				writeError(w, http.StatusServiceUnavailable, codeUnavailable, "", "the dataplane did not answer: %v", err)
			} else {
				writeError(w, http.StatusConflict, codeConflict, "", "%s %s: %v", action, name, err)
			}
			return
		}
		rep, ok := s.findReplica(w, r, name)
		if !ok {
			return
		}
		s.event(r, events.Event{Kind: "operator-action", Replica: name, Detail: action})
		writeJSON(w, http.StatusOK, rep)
	}
}

// Connection is a connection as the API shows it.
type Connection struct {
	ID string `json:"id"`
	engine.ConnStatus
}

// ConnectionID is the id of a connection in API paths: CLIENT_SERVICE.
func ConnectionID(c engine.ConnStatus) string { return c.Client + "_" + c.Service }

func connectionOf(c engine.ConnStatus) Connection {
	if c.Members == nil {
		c.Members = []engine.MemberStatus{}
	}
	return Connection{ID: ConnectionID(c), ConnStatus: c}
}

// addrMatch matches "host" against "host:port" values, or a full
// "host:port".
func addrMatch(filter, value string) bool {
	if filter == "" || filter == value {
		return true
	}
	if i := strings.LastIndexByte(value, ':'); i >= 0 {
		return strings.Trim(value[:i], "[]") == strings.Trim(filter, "[]")
	}
	return false
}

func intParam(w http.ResponseWriter, q url.Values, name string, def, lo, hi int) (int, bool) {
	v := q.Get(name)
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		writeError(w, http.StatusBadRequest, codeBadRequest, name, "%s=%q: want an integer from %d to %d", name, v, lo, hi)
		return 0, false
	}
	return n, true
}

func (s *Server) handleConnections(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, ok := intParam(w, q, "limit", 100, 1, 1000)
	if !ok {
		return
	}
	offset, ok := intParam(w, q, "offset", 0, 0, maxScan)
	if !ok {
		return
	}
	var diverged *bool
	if v := q.Get("diverged"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, codeBadRequest, "diverged", "diverged=%q: want true or false", v)
			return
		}
		diverged = &b
	}
	snap, ok := s.snapshot(w, r, maxScan)
	if !ok {
		return
	}
	replica, primary, service, client, state := q.Get("replica"), q.Get("primary"), q.Get("service"), q.Get("client"), q.Get("state")
	var matched []Connection
	for _, c := range snap.Conns {
		if primary != "" && c.Primary != primary || state != "" && c.State != state ||
			diverged != nil && c.Diverged != *diverged || !addrMatch(service, c.Service) || !addrMatch(client, c.Client) {
			continue
		}
		if replica != "" {
			found := false
			for _, m := range c.Members {
				found = found || m.Replica == replica
			}
			if !found {
				continue
			}
		}
		matched = append(matched, connectionOf(c))
	}
	page := []Connection{}
	if offset < len(matched) {
		page = matched[offset:min(len(matched), offset+limit)]
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"total": len(matched), "offset": offset, "limit": limit,
		"truncated": snap.Connections > len(snap.Conns), "connections": page,
	})
}

func (s *Server) handleConnection(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	client, service, ok := strings.Cut(id, "_")
	if !ok {
		client, service, ok = strings.Cut(id, "->")
	}
	if !ok {
		writeError(w, http.StatusNotFound, codeNotFound, "id", "%q is not a connection id (CLIENT_SERVICE)", id)
		return
	}
	snap, ok := s.snapshot(w, r, maxScan)
	if !ok {
		return
	}
	for _, c := range snap.Conns {
		if c.Client == client && c.Service == service {
			writeJSON(w, http.StatusOK, connectionOf(c))
			return
		}
	}
	writeError(w, http.StatusNotFound, codeNotFound, "", "no connection %s", id)
}

// rejoiner is a dataplane that can bring a replica into live connections
// on request (engine.Engine.Rejoin).
type rejoiner interface {
	Rejoin(ctx context.Context, name string) (int, error)
}
