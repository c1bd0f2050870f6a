package certmgr

import (
	"context"
	"crypto/x509"
	"log/slog"
	"net/url"
	"time"
)

// logEvent writes the one line of a certificate event. Every such line has
// the same keys, present even when empty, so a log query can rely on them:
// domain, issuer (the issuing CA certificate's common name), target,
// serial, error, ca (the CA's directory host), event, and not_after when
// the certificate is known. extra adds keys of its own.
func (m *Manager) logEvent(level slog.Level, msg string, kind EventKind, domain string, leaf *x509.Certificate, server string, err error, extra ...slog.Attr) {
	ctx := context.Background()
	if !m.log.Enabled(ctx, level) {
		return
	}
	var issuer, serial, errText string
	if leaf != nil {
		issuer, serial = leaf.Issuer.CommonName, leaf.SerialNumber.Text(16)
	}
	if err != nil {
		errText = err.Error()
	}
	attrs := []slog.Attr{
		slog.String("domain", domain), slog.String("issuer", issuer), slog.String("target", ""),
		slog.String("serial", serial), slog.String("error", errText), slog.String("ca", caHost(server)),
		slog.String("event", string(kind)),
	}
	if leaf != nil {
		attrs = append(attrs, slog.String("not_after", leaf.NotAfter.UTC().Format(time.RFC3339)))
	}
	m.log.LogAttrs(ctx, level, msg, append(attrs, extra...)...)
}

// caHost names a CA by its directory URL's host (and port).
func caHost(directory string) string {
	if u, err := url.Parse(directory); err == nil && u.Host != "" {
		return u.Host
	}
	return directory
}
