package middleware

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/proxy"
)

// forwardAuth asks an authentication server about each request (GET to
// its address with the client's headers and X-Forwarded-Method, -Proto,
// -Host, -Uri and -For). A 2xx answer lets the request through with the
// chosen headers of the answer copied onto it; any other answer goes back
// to the client as it is (a 401 with its challenge, a 302 to a login
// page). A server that does not answer in time, or at all, gets the
// client a 502 and zoku a log line that names the server's host and the
// failure, never a header.
type forwardAuth struct {
	address    string
	host       string // for logs
	client     *http.Client
	trustFwd   bool
	reqHeaders []string // canonical; nil: all
	respHdrs   []string // canonical
	timeout    time.Duration
	log        *slog.Logger
}

// maxAuthBody bounds the body of a refusal relayed to the client.
const maxAuthBody = 1 << 20

func newForwardAuth(c *config.ForwardAuth, env Env) (*forwardAuth, error) {
	u, err := url.Parse(c.Address)
	if err != nil {
		return nil, errors.New("address is not a URL")
	}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   5 * time.Second,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		DisableCompression:    true,
		ResponseHeaderTimeout: c.Timeout.D(),
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("caFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("caFile %s holds no PEM certificate", c.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	m := &forwardAuth{
		address: c.Address, host: u.Host, trustFwd: c.TrustForwardHeader, timeout: c.Timeout.D(), log: env.Logger,
		client: &http.Client{
			Transport:     tr,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	for _, h := range c.AuthRequestHeaders {
		m.reqHeaders = append(m.reqHeaders, http.CanonicalHeaderKey(h))
	}
	for _, h := range c.AuthResponseHeaders {
		m.respHdrs = append(m.respHdrs, http.CanonicalHeaderKey(h))
	}
	return m, nil
}

// Close closes idle connections to the authentication server.
func (m *forwardAuth) Close() error {
	m.client.CloseIdleConnections()
	return nil
}

// hopHeaders are not sent on to the authentication server nor copied back.
var hopHeaders = map[string]bool{
	"Connection": true, "Proxy-Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
	"Content-Length": true,
}

func (m *forwardAuth) Wrap(next Next) Next {
	return func(w http.ResponseWriter, r *http.Request, st *proxy.Stats) {
		ctx, cancel := context.WithTimeout(r.Context(), m.timeout)
		defer cancel()
		areq, err := http.NewRequestWithContext(ctx, http.MethodGet, m.address, nil)
		if err != nil {
			plainError(w, "bad gateway: authentication server address", http.StatusBadGateway)
			return
		}
		m.copyRequestHeaders(areq.Header, r)
		resp, err := m.client.Do(areq)
		if err != nil {
			if r.Context().Err() != nil {
				return // the client left
			}
			m.log.Warn("forward auth: authentication server unreachable", "auth_server", m.host, "error", errorCause(err))
			plainError(w, "bad gateway: the authentication server did not answer", http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			h := w.Header()
			for k, vv := range resp.Header {
				if !hopHeaders[k] {
					h[k] = vv
				}
			}
			w.WriteHeader(resp.StatusCode)
			_, _ = io.Copy(w, io.LimitReader(resp.Body, maxAuthBody))
			return
		}
		for _, k := range m.respHdrs {
			delete(r.Header, k)
			if vv := resp.Header[k]; len(vv) > 0 {
				r.Header[k] = vv
			}
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAuthBody)) // keeps the connection
		next(w, r, st)
	}
}

// copyRequestHeaders fills h with the client's headers (all, or the
// listed ones) and the X-Forwarded-* that describe the request.
func (m *forwardAuth) copyRequestHeaders(h http.Header, r *http.Request) {
	if m.reqHeaders == nil {
		for k, vv := range r.Header {
			if !hopHeaders[k] {
				h[k] = vv
			}
		}
	} else {
		for _, k := range m.reqHeaders {
			if vv, ok := r.Header[k]; ok && !hopHeaders[k] {
				h[k] = vv
			}
		}
	}
	fwd := func(k, v string) {
		if m.trustFwd && r.Header.Get(k) != "" {
			h[k] = r.Header[k]
			return
		}
		h.Set(k, v)
	}
	clientAddr := r.RemoteAddr
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		clientAddr = host
	}
	if m.trustFwd && r.Header.Get("X-Forwarded-For") != "" {
		h.Set("X-Forwarded-For", r.Header.Get("X-Forwarded-For")+", "+clientAddr)
	} else {
		h.Set("X-Forwarded-For", clientAddr)
	}
	fwd("X-Forwarded-Method", r.Method)
	fwd("X-Forwarded-Proto", scheme(r))
	fwd("X-Forwarded-Host", r.Host)
	fwd("X-Forwarded-Uri", r.URL.RequestURI())
}

// errorCause drops the URL from a client error (its query could hold a
// token) and keeps what went wrong.
func errorCause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if errors.Is(ue.Err, context.DeadlineExceeded) {
			return errors.New("no answer within the timeout")
		}
		return ue.Err
	}
	return err
}
