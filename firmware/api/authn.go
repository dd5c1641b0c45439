package api

import (
	"context"
	"crypto/subtle"
	"fmt"
	"math"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/ftbridge/ftbridge/firmware/auth"
	"github.com/ftbridge/ftbridge/firmware/events"
)

// Authentication methods of a Principal.
const (
	MethodSession = "session"
	MethodBasic   = "basic"
	MethodToken   = "token"
)

// SessionCookie is the browser session cookie's name.
const SessionCookie = "ftb_session"

// CSRFHeader carries the session's CSRF token on unsafe requests.
const CSRFHeader = "X-CSRF-Token"

// Principal is an authenticated caller.
type Principal struct {
	User   string
	Method string
	// Session is the session of a cookie-authenticated caller.
	Session auth.Session
	// TokenID is the token of a bearer-authenticated caller.
	TokenID string
}

type ctxKey struct{}

func principalOf(r *http.Request) *Principal {
	p, _ := r.Context().Value(ctxKey{}).(*Principal)
	return p
}

// stillValid reports whether p's credentials still hold (for long-lived
// streams: a revoked token or ended session ends them).
func (s *Server) stillValid(p *Principal) bool {
	switch p.Method {
	case MethodToken:
		return s.o.Auth.TokenValid(p.TokenID)
	case MethodSession:
		return s.o.Auth.SessionValid(p.Session.ID)
	}
	return true
}

// clientAddr is the caller's IP address: the peer's, never a forwarded
// header, which anyone could set to dodge the lockout.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func unsafeMethod(m string) bool {
	return m != http.MethodGet && m != http.MethodHead && m != http.MethodOptions
}

func unauthorized(w http.ResponseWriter, format string, args ...any) {
	// Bearer, not Basic: a Basic challenge makes browsers prompt for and
	// then cache a password, which cross-site requests would carry.
	w.Header().Set("WWW-Authenticate", `Bearer realm="ftbridge"`)
	writeError(w, http.StatusUnauthorized, codeUnauthorized, "", format, args...)
}

func lockedOut(w http.ResponseWriter, wait time.Duration) {
	w.Header().Set("Retry-After", fmt.Sprint(int(math.Ceil(wait.Seconds()))))
	writeError(w, http.StatusTooManyRequests, codeLockedOut, "", "too many failed attempts from this address; retry in %v", wait.Round(time.Second))
}

// checkPassword runs a password attempt through the lockout: it answers the
// error itself and returns false when the attempt is refused or wrong.
func (s *Server) checkPassword(w http.ResponseWriter, r *http.Request, user, password string) bool {
	addr := clientAddr(r)
	lim := s.o.Auth.Limiter
	if ok, wait := lim.Allow(addr); !ok {
		lockedOut(w, wait)
		return false
	}
	if !s.o.Auth.CheckPassword(user, password) {
		s.event(r, events.Event{Kind: "login-failed", User: user, Remote: addr})
		if d := lim.Fail(addr); d > 0 {
			s.event(r, events.Event{Kind: "locked-out", Remote: addr, Detail: fmt.Sprintf("locked out for %v", d)})
		}
		unauthorized(w, "wrong user name or password")
		return false
	}
	lim.Succeed(addr)
	return true
}

// identify authenticates a request. It returns nil after answering the
// error itself.
func (s *Server) identify(w http.ResponseWriter, r *http.Request) *Principal {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, cred, _ := strings.Cut(h, " ")
		cred = strings.TrimSpace(cred)
		switch strings.ToLower(scheme) {
		case "basic":
			user, pw, ok := r.BasicAuth()
			if !ok {
				unauthorized(w, "malformed Basic credentials")
				return nil
			}
			if !s.checkPassword(w, r, user, pw) {
				return nil
			}
			return &Principal{User: user, Method: MethodBasic}
		case "bearer":
			tok, ok := s.o.Auth.CheckToken(cred)
			if !ok {
				unauthorized(w, "unknown or revoked token")
				return nil
			}
			return &Principal{User: auth.AdminUser, Method: MethodToken, TokenID: tok.ID}
		default:
			unauthorized(w, "unsupported authorization scheme %q (use Basic or Bearer)", scheme)
			return nil
		}
	}
	if c, err := r.Cookie(SessionCookie); err == nil {
		sess, ok := s.o.Auth.Session(c.Value)
		if !ok {
			unauthorized(w, "the session has expired; log in again")
			return nil
		}
		if unsafeMethod(r.Method) && subtle.ConstantTimeCompare([]byte(r.Header.Get(CSRFHeader)), []byte(sess.CSRF)) != 1 {
			writeError(w, http.StatusForbidden, codeCSRF, "", "missing or wrong %s header", CSRFHeader)
			return nil
		}
		return &Principal{User: sess.User, Method: MethodSession, Session: sess}
	}
	unauthorized(w, "authentication required: HTTP Basic, a bearer token or a session")
	return nil
}

// authenticate wraps a handler that needs credentials.
func (s *Server) authenticate(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := s.identify(w, r)
		if p == nil {
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, p)))
	})
}

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type sessionInfo struct {
	Username  string    `json:"username"`
	Method    string    `json:"method,omitempty"`
	CSRFToken string    `json:"csrf_token,omitempty"`
	Expires   time.Time `json:"expires,omitzero"`
	// PasswordChangeRequired: the admin password is still the one
	// written to DATA/admin-password (the generated first-start one).
	PasswordChangeRequired bool `json:"password_change_required,omitempty"`
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	var req loginRequest
	if !decodeJSON(w, r, &req, false) {
		return
	}
	if !s.checkPassword(w, r, req.Username, req.Password) {
		return
	}
	sess := s.o.Auth.NewSession(req.Username)
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: sess.ID, Path: "/",
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode,
	})
	s.event(r, events.Event{Kind: "login", User: req.Username})
	writeJSON(w, http.StatusOK, sessionInfo{Username: sess.User, Method: MethodSession, CSRFToken: sess.CSRF, Expires: sess.Expires.UTC(),
		PasswordChangeRequired: s.o.Auth.PasswordChangeRequired()})
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r)
	if p.Method == MethodSession {
		s.o.Auth.EndSession(p.Session.ID)
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	s.event(r, events.Event{Kind: "logout"})
	writeJSON(w, http.StatusOK, map[string]string{"status": "logged out"})
}

func (s *Server) handleSession(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r)
	info := sessionInfo{Username: p.User, Method: p.Method, PasswordChangeRequired: s.o.Auth.PasswordChangeRequired()}
	if p.Method == MethodSession {
		info.CSRFToken, info.Expires = p.Session.CSRF, p.Session.Expires.UTC()
	}
	writeJSON(w, http.StatusOK, info)
}
