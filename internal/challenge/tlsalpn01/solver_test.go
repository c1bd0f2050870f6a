package tlsalpn01

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

const testKeyAuth = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"

// oidACMEIdentifier is id-pe-acmeIdentifier (RFC 8737 §6.1).
var oidACMEIdentifier = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 31}

// dial opens a TLS connection to addr the way a validator does, bounded in time.
func dial(t *testing.T, addr string, cfg *tls.Config) (*tls.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d := tls.Dialer{Config: cfg}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return c.(*tls.Conn), nil
}

// validatorConfig is what a CA sends: only acme-tls/1, and no chain
// verification (the challenge certificate is self-signed).
func validatorConfig(serverName string) *tls.Config {
	return &tls.Config{
		ServerName:         serverName,
		NextProtos:         []string{ALPNProto},
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // RFC 8737 §4: the validator checks the extension, not a chain
	}
}

// checkChallengeCert verifies the acmeIdentifier extension and the SAN.
func checkChallengeCert(t *testing.T, cert *x509.Certificate, keyAuth, wantDNS, wantIP string) {
	t.Helper()
	var ext []byte
	for _, e := range cert.Extensions {
		if e.Id.Equal(oidACMEIdentifier) {
			if !e.Critical {
				t.Errorf("acmeIdentifier extension: got non-critical, want critical")
			}
			ext = e.Value
		}
	}
	if ext == nil {
		t.Fatalf("acmeIdentifier extension %v: missing", oidACMEIdentifier)
	}
	var digest []byte
	if _, err := asn1.Unmarshal(ext, &digest); err != nil {
		t.Fatalf("acmeIdentifier value: %v", err)
	}
	want := sha256.Sum256([]byte(keyAuth))
	if !bytes.Equal(digest, want[:]) {
		t.Errorf("acmeIdentifier digest: got %x, want %x", digest, want)
	}
	if wantDNS != "" && (len(cert.DNSNames) != 1 || cert.DNSNames[0] != wantDNS) {
		t.Errorf("DNS SANs: got %v, want [%s]", cert.DNSNames, wantDNS)
	}
	if wantIP != "" && (len(cert.IPAddresses) != 1 || cert.IPAddresses[0].String() != wantIP) {
		t.Errorf("IP SANs: got %v, want [%s]", cert.IPAddresses, wantIP)
	}
}

func TestListenServesChallengeCert(t *testing.T) {
	tests := []struct {
		name, domain, serverName, wantDNS, wantIP string
	}{
		{name: "dns name", domain: "example.test", serverName: "example.test", wantDNS: "example.test"},
		{name: "mixed case domain", domain: "Www.Example.TEST", serverName: "www.example.test", wantDNS: "www.example.test"},
		{name: "mixed case sni", domain: "api.example.test", serverName: "API.example.test", wantDNS: "api.example.test"},
		{name: "ipv4 identifier", domain: "127.0.0.1", serverName: "1.0.0.127.in-addr.arpa", wantIP: "127.0.0.1"},
	}
	sol := NewSolver()
	srv, err := sol.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	defer srv.Close()
	ctx := context.Background()

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := sol.Present(ctx, tt.domain, "token", testKeyAuth); err != nil {
				t.Fatalf("Present: %v", err)
			}
			defer sol.CleanUp(ctx, tt.domain, "token", testKeyAuth)

			conn, err := dial(t, srv.Addr().String(), validatorConfig(tt.serverName))
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			defer conn.Close()
			st := conn.ConnectionState()
			if st.NegotiatedProtocol != ALPNProto {
				t.Errorf("negotiated protocol: got %q, want %q", st.NegotiatedProtocol, ALPNProto)
			}
			if st.Version < tls.VersionTLS12 {
				t.Errorf("TLS version: got %x, want >= 1.2", st.Version)
			}
			checkChallengeCert(t, st.PeerCertificates[0], testKeyAuth, tt.wantDNS, tt.wantIP)

			// The server closes after the handshake; a read sees the end.
			if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
				t.Fatalf("set deadline: %v", err)
			}
			if n, err := conn.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
				t.Errorf("read after handshake: got %d bytes, %v; want io.EOF", n, err)
			}
		})
	}
}

func TestListenRefusesNonChallengeHandshakes(t *testing.T) {
	sol := NewSolver()
	if err := sol.Present(context.Background(), "example.test", "token", testKeyAuth); err != nil {
		t.Fatalf("Present: %v", err)
	}
	srv, err := sol.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	defer srv.Close()

	tests := []struct {
		name   string
		modify func(*tls.Config)
	}{
		{"no alpn", func(c *tls.Config) { c.NextProtos = nil }},
		{"h2 only", func(c *tls.Config) { c.NextProtos = []string{"h2", "http/1.1"} }},
		{"unknown server name", func(c *tls.Config) { c.ServerName = "other.test" }},
		{"tls 1.1", func(c *tls.Config) { c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS11 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validatorConfig("example.test")
			tt.modify(cfg)
			conn, err := dial(t, srv.Addr().String(), cfg)
			if err == nil {
				conn.Close()
				t.Fatalf("handshake: got success, want failure")
			}
		})
	}
}

func TestGetCertificate(t *testing.T) {
	sol := NewSolver()
	if err := sol.Present(context.Background(), "example.test", "token", testKeyAuth); err != nil {
		t.Fatalf("Present: %v", err)
	}
	tests := []struct {
		name    string
		hello   *tls.ClientHelloInfo
		wantErr bool
	}{
		{"acme-tls/1 only", &tls.ClientHelloInfo{ServerName: "example.test", SupportedProtos: []string{ALPNProto}}, false},
		{"acme-tls/1 among others", &tls.ClientHelloInfo{ServerName: "example.test", SupportedProtos: []string{"h2", ALPNProto}}, false},
		{"trailing dot", &tls.ClientHelloInfo{ServerName: "example.test.", SupportedProtos: []string{ALPNProto}}, false},
		{"no alpn", &tls.ClientHelloInfo{ServerName: "example.test"}, true},
		{"h2 only", &tls.ClientHelloInfo{ServerName: "example.test", SupportedProtos: []string{"h2"}}, true},
		{"unknown name", &tls.ClientHelloInfo{ServerName: "other.test", SupportedProtos: []string{ALPNProto}}, true},
		{"no sni", &tls.ClientHelloInfo{SupportedProtos: []string{ALPNProto}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert, err := sol.GetCertificate(tt.hello)
			if tt.wantErr {
				if cert != nil || !errors.Is(err, ErrNoChallenge) {
					t.Errorf("GetCertificate: got (%v, %v), want (nil, ErrNoChallenge)", cert != nil, err)
				}
				return
			}
			if err != nil || cert == nil {
				t.Fatalf("GetCertificate: got (%v, %v), want a certificate", cert != nil, err)
			}
			checkChallengeCert(t, cert.Leaf, testKeyAuth, "example.test", "")
		})
	}
	if got := IsChallengeHello(nil); got {
		t.Errorf("IsChallengeHello(nil): got true, want false")
	}
}

func TestTLSConfig(t *testing.T) {
	cfg := NewSolver().TLSConfig()
	if len(cfg.NextProtos) != 1 || cfg.NextProtos[0] != "acme-tls/1" {
		t.Errorf("NextProtos: got %v, want [acme-tls/1]", cfg.NextProtos)
	}
	if cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion: got %x, want %x", cfg.MinVersion, tls.VersionTLS12)
	}
	if cfg.GetCertificate == nil {
		t.Errorf("GetCertificate: got nil, want the solver's")
	}
}

func TestCleanUp(t *testing.T) {
	ctx := context.Background()
	hello := &tls.ClientHelloInfo{ServerName: "example.test", SupportedProtos: []string{ALPNProto}}
	tests := []struct {
		name       string
		domain     string
		keyAuth    string
		wantServed bool
	}{
		{"matching key authorization removes", "example.test", testKeyAuth, false},
		{"case-insensitive domain removes", "EXAMPLE.test", testKeyAuth, false},
		{"stale key authorization keeps the newer one", "example.test", "token.older-thumbprint", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sol Solver // the zero value must work
			if err := sol.Present(ctx, "example.test", "token", testKeyAuth); err != nil {
				t.Fatalf("Present: %v", err)
			}
			if err := sol.CleanUp(ctx, tt.domain, "token", tt.keyAuth); err != nil {
				t.Fatalf("CleanUp: %v", err)
			}
			_, err := sol.GetCertificate(hello)
			if got := err == nil; got != tt.wantServed {
				t.Errorf("served after CleanUp: got %v (err %v), want %v", got, err, tt.wantServed)
			}
		})
	}
	if err := NewSolver().Present(ctx, " ", "token", testKeyAuth); err == nil {
		t.Errorf("Present with an empty domain: got nil error, want one")
	}
}

// TestConcurrentPresentCleanUpServe presents and cleans up names while real
// handshakes run against them; run it with -race. Counts are fixed.
func TestConcurrentPresentCleanUpServe(t *testing.T) {
	const presenters, rounds, dialers, dials = 2, 3, 4, 8
	sol := NewSolver()
	srv, err := sol.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	defer srv.Close()
	ctx := context.Background()
	// A name that stays presented throughout, so every dialer must succeed.
	if err := sol.Present(ctx, "steady.test", "token", testKeyAuth); err != nil {
		t.Fatalf("Present: %v", err)
	}

	var wg sync.WaitGroup
	errs := make(chan error, presenters*rounds+dialers*dials)
	for p := range presenters {
		wg.Go(func() {
			for r := range rounds {
				domain := fmt.Sprintf("n%d-%d.example.test", p, r)
				keyAuth := fmt.Sprintf("t%d%d.thumb", p, r)
				if err := sol.Present(ctx, domain, "token", keyAuth); err != nil {
					errs <- err
					return
				}
				if _, err := sol.GetCertificate(&tls.ClientHelloInfo{ServerName: domain, SupportedProtos: []string{ALPNProto}}); err != nil {
					errs <- fmt.Errorf("%s right after Present: %w", domain, err)
				}
				if err := sol.CleanUp(ctx, domain, "token", keyAuth); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for range dialers {
		wg.Go(func() {
			for range dials {
				conn, err := dial(t, srv.Addr().String(), validatorConfig("steady.test"))
				if err != nil {
					errs <- fmt.Errorf("handshake: %w", err)
					return
				}
				conn.Close()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestReverseName(t *testing.T) {
	tests := []struct{ ip, want string }{
		{"127.0.0.1", "1.0.0.127.in-addr.arpa"},
		{"192.0.2.10", "10.2.0.192.in-addr.arpa"},
		{"::1", "1." + strings.Repeat("0.", 31) + "ip6.arpa"},
		{"2001:db8::567:89ab", "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"},
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			if got := reverseName(net.ParseIP(tt.ip)); got != tt.want {
				t.Errorf("reverseName(%s):\n got %s\nwant %s", tt.ip, got, tt.want)
			}
		})
	}
}
