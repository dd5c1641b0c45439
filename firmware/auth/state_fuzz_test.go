package auth

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/ftbridge/ftbridge/firmware/internal/fuzzdir"
)

// FuzzOpenState opens the credential store over an arbitrary auth.json (a
// damaged data partition, a hand edit, a file from another version). What
// must hold for any content:
//
//   - Open either fails with an error that names the file, or succeeds;
//   - on success the admin password is never empty: a state without a hash
//     gets a generated password, which then verifies;
//   - a wrong password never verifies, whatever the stored hash holds;
//   - the state round-trips: after one change is saved (a token created, or
//     one revoked when the table is full) a reopen lists exactly the tokens
//     listed before with that change, keeps the admin hash and the "still
//     the generated password" flag, and a token created before the reopen
//     still authenticates after it.
func FuzzOpenState(f *testing.F) {
	hash, err := bcrypt.GenerateFromPassword([]byte("operator-chosen-pw"), bcrypt.MinCost)
	if err != nil {
		f.Fatal(err)
	}
	tok := `{"id":"AbCdEfGhIjKl","name":"ci","sha256":"` + strings.Repeat("ab", 32) + `","created":"2025-01-01T10:00:00Z"}`
	f.Add(`{"admin_hash":"` + string(hash) + `","tokens":[]}`)
	f.Add(`{"admin_hash":"` + string(hash) + `","tokens":[` + tok + `],"generated":true}`)
	f.Add(`{"admin_hash":"` + string(hash) + `","tokens":[` + strings.Replace(tok, `"created"`, `"last_used":"2025-02-01T00:00:00+01:00","created"`, 1) + `,` +
		strings.Replace(tok, "ab", "zz", 1) + `]}`)
	f.Add(`{"admin_hash":"","tokens":null}`)
	f.Add(`{"admin_hash":"$2a$04$short","tokens":[{"id":"","sha256":""}]}`)
	f.Add(`{}`)
	f.Add(`{"admin_hash":`)
	f.Add("")
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, state string) {
		if len(state) > 1<<20 {
			return
		}
		dir := fuzzdir.New(t, "auth")
		path := filepath.Join(dir, stateFile)
		if err := os.WriteFile(path, []byte(state), 0o600); err != nil {
			t.Fatal(err)
		}
		a, err := Open(Options{Dir: dir, Cost: bcrypt.MinCost})
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("the error does not say which file is at fault: %v", err)
			}
			return
		}
		if len(a.adminHash) == 0 {
			t.Fatal("opened without an admin password")
		}
		if pw, err := os.ReadFile(filepath.Join(dir, PasswordFile)); err == nil {
			// Written by Open: the state had no hash.
			if !a.CheckPassword(AdminUser, strings.TrimSpace(string(pw))) {
				t.Fatal("the generated password does not verify")
			}
		}
		if a.CheckPassword(AdminUser, "not-the-password-\x00") {
			t.Fatal("a wrong password verified")
		}

		// A fixed clock for the token's creation time, so that the same
		// input takes the same path through the encoding every run.
		a.now = func() time.Time { return time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC) }
		before := a.Tokens()
		hashBefore, genBefore := string(a.adminHash), a.PasswordChangeRequired()
		want := before
		var secret string
		switch _, s, err := a.CreateToken("fuzz"); {
		case errors.Is(err, ErrTooManyTokens):
			if err := a.RevokeToken(before[0].ID); err != nil {
				t.Fatal(err)
			}
			want = before[1:]
		case err != nil:
			t.Fatal(err)
		default:
			secret = s
		}
		b, err := Open(Options{Dir: dir, Cost: bcrypt.MinCost})
		if err != nil {
			t.Fatalf("reopen after a save: %v", err)
		}
		after := b.Tokens()
		if secret != "" {
			if len(after) == 0 {
				t.Fatal("the new token was lost")
			}
			var found bool
			for i, tk := range after {
				if tk.Name == "fuzz" && b.TokenValid(tk.ID) {
					if got, ok := b.CheckToken(secret); ok && got.ID == tk.ID {
						found = true
						after = append(after[:i:i], after[i+1:]...)
						break
					}
				}
			}
			if !found {
				t.Fatalf("the token created before the reopen does not authenticate after it: %+v", after)
			}
		}
		if len(after) != len(want) {
			t.Fatalf("tokens after reopen %+v, want %+v", after, want)
		}
		for i := range want {
			w, g := want[i], after[i]
			if g.ID != w.ID || g.Name != w.Name || !g.Created.Equal(w.Created) || !g.LastUsed.Equal(w.LastUsed) || g.hash != w.hash {
				t.Fatalf("token %d after reopen %+v, want %+v", i, g, w)
			}
		}
		if string(b.adminHash) != hashBefore || b.PasswordChangeRequired() != genBefore {
			t.Fatal("the admin password or its generated flag changed over a save and reopen")
		}
	})
}
