// Package auth holds the management plane's credentials: the admin
// password (bcrypt), API tokens (stored as SHA-256 hashes), browser sessions
// with their CSRF tokens, the per-address login rate limiter, and the HTTPS
// certificate (self-signed ECDSA generated on first start, or the
// operator's).
//
// There is no default password. On first start, unless DATA/admin-password
// already holds one, a random password is generated and written there
// (mode 0600) for the serial-console tool to show; only its hash is kept in
// DATA/auth.json. Changing the password removes DATA/admin-password.
package auth
