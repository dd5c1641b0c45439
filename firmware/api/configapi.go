package api

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/ftbridge/ftbridge/firmware/config"
)

// ConfigState is the answer of GET /config.
type ConfigState struct {
	Version int             `json:"version"`
	Applied time.Time       `json:"applied"`
	Source  string          `json:"source"`
	Comment string          `json:"comment,omitempty"`
	Pending *config.Pending `json:"pending"`
	Config  *config.Config  `json:"config"`
}

func (s *Server) configState() ConfigState {
	cur := s.o.Config.Current()
	return ConfigState{Version: cur.Version, Applied: cur.Applied, Source: cur.Source, Comment: cur.Comment, Pending: s.o.Config.Pending(), Config: cur.Config}
}

func (s *Server) handleConfigGet(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.configState())
}

// configError answers a parse or validation error, naming the field.
func configError(w http.ResponseWriter, err error) {
	var fe *config.FieldError
	if errors.As(err, &fe) {
		writeError(w, http.StatusUnprocessableEntity, codeInvalidConfig, fe.Field, "%s", fe.Error())
		return
	}
	writeError(w, http.StatusUnprocessableEntity, codeInvalidConfig, "", "%v", err)
}

// readConfig reads a configuration document from the request body.
func readConfig(w http.ResponseWriter, r *http.Request) (*config.Config, error, bool) {
	data, ok := readBody(w, r, false)
	if !ok {
		return nil, nil, false
	}
	c, err := config.Parse(data)
	if err == nil {
		err = c.Validate()
	}
	return c, err, true
}

func (s *Server) handleConfigValidate(w http.ResponseWriter, r *http.Request) {
	_, err, ok := readConfig(w, r)
	if !ok {
		return
	}
	if err != nil {
		var fe *config.FieldError
		d := ErrorDetail{Code: codeInvalidConfig, Message: err.Error()}
		if errors.As(err, &fe) {
			d.Field = fe.Field
		}
		writeJSON(w, http.StatusOK, map[string]any{"valid": false, "error": ErrorBody{Error: d}})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"valid": true})
}

// confirmTimeout reads ?confirm_timeout=, defaulting to the setting.
func (s *Server) confirmTimeout(w http.ResponseWriter, v string) (time.Duration, bool) {
	if v == "" {
		return time.Duration(s.settings().ConfirmTimeout), true
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > time.Hour {
		writeError(w, http.StatusBadRequest, codeBadRequest, "confirm_timeout", "confirm_timeout=%q: want a duration from 0s to 1h", v)
		return 0, false
	}
	return d, true
}

// applyError answers an error of Apply or Rollback.
func applyError(w http.ResponseWriter, err error) {
	var fe *config.FieldError
	switch {
	case errors.As(err, &fe):
		configError(w, err)
	case errors.Is(err, config.ErrPending), errors.Is(err, config.ErrNoPending):
		writeError(w, http.StatusConflict, codeConflict, "", "%v", err)
	case errors.Is(err, config.ErrNoVersion):
		writeError(w, http.StatusNotFound, codeNotFound, "version", "%v", err)
	default:
		writeError(w, http.StatusInternalServerError, codeApplyFailed, "", "%v", err)
	}
}

func (s *Server) handleConfigPut(w http.ResponseWriter, r *http.Request) {
	timeout, ok := s.confirmTimeout(w, r.URL.Query().Get("confirm_timeout"))
	if !ok {
		return
	}
	c, err, ok := readConfig(w, r)
	if !ok {
		return
	}
	if err != nil {
		configError(w, err)
		return
	}
	comment := r.URL.Query().Get("comment")
	if len(comment) > 200 {
		comment = comment[:200]
	}
	res, err := s.o.Config.Apply(c, config.ApplyOptions{ConfirmTimeout: timeout, Source: config.SourceAPI, Comment: comment})
	if err != nil {
		applyError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) handleConfigConfirm(w http.ResponseWriter, r *http.Request) {
	if _, err := s.o.Config.Confirm(); err != nil {
		applyError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.configState())
}

func (s *Server) handleConfigHistory(w http.ResponseWriter, r *http.Request) {
	out := []config.Entry{}
	out = append(out, s.o.Config.History()...)
	writeJSON(w, http.StatusOK, map[string]any{"versions": out})
}

func (s *Server) handleConfigVersion(w http.ResponseWriter, r *http.Request) {
	v, err := strconv.Atoi(mux.Vars(r)["version"])
	if err != nil || v < 1 {
		writeError(w, http.StatusBadRequest, codeBadRequest, "version", "%q is not a version number", mux.Vars(r)["version"])
		return
	}
	e, err := s.o.Config.Version(v)
	if err != nil {
		applyError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, e)
}

type rollbackRequest struct {
	Version        int    `json:"version"`
	ConfirmTimeout string `json:"confirm_timeout"`
}

func (s *Server) handleConfigRollback(w http.ResponseWriter, r *http.Request) {
	var req rollbackRequest
	if !decodeJSON(w, r, &req, true) {
		return
	}
	if req.Version < 0 {
		writeError(w, http.StatusBadRequest, codeBadRequest, "version", "version %d is not a version number", req.Version)
		return
	}
	// A rollback restores a known version: it needs no confirmation
	// unless asked for.
	var timeout time.Duration
	if req.ConfirmTimeout != "" {
		var ok bool
		if timeout, ok = s.confirmTimeout(w, req.ConfirmTimeout); !ok {
			return
		}
	}
	res, err := s.o.Config.Rollback(req.Version, config.ApplyOptions{ConfirmTimeout: timeout})
	if err != nil {
		applyError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
