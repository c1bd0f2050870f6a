// Package middleware builds the named middlewares of the config
// (config.Middleware) into steps of a route's request path: headers and
// the securityHeaders preset, redirects, path rewriting, basic and forward
// authentication, IP allow lists, rate and in-flight limits, compression,
// request buffering, a circuit breaker and custom error pages. One file
// per middleware.
//
// The router builds every middleware a config uses once per Apply and
// composes each route's list in front of its service, so a request only
// runs closures made at Apply; a route without middlewares runs none of
// this package. State that should outlive a reload (rate-limit buckets,
// in-flight counts, circuit-breaker state) lives in a State kept by the
// router and is reused while the middleware's config is unchanged.
//
// Middlewares never log or return a secret: not a password, an
// Authorization or Cookie value, a header forwardAuth copies, nor the
// value of a rate limit's source header.
package middleware

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/proxy"
)

// Next is the rest of a route's request path: the next middleware, or the
// service. It fills st (the server chosen, tries, upstream time).
type Next func(w http.ResponseWriter, r *http.Request, st *proxy.Stats)

// Middleware is a built middleware. Wrap is called once per route that
// uses it, at Apply; the Next it returns runs per request and must be
// safe for concurrent use. A Middleware that holds resources also
// implements io.Closer; the router closes it once no route uses it.
type Middleware interface {
	Wrap(next Next) Next
}

// Env is what building a middleware needs beyond its config.
type Env struct {
	// Logger for the middleware's own lines; nil discards.
	Logger *slog.Logger
	// Service returns the request path of the named service (the errors
	// middleware asks it for pages), or nil when there is none.
	Service func(name string) Next
	// State keeps state across reloads; nil keeps none.
	State *State
	// Now is the clock of limits and breakers; nil means time.Now.
	Now func() time.Time
}

// Build builds middleware name from cfg, which must be valid (config.Validate
// checks it) and must not be a chain (the router expands chains with
// config.ExpandMiddlewares). Files it names (basicAuth's usersFile,
// forwardAuth's caFile) are read now.
func Build(name string, cfg *config.Middleware, env Env) (Middleware, error) {
	if cfg == nil {
		return nil, fmt.Errorf("middleware %q: no configuration", name)
	}
	if env.Logger == nil {
		env.Logger = slog.New(slog.DiscardHandler)
	}
	if env.Now == nil {
		env.Now = time.Now
	}
	env.Logger = env.Logger.With("component", "middleware", "middleware", name)
	kind := cfg.Kind()
	var m Middleware
	var err error
	switch {
	case cfg.Chain != nil:
		return nil, fmt.Errorf("middleware %q: a chain is expanded by the router, not built", name)
	case cfg.Headers != nil:
		m, err = newHeaders(cfg.Headers)
	case cfg.SecurityHeaders != nil:
		m = newSecurityHeaders(cfg.SecurityHeaders)
	case cfg.RedirectRegex != nil:
		m, err = newRedirectRegex(cfg.RedirectRegex)
	case cfg.RedirectScheme != nil:
		m = newRedirectScheme(cfg.RedirectScheme)
	case cfg.StripPrefix != nil:
		m = newStripPrefix(cfg.StripPrefix)
	case cfg.StripPrefixRegex != nil:
		m, err = newStripPrefixRegex(cfg.StripPrefixRegex)
	case cfg.AddPrefix != nil:
		m = newAddPrefix(cfg.AddPrefix)
	case cfg.ReplacePath != nil:
		m = newReplacePath(cfg.ReplacePath)
	case cfg.ReplacePathRegex != nil:
		m, err = newReplacePathRegex(cfg.ReplacePathRegex)
	case cfg.BasicAuth != nil:
		m, err = newBasicAuth(cfg.BasicAuth, env)
	case cfg.ForwardAuth != nil:
		m, err = newForwardAuth(cfg.ForwardAuth, env)
	case cfg.IPAllowList != nil:
		m, err = newIPAllowList(cfg.IPAllowList)
	case cfg.RateLimit != nil:
		m = newRateLimit(cfg.RateLimit, stateOf(env, name, kind, cfg.RateLimit, func() any { return newRateTable(cfg.RateLimit) }), env)
	case cfg.InFlightReq != nil:
		m = newInFlight(cfg.InFlightReq, stateOf(env, name, kind, cfg.InFlightReq, func() any { return newInFlightTable() }))
	case cfg.Compress != nil:
		m = newCompress(cfg.Compress)
	case cfg.Buffering != nil:
		m = newBuffering(cfg.Buffering, env.Logger)
	case cfg.CircuitBreaker != nil:
		m = newCircuitBreaker(stateOf(env, name, kind, cfg.CircuitBreaker, func() any { return newBreaker(cfg.CircuitBreaker) }), env)
	case cfg.Errors != nil:
		m, err = newErrorPages(cfg.Errors, env)
	default:
		return nil, fmt.Errorf("middleware %q has no kind", name)
	}
	if err != nil {
		return nil, fmt.Errorf("middleware %q (%s): %w", name, kind, err)
	}
	return m, nil
}

// stateOf returns the state of middleware name: the one kept from an
// earlier Apply when its config (cfg) is the same, otherwise a new one
// from fresh.
func stateOf(env Env, name, kind string, cfg any, fresh func() any) any {
	if env.State == nil {
		return fresh()
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return fresh()
	}
	return env.State.get(name+"\x00"+kind+"\x00"+string(b), fresh)
}

// Close closes m if it holds resources.
func Close(m Middleware) {
	if c, ok := m.(io.Closer); ok {
		_ = c.Close()
	}
}

// plainError answers code with a one-line text body, as http.Error does,
// without the Content-Type sniffing of a missing header.
func plainError(w http.ResponseWriter, msg string, code int) {
	http.Error(w, msg, code)
}
