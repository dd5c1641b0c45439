package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ftbridge/ftbridge/firmware/config"
)

// CertInfo describes the certificate in use.
type CertInfo struct {
	Subject     string    `json:"subject"`
	Issuer      string    `json:"issuer"`
	NotBefore   time.Time `json:"not_before"`
	NotAfter    time.Time `json:"not_after"`
	DNSNames    []string  `json:"dns_names"`
	IPAddresses []string  `json:"ip_addresses"`
	SelfSigned  bool      `json:"self_signed"`
	SHA256      string    `json:"sha256"`
}

// CertStore holds the HTTPS certificate, in DIR/cert.pem and DIR/key.pem.
type CertStore struct {
	dir string

	mu   sync.RWMutex
	cert *tls.Certificate
	info CertInfo
}

// OpenCertStore loads the certificate in dir, or generates a self-signed
// ECDSA P-256 one valid for ten years, naming localhost, the host name,
// 127.0.0.1, ::1 and the given extra names and addresses.
func OpenCertStore(dir string, extra ...string) (*CertStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	c := &CertStore{dir: dir}
	certPEM, err1 := os.ReadFile(filepath.Join(dir, "cert.pem"))
	keyPEM, err2 := os.ReadFile(filepath.Join(dir, "key.pem"))
	if err1 == nil && err2 == nil {
		if err := c.set(certPEM, keyPEM); err == nil {
			return c, nil
		}
		// A damaged pair is replaced rather than keeping the box unreachable.
	}
	certPEM, keyPEM, err := SelfSigned(extra...)
	if err != nil {
		return nil, err
	}
	if err := c.Install(certPEM, keyPEM); err != nil {
		return nil, err
	}
	return c, nil
}

// SelfSigned returns a new self-signed certificate and key, PEM encoded.
func SelfSigned(extra ...string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		return nil, nil, err
	}
	host, _ := os.Hostname()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "ftbridge " + host, Organization: []string{"ftbridge appliance"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // so that clients can trust it as its own root
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	names := append([]string{host}, extra...)
	for _, n := range names {
		if n == "" || n == "localhost" {
			continue
		}
		if ip := net.ParseIP(n); ip != nil {
			if !ip.IsUnspecified() && !ip.IsLoopback() {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			}
			continue
		}
		tmpl.DNSNames = append(tmpl.DNSNames, n)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), nil
}

// set parses a pair and makes it current, without writing it.
func (c *CertStore) set(certPEM, keyPEM []byte) error {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("certificate and key: %w", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return err
	}
	if time.Now().After(leaf.NotAfter) {
		return errors.New("the certificate has expired")
	}
	pair.Leaf = leaf
	sum := sha256.Sum256(leaf.Raw)
	info := CertInfo{
		Subject: leaf.Subject.String(), Issuer: leaf.Issuer.String(), NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter,
		DNSNames: leaf.DNSNames, SelfSigned: leaf.Subject.String() == leaf.Issuer.String() && leaf.CheckSignatureFrom(leaf) == nil,
		SHA256: hex.EncodeToString(sum[:]), IPAddresses: []string{},
	}
	for _, ip := range leaf.IPAddresses {
		info.IPAddresses = append(info.IPAddresses, ip.String())
	}
	c.mu.Lock()
	c.cert, c.info = &pair, info
	c.mu.Unlock()
	return nil
}

// Install checks a certificate and its key, writes them (key 0600) and
// uses them from the next TLS handshake on.
func (c *CertStore) Install(certPEM, keyPEM []byte) error {
	probe := &CertStore{}
	if err := probe.set(certPEM, keyPEM); err != nil {
		return err
	}
	if err := config.WriteFileAtomic(filepath.Join(c.dir, "key.pem"), keyPEM, 0o600); err != nil {
		return err
	}
	if err := config.WriteFileAtomic(filepath.Join(c.dir, "cert.pem"), certPEM, 0o644); err != nil {
		return err
	}
	return c.set(certPEM, keyPEM)
}

// Info describes the certificate in use.
func (c *CertStore) Info() CertInfo {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.info
}

// CertPath is the PEM file of the certificate, for clients to trust.
func (c *CertStore) CertPath() string { return filepath.Join(c.dir, "cert.pem") }

// tls12Suites are the TLS 1.2 suites served: ECDHE (forward secrecy) with
// an AEAD cipher. Go's defaults also accept the CBC-SHA1 ECDHE suites,
// which the audit refuses. TLS 1.3 suites are all AEAD and not configurable.
var tls12Suites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// TLSConfig returns a server configuration that serves the current
// certificate, TLS 1.2 or newer, with ECDHE and AEAD suites only.
func (c *CertStore) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		CipherSuites: tls12Suites,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			c.mu.RLock()
			defer c.mu.RUnlock()
			return c.cert, nil
		},
	}
}
