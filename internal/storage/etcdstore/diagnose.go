package etcdstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// The gRPC client retries a connection whose TLS handshake fails until
// the call's deadline and then reports only "deadline exceeded". When
// Open's probe fails, diagnose dials the endpoints itself to say why:
// nothing listens, the TLS handshake fails (and how), or the member
// speaks TLS to a client that does not.

// diagnoseTimeout bounds each endpoint's diagnosis.
const diagnoseTimeout = 2 * time.Second

// maxDiagnosed bounds how many endpoints are diagnosed.
const maxDiagnosed = 3

// diagnose returns what went wrong reaching the endpoints, or "" when
// every diagnosed endpoint looks reachable (the problem is elsewhere).
func diagnose(ctx context.Context, endpoints []string, cfg *tls.Config) string {
	var found []string
	for _, ep := range endpoints[:min(len(endpoints), maxDiagnosed)] {
		if why := diagnoseOne(ctx, ep, cfg); why != "" {
			if len(endpoints) > 1 {
				why = ep + ": " + why
			}
			found = append(found, why)
		}
	}
	return strings.Join(found, "; ")
}

func diagnoseOne(ctx context.Context, ep string, cfg *tls.Config) string {
	ctx, cancel := context.WithTimeout(ctx, diagnoseTimeout)
	defer cancel()
	host, _, _ := net.SplitHostPort(ep)
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", ep)
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Err != nil {
			err = oe.Err
		}
		return fmt.Sprintf("cannot connect (%v)", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if cfg == nil {
		// Does the member speak TLS? A handshake that is answered says so.
		tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}) //nolint:gosec // only asks whether TLS is spoken
		if err := tc.HandshakeContext(ctx); err == nil || strings.Contains(err.Error(), "certificate required") || strings.Contains(err.Error(), "bad certificate") {
			return "it speaks TLS: write etcds:// (and set storage.etcd.caFile, certFile and keyFile as the cluster needs)"
		}
		return ""
	}
	c := cfg.Clone()
	c.ServerName = host
	tc := tls.Client(conn, c)
	if err := tc.HandshakeContext(ctx); err != nil {
		return explainTLS(err, c.ServerName)
	}
	// With TLS 1.3 a member that refuses the client certificate says so
	// after the handshake: read its first answer (it waits for the
	// client's HTTP/2 preface otherwise, until the deadline).
	_ = conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := tc.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
		return explainTLS(err, c.ServerName)
	}
	return ""
}

// explainTLS turns a handshake error into what to change.
func explainTLS(err error, serverName string) string {
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
	)
	msg := err.Error()
	switch {
	case errors.As(err, &unknown):
		return "its certificate is not signed by a CA zoku trusts; set storage.etcd.caFile to the cluster's CA"
	case errors.As(err, &hostname):
		return fmt.Sprintf("its certificate is not valid for %q; name the member in the storage URL by a name or address its certificate has", serverName)
	case errors.As(err, &invalid):
		return fmt.Sprintf("its certificate is not valid (%v)", invalid)
	case strings.Contains(msg, "certificate required") || strings.Contains(msg, "bad certificate") || strings.Contains(msg, "unknown certificate authority"):
		return "it refused zoku's client certificate (or its absence); set storage.etcd.certFile and keyFile to a certificate signed by the cluster's client CA"
	case strings.Contains(msg, "first record does not look like a TLS handshake") || strings.Contains(msg, "oversized record"):
		return "it does not speak TLS: write etcd:// instead of etcds://"
	}
	return fmt.Sprintf("TLS handshake failed (%v)", err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// explain rewrites the errors of etcd's auth into what to change; other
// errors are returned as cleanErr leaves them. It never names the
// password.
func explain(err error, user, prefix string) error {
	switch {
	case errors.Is(err, rpctypes.ErrAuthFailed):
		return fmt.Errorf("authentication failed for user %q: wrong user name or password (storage.etcd.username and password)", user)
	case errors.Is(err, rpctypes.ErrUserEmpty), errors.Is(err, rpctypes.ErrInvalidAuthToken), errors.Is(err, rpctypes.ErrInvalidAuthMgmt):
		return errors.New("the cluster has authentication on: set storage.etcd.username and password (or a client certificate whose CN is a user)")
	case errors.Is(err, rpctypes.ErrPermissionDenied):
		who := "this client"
		if user != "" {
			who = fmt.Sprintf("user %q", user)
		}
		return fmt.Errorf("permission denied: %s needs readwrite on the keys under %q (etcdctl role grant-permission ROLE readwrite --prefix %s)", who, prefix, prefix)
	}
	return cleanErr(err)
}
