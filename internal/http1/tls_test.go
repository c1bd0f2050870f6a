package http1

import (
	"crypto/tls"
	"crypto/x509"
	"testing"

	"github.com/zoku/zoku/internal/testkit/deploytest"
)

// tlsConfigs returns a server config for a self-signed certificate of
// http1.test offering h2 and http/1.1, and a client config trusting it
// that asks for http/1.1 (the tests dial 127.0.0.1 and name http1.test).
func tlsConfigs(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	certPEM, keyPEM := deploytest.SelfSigned(t, "http1.test")
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	server = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
	client = &tls.Config{RootCAs: pool, ServerName: "http1.test", NextProtos: []string{"http/1.1"}}
	return server, client
}
