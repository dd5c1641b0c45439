package api

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ftbridge/ftbridge/firmware/events"
)

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// eventQuery parses the filters shared by the history and the stream.
func eventQuery(w http.ResponseWriter, r *http.Request) (events.Query, bool) {
	q := r.URL.Query()
	eq := events.Query{Kinds: splitList(q.Get("kind")), Categories: splitList(q.Get("category")), Replica: q.Get("replica")}
	for _, tp := range []struct {
		name string
		dst  *time.Time
	}{{"since", &eq.Since}, {"until", &eq.Until}} {
		if v := q.Get(tp.name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				writeError(w, http.StatusBadRequest, codeBadRequest, tp.name, "%s=%q is not an RFC 3339 time such as 2025-01-01T10:00:00Z", tp.name, v)
				return eq, false
			}
			*tp.dst = t
		}
	}
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, codeBadRequest, "after", "after=%q is not a sequence number", v)
			return eq, false
		}
		eq.After = n
	}
	return eq, true
}

func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	eq, ok := eventQuery(w, r)
	if !ok {
		return
	}
	limit, ok := intParam(w, r.URL.Query(), "limit", 100, 1, 1000)
	if !ok {
		return
	}
	eq.Limit = limit
	evs := s.o.Events.Query(eq)
	if evs == nil {
		evs = []events.Event{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": evs})
}

// handleEventStream serves events as Server-Sent Events until the client
// goes away, the server closes, or the caller's credentials are revoked.
func (s *Server) handleEventStream(w http.ResponseWriter, r *http.Request) {
	eq, ok := eventQuery(w, r)
	if !ok {
		return
	}
	rc := http.NewResponseController(w)
	// Replay stored events after Last-Event-ID; without it, only new ones.
	replay := eq
	replay.After = math.MaxUint64
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, codeBadRequest, "Last-Event-ID", "Last-Event-ID %q is not a sequence number", v)
			return
		}
		replay.After = max(n, eq.After)
	}
	backlog, ch, cancel := s.o.Events.SubscribeFrom(replay, 256)
	defer cancel()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// No write deadline for a stream; each write gets its own.
	send := func(ev events.Event) bool {
		data, _ := json.Marshal(ev)
		rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", ev.Seq, ev.Kind, data); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(w, ": ftbridge event stream\nretry: 2000\n\n")
	if rc.Flush() != nil {
		return
	}
	for _, ev := range backlog {
		if !send(ev) {
			return
		}
	}
	p := principalOf(r)
	tick := time.NewTicker(s.sseKeepalive)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.ctx.Done():
			return
		case ev := <-ch:
			if !s.stillValid(p) {
				return
			}
			if eq.Match(&ev) && !send(ev) {
				return
			}
		case <-tick.C:
			if !s.stillValid(p) {
				return
			}
			rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
			if _, err := fmt.Fprintf(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		}
	}
}
