// Package deploytest holds helpers shared by the deploy tests: a
// concurrency-safe log sink, self-signed certificates, a TLS look at what
// a listener serves, loopback sockets to hand to a child process, and a
// deploy.Runner built and run against a test CA. Import it from _test.go
// files only; since it imports deploy, a test inside deploy or one of the
// packages deploy imports must be an external (_test) package to use it.
package deploytest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/storage"
)

// Buffer is a log sink safe for concurrent writers.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// SelfSigned returns a PEM certificate for name (valid for a day) and its
// PEM (PKCS#8) key.
func SelfSigned(t testing.TB, name string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 63))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})
}

// Bundle is a self-signed certificate set named name; with mismatch, its
// key belongs to another certificate.
func Bundle(t testing.TB, name string, mismatch bool) *storage.Bundle {
	t.Helper()
	cert, key := SelfSigned(t, name)
	if mismatch {
		_, key = SelfSigned(t, name)
	}
	return &storage.Bundle{Meta: storage.CertMeta{ID: name, Domains: []string{name}}, Certificate: cert, PrivateKey: key}
}

// Leaf parses the first certificate of a PEM bundle.
func Leaf(t testing.TB, certPEM []byte) *x509.Certificate {
	t.Helper()
	blk, _ := pem.Decode(certPEM)
	if blk == nil {
		t.Fatal("no PEM certificate")
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Served returns the chain a TLS listener presents for sni.
func Served(addr, sni string) ([]*x509.Certificate, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d := tls.Dialer{Config: &tls.Config{ServerName: sni, InsecureSkipVerify: true}}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState().PeerCertificates, nil
}

// ServedSerial is the serial of the leaf served for sni; it fails the test
// when the handshake fails.
func ServedSerial(t testing.TB, addr, sni string) *big.Int {
	t.Helper()
	chain, err := Served(addr, sni)
	if err != nil {
		t.Fatalf("TLS to %s (SNI %s): %v", addr, sni, err)
	}
	return chain[0].SerialNumber
}

// LookPath finds a program in PATH, or in /usr/sbin and /sbin, where
// Debian installs haproxy and nginx but a non-root PATH may not look.
func LookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if p, err := exec.LookPath(filepath.Join(dir, name)); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in PATH, /usr/sbin or /sbin", name)
}
