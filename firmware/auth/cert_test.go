package auth

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
)

func TestCertStore(t *testing.T) {
	dir := t.TempDir()
	c, err := OpenCertStore(dir, "198.18.0.1", "box.example")
	if err != nil {
		t.Fatal(err)
	}
	info := c.Info()
	if !info.SelfSigned || len(info.SHA256) != 64 {
		t.Errorf("info %+v", info)
	}
	fi, err := os.Stat(filepath.Join(dir, "key.pem"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key.pem %v %v", fi, err)
	}
	// Persisted: a reopen serves the same certificate.
	c2, err := OpenCertStore(dir)
	if err != nil || c2.Info().SHA256 != info.SHA256 {
		t.Fatalf("reopen: %v %s", err, c2.Info().SHA256)
	}
	// A TLS client trusting cert.pem connects to 127.0.0.1 and box.example.
	ln, err := tls.Listen("tcp", "127.0.0.1:0", c.TLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.(*tls.Conn).Handshake()
			conn.Close()
		}
	}()
	pool := x509.NewCertPool()
	pemData, _ := os.ReadFile(c.CertPath())
	pool.AppendCertsFromPEM(pemData)
	for _, name := range []string{"127.0.0.1", "box.example", "localhost"} {
		conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: name})
		if err != nil {
			t.Errorf("dial as %s: %v", name, err)
			continue
		}
		conn.Close()
	}
	if _, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "other.example"}); err == nil {
		t.Error("certificate valid for a name it does not have")
	}
	// Install a new pair: served from the next handshake.
	certPEM, keyPEM, err := SelfSigned("198.18.0.2")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Install(certPEM, []byte("junk")); err == nil {
		t.Error("bad key accepted")
	}
	if err := c.Install(certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	pool2 := x509.NewCertPool()
	pool2.AppendCertsFromPEM(certPEM)
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool2, ServerName: "198.18.0.2"})
	if err != nil {
		t.Fatalf("new certificate not served: %v", err)
	}
	conn.Close()
	// A damaged pair on disk is replaced at open.
	os.WriteFile(filepath.Join(dir, "cert.pem"), []byte("damaged"), 0o644)
	c3, err := OpenCertStore(dir)
	if err != nil || c3.Info().SHA256 == "" {
		t.Fatalf("damaged pair: %v", err)
	}
}
