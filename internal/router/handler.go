package router

import (
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/proxy"
)

// forwardedHeaders are dropped from requests of untrusted peers before
// the proxy sets its own.
var forwardedHeaders = []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Port", "X-Real-Ip", "Forwarded"}

// handler is the entry point's request path: ACME challenges first (plain
// entry points), then the redirect, then routing. It reads only the
// current table's compiled plan for the entry point.
func (r *Router) handler(ep string) http.Handler {
	idx := r.epIndex(ep)
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		t := r.tab.Load()
		if t == nil {
			http.Error(w, "zoku is shutting down", http.StatusServiceUnavailable)
			return
		}
		p := t.plan(idx, ep)
		if p == nil {
			http.Error(w, "entry point removed", http.StatusServiceUnavailable)
			return
		}
		if p.redirect {
			p.redirectTo(w, req)
			return
		}
		r.route(w, req, t, p)
	})
	if r.deps.Challenges != nil {
		// Challenges pass before the redirect: a CA asks over plain HTTP.
		h = r.deps.Challenges(h)
	}
	return h
}

// redirectTo sends the client to the same host, path and query on the
// target entry point (308 permanent by default).
func (p *epPlan) redirectTo(w http.ResponseWriter, req *http.Request) {
	host := hostOnly(req.Host)
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	http.Redirect(w, req, p.redirectScheme+"://"+host+p.redirectPort+req.URL.RequestURI(), p.redirectCode)
}

// exchange is one request's state in the router, pooled: the response
// recorder and the proxy's report.
type exchange struct {
	rec recorder
	st  proxy.Stats
}

var exchanges = sync.Pool{New: func() any { return new(exchange) }}

// route serves one request through its route's service and logs it.
func (r *Router) route(w http.ResponseWriter, req *http.Request, t *table, p *epPlan) {
	start := time.Now()
	x := exchanges.Get().(*exchange)
	x.rec = recorder{ResponseWriter: w, status: http.StatusOK}
	x.st = proxy.Stats{}
	rw := &x.rec
	host := hostOnly(req.Host)
	// Noted before middlewares may rewrite the path (and req.URL).
	path, method, reqHost := req.URL.Path, req.Method, req.Host
	rt := t.matchHost(p.name, host, req.URL.Path, req)
	if !p.trusts(req.RemoteAddr) {
		for _, h := range forwardedHeaders {
			delete(req.Header, h)
		}
	}
	if p.maxBody > 0 && req.Body != nil && req.Body != http.NoBody {
		// On a copy: net/http's server looks at the Body of its own
		// request after the handler, and one it no longer knows it
		// reads without the 100 Continue that an Expect asked for.
		limited := *req
		limited.Body = http.MaxBytesReader(rw, req.Body, p.maxBody)
		req = &limited
	}
	if p.hsts != nil {
		rw.Header()["Strict-Transport-Security"] = p.hsts
	}
	routeName, svcName := "", ""
	switch {
	case rt == nil:
		http.Error(rw, "404 page not found: no route for "+host+path, http.StatusNotFound)
	default:
		routeName, svcName = rt.name, rt.service
		if rt.headers != nil {
			h := rw.Header()
			for k, v := range rt.headers {
				h[k] = v
			}
		}
		if p.maxBody > 0 && req.ContentLength > p.maxBody {
			// Refused before a server sees a byte of it; a body of unknown
			// length meets the limit as it is read (the proxy answers 413).
			http.Error(rw, fmt.Sprintf("request body too large: the limit is %d bytes", p.maxBody), http.StatusRequestEntityTooLarge)
			break
		}
		serve := rt.serve
		if serve == nil {
			serve = serveOf(t.services[rt.service])
		}
		serve(rw, req, &x.st)
	}
	if r.deps.OnRequest != nil {
		r.deps.OnRequest(RequestRecord{EntryPoint: p.name, Route: routeName, Service: svcName, Server: x.st.Server,
			Method: method, Status: rw.status, Bytes: rw.bytes, Duration: time.Since(start)})
	}
	if r.alog != nil {
		r.alog.LogAttrs(req.Context(), slog.LevelInfo, "request",
			slog.String("entry_point", p.name), slog.String("route", routeName), slog.String("service", svcName),
			slog.String("server", x.st.Server), slog.String("client", req.RemoteAddr),
			slog.String("method", method), slog.String("host", reqHost), slog.String("path", path),
			slog.String("proto", req.Proto), slog.Int("status", rw.status), slog.Int64("bytes", rw.bytes),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
		)
	}
	x.rec = recorder{}
	exchanges.Put(x)
}

func hstsValue(h *config.HSTS) string {
	v := "max-age=" + strconv.FormatInt(int64(h.MaxAge.D().Seconds()), 10)
	if h.IncludeSubdomains {
		v += "; includeSubDomains"
	}
	if h.Preload {
		v += "; preload"
	}
	return v
}
