package embedca

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"time"
)

// serverCertLifetime is generous because the certificate lives only in
// memory, for one process; a long `zoku run` must not outlive it.
const serverCertLifetime = 10 * 365 * 24 * time.Hour

// newServerCert generates the self-signed ECDSA certificate the ACME API is
// served with, for 127.0.0.1, ::1, localhost and StableHost.
// tls.Certificate.Leaf is set.
func newServerCert(now time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("embedca: generate TLS server key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("embedca: generate TLS server serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "zoku embedded ACME server"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(serverCertLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost", StableHost},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("embedca: create TLS server certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("embedca: parse TLS server certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// newHTTPClient returns a client whose only trusted certificate is leaf,
// which never uses a proxy (the CA is on loopback), and which dials addr,
// the CA's listener, for StableHost.
func newHTTPClient(leaf *x509.Certificate, addr string) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	stable := net.JoinHostPort(StableHost, "443")
	return &http.Client{
		Timeout: time.Minute,
		Transport: &http.Transport{
			Proxy: nil,
			DialContext: func(ctx context.Context, network, target string) (net.Conn, error) {
				if target == stable {
					target = addr
				}
				return dialer.DialContext(ctx, network, target)
			},
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
			MaxIdleConnsPerHost:   8,
			IdleConnTimeout:       30 * time.Second,
			TLSClientConfig: &tls.Config{
				MinVersion: tls.VersionTLS12,
				RootCAs:    pool,
			},
		},
	}
}
