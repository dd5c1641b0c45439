package auth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func open(t *testing.T, dir string) *Auth {
	t.Helper()
	a, err := Open(Options{Dir: dir, Cost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestFirstStartGeneratesPassword(t *testing.T) {
	dir := t.TempDir()
	a := open(t, dir)
	pwPath := filepath.Join(dir, PasswordFile)
	fi, err := os.Stat(pwPath)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin-password: %v %v", fi, err)
	}
	data, _ := os.ReadFile(pwPath)
	pw := strings.TrimSpace(string(data))
	if len(pw) != 20 {
		t.Fatalf("generated password %q", pw)
	}
	if !a.CheckPassword(AdminUser, pw) || a.CheckPassword(AdminUser, pw+"x") || a.CheckPassword("root", pw) || a.CheckPassword(AdminUser, "") {
		t.Fatal("CheckPassword is wrong")
	}
	// auth.json holds a bcrypt hash, not the password.
	state, _ := os.ReadFile(filepath.Join(dir, stateFile))
	if strings.Contains(string(state), pw) || !strings.Contains(string(state), "$2a$") {
		t.Errorf("auth.json: %s", state)
	}
	// A restart keeps the same password.
	if !open(t, dir).CheckPassword(AdminUser, pw) {
		t.Error("password lost over a restart")
	}
	if !open(t, dir).PasswordChangeRequired() {
		t.Error("a generated password no longer asks to be changed after a restart")
	}
	// Two installations differ.
	if other := GeneratePassword(); other == pw {
		t.Error("the same password twice")
	}
}

func TestPresetPassword(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, PasswordFile), []byte("operator-chosen-pw\n"), 0o600)
	a := open(t, dir)
	if !a.CheckPassword(AdminUser, "operator-chosen-pw") {
		t.Error("preset password not used")
	}
	if a.PasswordChangeRequired() || open(t, dir).PasswordChangeRequired() {
		t.Error("an operator-chosen password asks to be changed")
	}
}

func TestSetPassword(t *testing.T) {
	dir := t.TempDir()
	a := open(t, dir)
	data, _ := os.ReadFile(filepath.Join(dir, PasswordFile))
	pw := strings.TrimSpace(string(data))
	s := a.NewSession(AdminUser)
	if !a.PasswordChangeRequired() {
		t.Error("the generated password does not ask to be changed")
	}
	if err := a.SetPassword("wrong", "a-new-long-password"); err != ErrBadPassword {
		t.Errorf("wrong current: %v", err)
	}
	if err := a.SetPassword(pw, "short"); err != ErrWeakPassword {
		t.Errorf("short: %v", err)
	}
	if err := a.SetPassword(pw, "a-new-long-password"); err != nil {
		t.Fatal(err)
	}
	if a.CheckPassword(AdminUser, pw) || !a.CheckPassword(AdminUser, "a-new-long-password") {
		t.Error("password not changed")
	}
	if a.PasswordChangeRequired() {
		t.Error("a changed password still asks to be changed")
	}
	if _, ok := a.Session(s.ID); ok {
		t.Error("session survived a password change")
	}
	if _, err := os.Stat(filepath.Join(dir, PasswordFile)); !os.IsNotExist(err) {
		t.Error("admin-password not removed")
	}
	if !open(t, dir).CheckPassword(AdminUser, "a-new-long-password") {
		t.Error("new password not persisted")
	}
}

func TestTokens(t *testing.T) {
	dir := t.TempDir()
	a := open(t, dir)
	if _, _, err := a.CreateToken(""); err != ErrBadTokenName {
		t.Errorf("empty name: %v", err)
	}
	tok, secret, err := a.CreateToken("ci")
	if err != nil || !strings.HasPrefix(secret, TokenPrefix) {
		t.Fatal(tok, secret, err)
	}
	if got, ok := a.CheckToken(secret); !ok || got.ID != tok.ID {
		t.Fatal("token not accepted")
	}
	if _, ok := a.CheckToken(secret + "x"); ok {
		t.Fatal("wrong token accepted")
	}
	state, _ := os.ReadFile(filepath.Join(dir, stateFile))
	if strings.Contains(string(state), secret) || strings.Contains(string(state), strings.TrimPrefix(secret, TokenPrefix)) {
		t.Error("token secret stored")
	}
	b := open(t, dir)
	if _, ok := b.CheckToken(secret); !ok || len(b.Tokens()) != 1 || b.Tokens()[0].Name != "ci" {
		t.Fatal("token not persisted")
	}
	if err := a.RevokeToken(tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.CheckToken(secret); ok || a.TokenValid(tok.ID) {
		t.Error("revoked token accepted")
	}
	if err := a.RevokeToken(tok.ID); err != ErrNoToken {
		t.Errorf("second revoke: %v", err)
	}
	if _, ok := open(t, dir).CheckToken(secret); ok {
		t.Error("revoked token accepted after a restart")
	}
}

func TestSessions(t *testing.T) {
	a := open(t, t.TempDir())
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	a.now = func() time.Time { return now }
	a.SetSessionTTL(time.Hour)
	s := a.NewSession(AdminUser)
	if len(s.ID) < 40 || len(s.CSRF) < 40 || s.ID == s.CSRF {
		t.Fatalf("session %+v", s)
	}
	now = now.Add(50 * time.Minute)
	if _, ok := a.Session(s.ID); !ok {
		t.Fatal("session expired early")
	}
	now = now.Add(50 * time.Minute) // idle 50m since last use: still alive
	if !a.SessionValid(s.ID) {
		t.Fatal("use did not extend the session")
	}
	now = now.Add(61 * time.Minute)
	if _, ok := a.Session(s.ID); ok {
		t.Fatal("idle session still valid")
	}
	s2 := a.NewSession(AdminUser)
	a.EndSession(s2.ID)
	if a.SessionValid(s2.ID) {
		t.Error("ended session valid")
	}
	for i := 0; i < maxSessions+10; i++ {
		a.NewSession(AdminUser)
	}
	if len(a.sessions) > maxSessions {
		t.Errorf("%d sessions", len(a.sessions))
	}
}

func TestLimiter(t *testing.T) {
	l := NewLimiter()
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	l.SetClock(func() time.Time { return now })
	for i := 0; i < freeFailures-1; i++ {
		if d := l.Fail("a"); d != 0 {
			t.Fatalf("locked after %d failures", i+1)
		}
	}
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("locked too early")
	}
	if d := l.Fail("a"); d != lockBase {
		t.Fatalf("lockout %v", d)
	}
	if ok, wait := l.Allow("a"); ok || wait != lockBase {
		t.Fatalf("Allow = %v %v", ok, wait)
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Fatal("another address locked")
	}
	now = now.Add(lockBase)
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("still locked after the lockout")
	}
	if d := l.Fail("a"); d != 2*lockBase {
		t.Fatalf("second lockout %v", d)
	}
	for i := 0; i < 20; i++ {
		l.Fail("a")
	}
	if _, wait := l.Allow("a"); wait != lockMax {
		t.Fatalf("capped lockout %v", wait)
	}
	l.Succeed("a")
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("success did not reset")
	}
	for i := 0; i < maxTracked+100; i++ {
		l.Fail(strings.Repeat("x", i%7) + time.Duration(i).String())
	}
	if len(l.m) > maxTracked {
		t.Errorf("%d addresses tracked", len(l.m))
	}
}
