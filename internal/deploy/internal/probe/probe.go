// Package probe looks at a load balancer from the outside, the way a
// client or the CA does: which certificate a TLS listener serves for a
// name, and whether an HTTP-01 answer is reachable before the CA is asked
// to fetch it.
package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"strings"
	"time"

	"github.com/zoku/zoku/internal/deploy/internal/certfile"
)

// Spec says where and how long to look for a served certificate.
type Spec struct {
	// Address is host:port of the TLS listener.
	Address string
	// ServerName is the SNI to send; empty means none.
	ServerName string
	// Timeout bounds Wait; zero means 30 s.
	Timeout time.Duration
}

// Leaf does one TLS handshake with address, sending serverName as SNI, and
// returns the certificate served. It checks no chain: the caller compares
// the leaf with the one it installed.
func Leaf(ctx context.Context, address, serverName string) (*x509.Certificate, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	d := tls.Dialer{Config: &tls.Config{ServerName: serverName, InsecureSkipVerify: true}} //nolint:gosec // compared with the installed leaf below
	conn, err := d.DialContext(ctx, "tcp", address)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	certs := conn.(*tls.Conn).ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return nil, errors.New("no certificate served")
	}
	return certs[0], nil
}

// Wait handshakes with s.Address until it serves want (same DER), or
// s.Timeout passes. Reloads are asynchronous (an nginx worker that has not
// yet seen its reload still answers), so one look is not enough.
func Wait(ctx context.Context, s Spec, want *x509.Certificate) error {
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	interval := 100 * time.Millisecond
	for {
		got, err := Leaf(ctx, s.Address, s.ServerName)
		if err == nil && bytes.Equal(got.Raw, want.Raw) {
			return nil
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			if err != nil {
				return fmt.Errorf("TLS check of %s (SNI %q): %w", s.Address, s.ServerName, err)
			}
			return fmt.Errorf("TLS check of %s (SNI %q): serves serial %s, not the new %s, after %s", s.Address, s.ServerName, certfile.SerialHex(got.SerialNumber), certfile.SerialHex(want.SerialNumber), timeout)
		case <-t.C:
		}
		interval = min(interval*2, time.Second)
	}
}

// ServerName is the SNI to check a certificate for domains with: the first
// DNS name, with a wildcard's "*" replaced; empty for an IP address.
func ServerName(domains []string) string {
	for _, d := range domains {
		if net.ParseIP(d) != nil {
			continue
		}
		if rest, ok := strings.CutPrefix(d, "*."); ok {
			return "zoku-check." + rest
		}
		return d
	}
	return ""
}

// HTTP01 fetches http://<domain>/.well-known/acme-challenge/<token> the way
// the CA will, but from address (host:port) when set, and checks that the
// body is keyAuth. Redirects are not followed: the answer must come
// first. Neither the token nor keyAuth appears in the error.
func HTTP01(ctx context.Context, address, domain, token, keyAuth string) error {
	if address == "" {
		address = net.JoinHostPort(domain, "80")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	url := "http://" + address + "/.well-known/acme-challenge/" + token
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("self-check: %w", err)
	}
	req.Host = domain
	client := &http.Client{
		Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	where := fmt.Sprintf("http://%s/.well-known/acme-challenge/<token> (Host %s)", address, domain)
	resp, err := client.Do(req)
	if err != nil {
		var ue *neturl.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL holds the token
		}
		return fmt.Errorf("self-check of %s: %w", where, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return fmt.Errorf("self-check of %s: read: %w", where, err)
	}
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return fmt.Errorf("self-check of %s: got a %d redirect to %s instead of the answer; the challenge answer is not reached before the redirect", where, resp.StatusCode, resp.Header.Get("Location"))
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("self-check of %s: got status %d instead of the answer", where, resp.StatusCode)
	case strings.TrimSpace(string(body)) != keyAuth:
		return fmt.Errorf("self-check of %s: got a %d-byte body that is not the key authorization", where, len(body))
	}
	return nil
}
