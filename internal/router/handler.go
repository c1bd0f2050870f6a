package router

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/proxy"
)

// forwardedHeaders are dropped from requests of untrusted peers before
// the proxy sets its own.
var forwardedHeaders = []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Port", "X-Real-Ip", "Forwarded"}

// handler is the entry point's request path: ACME challenges first (plain
// entry points), then the redirect, then routing.
func (r *Router) handler(ep string) http.Handler {
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		t := r.tab.Load()
		if t == nil {
			http.Error(w, "zoku is shutting down", http.StatusServiceUnavailable)
			return
		}
		epc := t.cfg.EntryPoints[ep]
		if epc == nil {
			http.Error(w, "entry point removed", http.StatusServiceUnavailable)
			return
		}
		if epc.Redirect != nil {
			r.redirect(w, req, t.cfg, epc)
			return
		}
		r.route(w, req, t, ep, epc)
	})
	if r.deps.Challenges != nil {
		// Challenges pass before the redirect: a CA asks over plain HTTP.
		h = r.deps.Challenges(h)
	}
	return h
}

// redirect sends the client to the same host, path and query on the
// target entry point (308 permanent by default).
func (r *Router) redirect(w http.ResponseWriter, req *http.Request, cfg *config.Config, epc *config.EntryPoint) {
	scheme, port, code := cfg.RedirectTarget(epc)
	host := hostOnly(req.Host)
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if !(scheme == "https" && port == 443) && !(scheme == "http" && port == 80) && port != 0 {
		host += ":" + strconv.Itoa(port)
	}
	http.Redirect(w, req, scheme+"://"+host+req.URL.RequestURI(), code)
}

// route serves one request through its route's service and logs it.
func (r *Router) route(w http.ResponseWriter, req *http.Request, t *table, ep string, epc *config.EntryPoint) {
	start := time.Now()
	rw := &recorder{ResponseWriter: w, status: http.StatusOK}
	rt := t.match(ep, req.Host, req.URL.Path, req.Header)
	if !r.trusted(epc, req.RemoteAddr) {
		for _, h := range forwardedHeaders {
			req.Header.Del(h)
		}
	}
	if epc.MaxBodyBytes > 0 && req.Body != nil {
		req.Body = http.MaxBytesReader(rw, req.Body, epc.MaxBodyBytes)
	}
	if epc.TLS != nil && epc.HSTS != nil {
		rw.Header().Set("Strict-Transport-Security", hstsValue(epc.HSTS))
	}
	routeName, svcName, server := "", "", ""
	switch {
	case rt == nil:
		http.Error(rw, "404 page not found: no route for "+hostOnly(req.Host)+req.URL.Path, http.StatusNotFound)
	case rt.redirect != nil:
		routeName = rt.name
		for k, v := range rt.headers {
			rw.Header()[k] = v
		}
		routeRedirect(rw, req, rt.redirect, epc.TLS != nil)
	default:
		routeName, svcName = rt.name, rt.service
		for k, v := range rt.headers {
			rw.Header()[k] = v
		}
		ctx, st := proxy.WithStats(req.Context())
		t.services[rt.service].ServeHTTP(rw, req.WithContext(ctx))
		server = st.Server
	}
	if r.deps.OnRequest != nil {
		r.deps.OnRequest(RequestRecord{EntryPoint: ep, Route: routeName, Service: svcName, Server: server,
			Method: req.Method, Status: rw.status, Bytes: rw.bytes, Duration: time.Since(start)})
	}
	if r.alog != nil {
		r.alog.LogAttrs(req.Context(), slog.LevelInfo, "request",
			slog.String("entry_point", ep), slog.String("route", routeName), slog.String("service", svcName),
			slog.String("server", server), slog.String("client", req.RemoteAddr),
			slog.String("method", req.Method), slog.String("host", req.Host), slog.String("path", req.URL.Path),
			slog.String("proto", req.Proto), slog.Int("status", rw.status), slog.Int64("bytes", rw.bytes),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
		)
	}
}

// routeRedirect answers with a redirect to the same path and query, with
// the scheme, host and port rd sets.
func routeRedirect(w http.ResponseWriter, req *http.Request, rd *config.RouteRedirect, isTLS bool) {
	scheme := "http"
	if isTLS {
		scheme = "https"
	}
	host, port, err := net.SplitHostPort(req.Host)
	if err != nil {
		host, port = req.Host, ""
	}
	host = strings.Trim(host, "[]")
	if rd.Scheme != "" && rd.Scheme != scheme {
		scheme, port = rd.Scheme, ""
	}
	if rd.Host != "" {
		host = rd.Host
	}
	if rd.Port != 0 {
		port = strconv.Itoa(rd.Port)
	}
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	code := rd.StatusCode
	if code == 0 {
		code = http.StatusFound
	}
	http.Redirect(w, req, scheme+"://"+host+req.URL.RequestURI(), code)
}

func (r *Router) trusted(epc *config.EntryPoint, remote string) bool {
	if len(epc.TrustedProxies) == 0 {
		return false
	}
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	for _, p := range epc.TrustedProxies {
		if _, n, err := net.ParseCIDR(p); err == nil && n.Contains(ip) {
			return true
		}
		if pip := net.ParseIP(p); pip != nil && pip.Equal(ip) {
			return true
		}
	}
	return false
}

func hstsValue(h *config.HSTS) string {
	v := fmt.Sprintf("max-age=%d", int64(h.MaxAge.D().Seconds()))
	if h.IncludeSubdomains {
		v += "; includeSubDomains"
	}
	if h.Preload {
		v += "; preload"
	}
	return v
}

// tlsConfig reads the entry point's TLS options from the current table on
// every handshake, so a reload changes them without a restart.
func (r *Router) tlsConfig(ep string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			t := r.tab.Load()
			if t == nil || t.tls[ep] == nil {
				return nil, fmt.Errorf("router: entry point %s has no TLS now", ep)
			}
			if r.deps.IsALPNChallenge != nil && r.deps.IsALPNChallenge(hello) {
				return t.alpn[ep], nil
			}
			return t.tls[ep], nil
		},
	}
}

func (r *Router) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if r.deps.IsALPNChallenge != nil && r.deps.ALPN != nil && r.deps.IsALPNChallenge(hello) {
		return r.deps.ALPN(hello)
	}
	if r.deps.Certs == nil {
		return nil, fmt.Errorf("router: no certificates configured")
	}
	return r.deps.Certs.GetCertificate(hello)
}
