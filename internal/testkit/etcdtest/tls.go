package etcdtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/testkit/need"
	"github.com/zoku/zoku/internal/testkit/testenv"
)

// TLSFiles are the PEM files of a server of StartTLS: a throwaway CA, the
// server's certificate (127.0.0.1) and a client certificate that the
// server accepts (CN "zoku-client"). Keys are PKCS#8.
type TLSFiles struct {
	CA                    string
	ServerCert, ServerKey string
	ClientCert, ClientKey string
	// OtherCA is a second CA that signed nothing of this server: a client
	// trusting only it must fail.
	OtherCA string

	client *tls.Config // for the readiness probe
}

// StartTLS starts etcd with TLS on its client URL and client certificates
// required (--client-cert-auth), with a CA and certificates made for this
// test; it stops in t.Cleanup.
func StartTLS(t testing.TB) (*Server, *TLSFiles) {
	t.Helper()
	bin := need.Binary(t, "etcd", "apt-get install -y etcd-server")
	files := MakeTLSFiles(t, t.TempDir())
	s := &Server{bin: bin, dir: t.TempDir(), clientPort: testenv.FreePort(t), peerPort: testenv.FreePort(t), tls: files}
	if err := s.start(); err != nil {
		t.Fatalf("etcdtest: %v", err)
	}
	t.Cleanup(func() { s.Stop() })
	return s, files
}

// MakeTLSFiles writes the CA, server and client certificates of StartTLS
// into dir (for tests of bad TLS files that need no server).
func MakeTLSFiles(t testing.TB, dir string) *TLSFiles {
	t.Helper()
	f := &TLSFiles{
		CA: filepath.Join(dir, "ca.pem"), OtherCA: filepath.Join(dir, "other-ca.pem"),
		ServerCert: filepath.Join(dir, "server.pem"), ServerKey: filepath.Join(dir, "server-key.pem"),
		ClientCert: filepath.Join(dir, "client.pem"), ClientKey: filepath.Join(dir, "client-key.pem"),
	}
	caCert, caKey := newCert(t, nil, nil, &x509.Certificate{
		Subject: pkix.Name{CommonName: "etcdtest CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	})
	writePEM(t, f.CA, "CERTIFICATE", caCert.Raw)
	other, _ := newCert(t, nil, nil, &x509.Certificate{
		Subject: pkix.Name{CommonName: "etcdtest other CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign,
	})
	writePEM(t, f.OtherCA, "CERTIFICATE", other.Raw)
	// etcd also dials itself with its server certificate, so it gets
	// both usages.
	srv, srvKey := newCert(t, caCert, caKey, &x509.Certificate{
		Subject: pkix.Name{CommonName: "etcdtest server"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	})
	writePEM(t, f.ServerCert, "CERTIFICATE", srv.Raw)
	writeKey(t, f.ServerKey, srvKey)
	cli, cliKey := newCert(t, caCert, caKey, &x509.Certificate{
		Subject:  pkix.Name{CommonName: "zoku-client"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	writePEM(t, f.ClientCert, "CERTIFICATE", cli.Raw)
	writeKey(t, f.ClientKey, cliKey)
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	f.client = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{{
		Certificate: [][]byte{cli.Raw}, PrivateKey: cliKey, Leaf: cli,
	}}}
	return f
}

// newCert makes a certificate from tmpl, signed by parent (self-signed
// when parent is nil), with a new P-256 key.
func newCert(t testing.TB, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, tmpl *x509.Certificate) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 63))
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func writeKey(t testing.TB, path string, key *ecdsa.PrivateKey) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, path, "PRIVATE KEY", der)
}
