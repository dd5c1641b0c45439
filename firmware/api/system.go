package api

import (
	"errors"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/ftbridge/ftbridge/firmware/auth"
	"github.com/ftbridge/ftbridge/firmware/events"
)

func accepted(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"status": msg})
}

func (s *Server) handleReboot(w http.ResponseWriter, r *http.Request) {
	if s.o.Reboot == nil {
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, "", "reboot is not available on this system")
		return
	}
	s.event(r, events.Event{Kind: "reboot"})
	accepted(w, http.StatusAccepted, "rebooting")
	reboot := s.o.Reboot
	s.afterResponse(func() { reboot() })
}

type factoryResetRequest struct {
	Confirm string `json:"confirm"`
}

func (s *Server) handleFactoryReset(w http.ResponseWriter, r *http.Request) {
	var req factoryResetRequest
	if !decodeJSON(w, r, &req, false) {
		return
	}
	if req.Confirm != "factory-reset" {
		writeError(w, http.StatusBadRequest, codeBadRequest, "confirm", `set "confirm": "factory-reset" to erase the appliance`)
		return
	}
	if s.o.FactoryReset == nil {
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, "", "factory reset is not available on this system")
		return
	}
	s.event(r, events.Event{Kind: "factory-reset"})
	accepted(w, http.StatusAccepted, "resetting")
	reset := s.o.FactoryReset
	s.afterResponse(func() { reset() })
}

type passwordRequest struct {
	Current string `json:"current"`
	New     string `json:"new"`
}

func (s *Server) handlePassword(w http.ResponseWriter, r *http.Request) {
	var req passwordRequest
	if !decodeJSON(w, r, &req, false) {
		return
	}
	// The current password is a password attempt like any other.
	if ok, wait := s.o.Auth.Limiter.Allow(clientAddr(r)); !ok {
		lockedOut(w, wait)
		return
	}
	switch err := s.o.Auth.SetPassword(req.Current, req.New); {
	case errors.Is(err, auth.ErrBadPassword):
		s.o.Auth.Limiter.Fail(clientAddr(r))
		writeError(w, http.StatusBadRequest, codeBadRequest, "current", "the current password is wrong")
	case errors.Is(err, auth.ErrWeakPassword):
		writeError(w, http.StatusBadRequest, codeBadRequest, "new", "%v", err)
	case err != nil:
		writeError(w, http.StatusInternalServerError, codeInternal, "", "%v", err)
	default:
		s.event(r, events.Event{Kind: "password-changed"})
		accepted(w, http.StatusOK, "password changed")
	}
}

func (s *Server) handleTokens(w http.ResponseWriter, r *http.Request) {
	toks := s.o.Auth.Tokens()
	if toks == nil {
		toks = []auth.Token{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": toks})
}

type tokenRequest struct {
	Name string `json:"name"`
}

// TokenCreated is the answer of POST /system/tokens: the only time the
// secret is shown.
type TokenCreated struct {
	auth.Token
	Secret string `json:"token"`
}

func (s *Server) handleTokenCreate(w http.ResponseWriter, r *http.Request) {
	var req tokenRequest
	if !decodeJSON(w, r, &req, false) {
		return
	}
	tok, secret, err := s.o.Auth.CreateToken(req.Name)
	switch {
	case errors.Is(err, auth.ErrBadTokenName), errors.Is(err, auth.ErrTooManyTokens):
		writeError(w, http.StatusBadRequest, codeBadRequest, "name", "%v", err)
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, codeInternal, "", "%v", err)
		return
	}
	s.event(r, events.Event{Kind: "token-created", Detail: tok.ID + " " + tok.Name})
	writeJSON(w, http.StatusCreated, TokenCreated{Token: tok, Secret: secret})
}

func (s *Server) handleTokenRevoke(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	switch err := s.o.Auth.RevokeToken(id); {
	case errors.Is(err, auth.ErrNoToken):
		writeError(w, http.StatusNotFound, codeNotFound, "", "no token %q", id)
	case err != nil:
		writeError(w, http.StatusInternalServerError, codeInternal, "", "%v", err)
	default:
		s.event(r, events.Event{Kind: "token-revoked", Detail: id})
		accepted(w, http.StatusOK, "revoked")
	}
}

func (s *Server) handleTLSGet(w http.ResponseWriter, r *http.Request) {
	if s.o.Certs == nil {
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, "", "no certificate store")
		return
	}
	writeJSON(w, http.StatusOK, s.o.Certs.Info())
}

type tlsRequest struct {
	CertPEM string `json:"cert_pem"`
	KeyPEM  string `json:"key_pem"`
}

func (s *Server) handleTLSPut(w http.ResponseWriter, r *http.Request) {
	var req tlsRequest
	if !decodeJSON(w, r, &req, false) {
		return
	}
	if s.o.Certs == nil {
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, "", "no certificate store")
		return
	}
	if err := s.o.Certs.Install([]byte(req.CertPEM), []byte(req.KeyPEM)); err != nil {
		writeError(w, http.StatusBadRequest, codeBadRequest, "cert_pem", "%v", err)
		return
	}
	info := s.o.Certs.Info()
	s.event(r, events.Event{Kind: "tls-changed", Detail: info.SHA256})
	writeJSON(w, http.StatusOK, info)
}
