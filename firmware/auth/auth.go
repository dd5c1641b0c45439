package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/ftbridge/ftbridge/firmware/config"
)

// AdminUser is the one user name.
const AdminUser = "admin"

// MinPasswordLength is the shortest password SetPassword accepts.
const MinPasswordLength = 12

// maxPasswordLength is bcrypt's limit: it ignores bytes past 72.
const maxPasswordLength = 72

// File names in the data directory.
const (
	PasswordFile = "admin-password"
	stateFile    = "auth.json"
)

// Errors.
var (
	ErrBadPassword   = errors.New("wrong password")
	ErrWeakPassword  = fmt.Errorf("the password must be %d to %d characters", MinPasswordLength, maxPasswordLength)
	ErrNoToken       = errors.New("no such token")
	ErrBadTokenName  = errors.New("a token name is 1 to 64 printable characters")
	ErrTooManyTokens = errors.New("too many tokens (at most 100)")
)

// Token is an API token as listed; the secret is never kept.
type Token struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"last_used,omitzero"`
	hash     [32]byte
}

// Session is a browser session.
type Session struct {
	ID      string
	User    string
	CSRF    string
	Expires time.Time
}

// Options configure Open.
type Options struct {
	// Dir is the data directory.
	Dir string
	// SessionTTL is the idle lifetime of sessions. Default 8h.
	SessionTTL time.Duration
	// Cost is the bcrypt cost; 0 means bcrypt.DefaultCost. Tests use
	// bcrypt.MinCost.
	Cost int
}

// Auth is the credential store. Its methods are safe for concurrent use.
type Auth struct {
	dir  string
	cost int

	mu         sync.Mutex
	adminHash  []byte
	generated  bool
	tokens     map[string]*Token // by ID
	sessions   map[string]*Session
	sessionTTL time.Duration
	okCache    [32]byte // sha256 of the last password that verified
	okUntil    time.Time

	// Limiter counts failed password attempts per client address.
	Limiter *Limiter

	now func() time.Time
}

type stateDoc struct {
	AdminHash string      `json:"admin_hash"`
	Tokens    []tokenJSON `json:"tokens"`
	// Generated: the admin password is still the one generated on first
	// start (not an operator's choice).
	Generated bool `json:"generated,omitempty"`
}

type tokenJSON struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Hash     string    `json:"sha256"`
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"last_used,omitzero"`
}

// Open loads the credentials in o.Dir, creating the admin password on first
// start: the content of DIR/admin-password if the file exists (an operator
// or image build set it), else a generated one written there with mode 0600.
func Open(o Options) (*Auth, error) {
	a := &Auth{
		dir: o.Dir, cost: o.Cost, tokens: make(map[string]*Token), sessions: make(map[string]*Session),
		sessionTTL: o.SessionTTL, now: time.Now, Limiter: NewLimiter(),
	}
	if a.cost == 0 {
		a.cost = bcrypt.DefaultCost
	}
	if a.sessionTTL <= 0 {
		a.sessionTTL = 8 * time.Hour
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(o.Dir, stateFile))
	switch {
	case err == nil:
		var doc stateDoc
		if err := json.Unmarshal(data, &doc); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(o.Dir, stateFile), err)
		}
		a.adminHash = []byte(doc.AdminHash)
		a.generated = doc.Generated
		for _, t := range doc.Tokens {
			h, err := hex.DecodeString(t.Hash)
			if err != nil || len(h) != 32 {
				continue
			}
			tok := &Token{ID: t.ID, Name: t.Name, Created: t.Created, LastUsed: t.LastUsed}
			copy(tok.hash[:], h)
			a.tokens[t.ID] = tok
		}
	case !os.IsNotExist(err):
		return nil, err
	}
	if len(a.adminHash) == 0 {
		if err := a.firstPassword(); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// firstPassword sets the initial admin password.
func (a *Auth) firstPassword() error {
	path := filepath.Join(a.dir, PasswordFile)
	pw, err := os.ReadFile(path)
	switch {
	case err == nil && len(strings.TrimSpace(string(pw))) > 0:
		pw = []byte(strings.TrimSpace(string(pw)))
	case err == nil || os.IsNotExist(err):
		pw = []byte(GeneratePassword())
		if err := config.WriteFileAtomic(path, append(pw, '\n'), 0o600); err != nil {
			return err
		}
		a.generated = true
	default:
		return err
	}
	h, err := bcrypt.GenerateFromPassword(pw, a.cost)
	if err != nil {
		return err
	}
	a.adminHash = h
	return a.saveLocked()
}

// GeneratePassword returns 20 random characters from an alphabet without
// look-alikes (no 0/O, 1/l/I), about 115 bits.
func GeneratePassword() string {
	const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 20)
	for i := range b {
		b[i] = alphabet[randIndex(len(alphabet))]
	}
	return string(b)
}

// randIndex returns a uniform random number in [0, n) for n <= 256.
func randIndex(n int) int {
	var b [1]byte
	limit := 256 - 256%n
	for {
		rand.Read(b[:])
		if int(b[0]) < limit {
			return int(b[0]) % n
		}
	}
}

func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// saveLocked writes auth.json atomically.
func (a *Auth) saveLocked() error {
	doc := stateDoc{AdminHash: string(a.adminHash), Tokens: []tokenJSON{}, Generated: a.generated}
	for _, t := range a.sortedTokens() {
		doc.Tokens = append(doc.Tokens, tokenJSON{ID: t.ID, Name: t.Name, Hash: hex.EncodeToString(t.hash[:]), Created: t.Created, LastUsed: t.LastUsed})
	}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	return config.WriteFileAtomic(filepath.Join(a.dir, stateFile), append(data, '\n'), 0o600)
}

// CheckPassword reports whether user and password are the admin's. A
// password that verified in the last minute is recognised without running
// bcrypt again, so that clients using HTTP Basic on every request do not
// cost a key derivation each.
func (a *Auth) CheckPassword(user, password string) bool {
	sum := sha256.Sum256([]byte(user + "\x00" + password))
	a.mu.Lock()
	hash := a.adminHash
	if a.now().Before(a.okUntil) && subtle.ConstantTimeCompare(sum[:], a.okCache[:]) == 1 {
		a.mu.Unlock()
		return true
	}
	a.mu.Unlock()
	// Run bcrypt even for a wrong user name, so that timing does not tell.
	ok := bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil && user == AdminUser
	if ok {
		a.mu.Lock()
		if string(a.adminHash) == string(hash) {
			a.okCache, a.okUntil = sum, a.now().Add(time.Minute)
		}
		a.mu.Unlock()
	}
	return ok
}

// SetPassword changes the admin password after checking the current one.
// It ends every browser session and removes DATA/admin-password, which no
// longer holds the password.
func (a *Auth) SetPassword(current, next string) error {
	if !a.CheckPassword(AdminUser, current) {
		return ErrBadPassword
	}
	if len(next) < MinPasswordLength || len(next) > maxPasswordLength {
		return ErrWeakPassword
	}
	h, err := bcrypt.GenerateFromPassword([]byte(next), a.cost)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	old, oldGen := a.adminHash, a.generated
	a.adminHash, a.generated = h, false
	if err := a.saveLocked(); err != nil {
		a.adminHash, a.generated = old, oldGen
		return err
	}
	a.okUntil = time.Time{}
	clear(a.sessions)
	if err := os.Remove(filepath.Join(a.dir, PasswordFile)); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// TokenPrefix starts every API token, so that secret scanners and humans
// recognise one.
const TokenPrefix = "ftb_"

// CreateToken makes a new API token and returns it with its secret, which
// is not kept and cannot be shown again.
func (a *Auth) CreateToken(name string) (Token, string, error) {
	if name == "" || len(name) > 64 || strings.IndexFunc(name, func(r rune) bool { return r < ' ' || r == 0x7f }) >= 0 {
		return Token{}, "", ErrBadTokenName
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.tokens) >= 100 {
		return Token{}, "", ErrTooManyTokens
	}
	secret := TokenPrefix + randomString(32)
	t := &Token{ID: randomString(9), Name: name, Created: a.now().UTC().Truncate(time.Second), hash: sha256.Sum256([]byte(secret))}
	a.tokens[t.ID] = t
	if err := a.saveLocked(); err != nil {
		delete(a.tokens, t.ID)
		return Token{}, "", err
	}
	return *t, secret, nil
}

// Tokens lists the API tokens by creation time.
func (a *Auth) Tokens() []Token {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []Token
	for _, t := range a.sortedTokens() {
		out = append(out, *t)
	}
	return out
}

func (a *Auth) sortedTokens() []*Token {
	out := make([]*Token, 0, len(a.tokens))
	for _, t := range a.tokens {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// RevokeToken deletes a token; requests with it fail from now on.
func (a *Auth) RevokeToken(id string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.tokens[id]
	if !ok {
		return ErrNoToken
	}
	delete(a.tokens, id)
	if err := a.saveLocked(); err != nil {
		a.tokens[id] = t
		return err
	}
	return nil
}

// CheckToken returns the token whose secret this is. Tokens are 256-bit
// random values, so a fast hash is as good as a KDF for storing them.
func (a *Auth) CheckToken(secret string) (Token, bool) {
	sum := sha256.Sum256([]byte(secret))
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, t := range a.tokens {
		if subtle.ConstantTimeCompare(sum[:], t.hash[:]) == 1 {
			t.LastUsed = a.now().UTC().Truncate(time.Second)
			return *t, true
		}
	}
	return Token{}, false
}

// TokenValid reports whether token id still exists.
func (a *Auth) TokenValid(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.tokens[id]
	return ok
}

// maxSessions bounds the session table; the oldest go first.
const maxSessions = 1000

// NewSession starts a browser session for user.
func (a *Auth) NewSession(user string) Session {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	for id, s := range a.sessions {
		if now.After(s.Expires) {
			delete(a.sessions, id)
		}
	}
	for len(a.sessions) >= maxSessions {
		var oldest *Session
		for _, s := range a.sessions {
			if oldest == nil || s.Expires.Before(oldest.Expires) {
				oldest = s
			}
		}
		delete(a.sessions, oldest.ID)
	}
	s := &Session{ID: randomString(32), User: user, CSRF: randomString(32), Expires: now.Add(a.sessionTTL)}
	a.sessions[s.ID] = s
	return *s
}

// Session returns a live session and extends its life (sessions expire
// after SessionTTL without use).
func (a *Auth) Session(id string) (Session, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.sessions[id]
	if !ok {
		return Session{}, false
	}
	now := a.now()
	if now.After(s.Expires) {
		delete(a.sessions, id)
		return Session{}, false
	}
	s.Expires = now.Add(a.sessionTTL)
	return *s, true
}

// SessionValid reports whether a session is still live, without extending it.
func (a *Auth) SessionValid(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.sessions[id]
	return ok && !a.now().After(s.Expires)
}

// EndSession ends a session.
func (a *Auth) EndSession(id string) {
	a.mu.Lock()
	delete(a.sessions, id)
	a.mu.Unlock()
}

// SetSessionTTL changes the idle lifetime of sessions from their next use.
func (a *Auth) SetSessionTTL(d time.Duration) {
	if d <= 0 {
		return
	}
	a.mu.Lock()
	a.sessionTTL = d
	a.mu.Unlock()
}

// PasswordChangeRequired reports whether the admin password is still the
// one generated on first start (an operator-chosen first password is not):
// the dashboard asks for a new one until it is changed.
func (a *Auth) PasswordChangeRequired() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.generated
}
