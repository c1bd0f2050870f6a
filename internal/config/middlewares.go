package config

import (
	"reflect"
	"strings"
	"time"
)

// Middleware is one named middleware: exactly one of its fields is set,
// and that field is its kind. A route lists middlewares by name, in the
// order they see the request; Chain names a list of them to reuse.
// docs/config.md documents every kind with an example.
type Middleware struct {
	// Chain is a reusable list of other middlewares, by name.
	Chain []string `yaml:"chain" toml:"chain" json:"chain,omitempty"`

	Headers          *HeadersMiddleware `yaml:"headers" toml:"headers" json:"headers,omitempty"`
	SecurityHeaders  *SecurityHeaders   `yaml:"securityHeaders" toml:"securityHeaders" json:"securityHeaders,omitempty"`
	RedirectRegex    *RedirectRegex     `yaml:"redirectRegex" toml:"redirectRegex" json:"redirectRegex,omitempty"`
	RedirectScheme   *RedirectScheme    `yaml:"redirectScheme" toml:"redirectScheme" json:"redirectScheme,omitempty"`
	StripPrefix      *StripPrefix       `yaml:"stripPrefix" toml:"stripPrefix" json:"stripPrefix,omitempty"`
	StripPrefixRegex *StripPrefixRegex  `yaml:"stripPrefixRegex" toml:"stripPrefixRegex" json:"stripPrefixRegex,omitempty"`
	AddPrefix        *AddPrefix         `yaml:"addPrefix" toml:"addPrefix" json:"addPrefix,omitempty"`
	ReplacePath      *ReplacePath       `yaml:"replacePath" toml:"replacePath" json:"replacePath,omitempty"`
	ReplacePathRegex *ReplacePathRegex  `yaml:"replacePathRegex" toml:"replacePathRegex" json:"replacePathRegex,omitempty"`
	BasicAuth        *BasicAuth         `yaml:"basicAuth" toml:"basicAuth" json:"basicAuth,omitempty"`
	ForwardAuth      *ForwardAuth       `yaml:"forwardAuth" toml:"forwardAuth" json:"forwardAuth,omitempty"`
	IPAllowList      *IPAllowList       `yaml:"ipAllowList" toml:"ipAllowList" json:"ipAllowList,omitempty"`
	RateLimit        *RateLimit         `yaml:"rateLimit" toml:"rateLimit" json:"rateLimit,omitempty"`
	InFlightReq      *InFlightReq       `yaml:"inFlightReq" toml:"inFlightReq" json:"inFlightReq,omitempty"`
	Compress         *Compress          `yaml:"compress" toml:"compress" json:"compress,omitempty"`
	Buffering        *Buffering         `yaml:"buffering" toml:"buffering" json:"buffering,omitempty"`
	CircuitBreaker   *CircuitBreaker    `yaml:"circuitBreaker" toml:"circuitBreaker" json:"circuitBreaker,omitempty"`
	Errors           *ErrorPages        `yaml:"errors" toml:"errors" json:"errors,omitempty"`
}

// Kinds returns the keys of the kinds m sets, in field order (one for a
// valid middleware).
func (m *Middleware) Kinds() []string {
	var kinds []string
	v := reflect.ValueOf(m).Elem()
	t := v.Type()
	for i := range t.NumField() {
		f := v.Field(i)
		if f.IsNil() {
			continue
		}
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		kinds = append(kinds, name)
	}
	return kinds
}

// Kind returns the key of m's kind, or "" when it sets none.
func (m *Middleware) Kind() string {
	if k := m.Kinds(); len(k) > 0 {
		return k[0]
	}
	return ""
}

// MiddlewareKinds are the keys of every middleware kind, for messages.
var MiddlewareKinds = func() []string {
	t := reflect.TypeFor[Middleware]()
	out := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		out = append(out, name)
	}
	return out
}()

// HeaderOps change a set of headers: Remove first, then Set (replacing
// any value), then Add (one more value).
type HeaderOps struct {
	Set    map[string]string `yaml:"set" toml:"set" json:"set,omitempty"`
	Add    map[string]string `yaml:"add" toml:"add" json:"add,omitempty"`
	Remove []string          `yaml:"remove" toml:"remove" json:"remove,omitempty"`
}

// HeadersMiddleware changes request headers (before the service sees
// them) and response headers (over the service's own).
type HeadersMiddleware struct {
	Request  *HeaderOps `yaml:"request" toml:"request" json:"request,omitempty"`
	Response *HeaderOps `yaml:"response" toml:"response" json:"response,omitempty"`
}

// SecurityHeaders is a preset of response headers that security scanners
// look for. A nil field gets its default; "" (or false) leaves that
// header out.
type SecurityHeaders struct {
	// ContentTypeNosniff sends X-Content-Type-Options: nosniff; default true.
	ContentTypeNosniff *bool `yaml:"contentTypeNosniff" toml:"contentTypeNosniff" json:"contentTypeNosniff,omitempty"`
	// FrameOptions is X-Frame-Options; default DENY.
	FrameOptions *string `yaml:"frameOptions" toml:"frameOptions" json:"frameOptions,omitempty"`
	// ReferrerPolicy is Referrer-Policy; default strict-origin-when-cross-origin.
	ReferrerPolicy *string `yaml:"referrerPolicy" toml:"referrerPolicy" json:"referrerPolicy,omitempty"`
	// XSSProtection is X-XSS-Protection; default "0" (the old filters
	// did harm; OWASP's advice).
	XSSProtection *string `yaml:"xssProtection" toml:"xssProtection" json:"xssProtection,omitempty"`
	// ContentSecurityPolicy is Content-Security-Policy; none by default
	// (a policy depends on the application).
	ContentSecurityPolicy string `yaml:"contentSecurityPolicy" toml:"contentSecurityPolicy" json:"contentSecurityPolicy,omitempty"`
	// PermissionsPolicy is Permissions-Policy; none by default.
	PermissionsPolicy string `yaml:"permissionsPolicy" toml:"permissionsPolicy" json:"permissionsPolicy,omitempty"`
	// CrossOriginOpenerPolicy is Cross-Origin-Opener-Policy; none by default.
	CrossOriginOpenerPolicy string `yaml:"crossOriginOpenerPolicy" toml:"crossOriginOpenerPolicy" json:"crossOriginOpenerPolicy,omitempty"`
	// HideServer removes Server and X-Powered-By from answers; default true.
	HideServer *bool `yaml:"hideServer" toml:"hideServer" json:"hideServer,omitempty"`
}

// The securityHeaders defaults.
const (
	DefaultFrameOptions   = "DENY"
	DefaultReferrerPolicy = "strict-origin-when-cross-origin"
	DefaultXSSProtection  = "0"
)

// RedirectRegex redirects requests whose URL (scheme://host/path?query)
// matches Regex to Replacement, in which $1, ${name} stand for groups.
type RedirectRegex struct {
	Regex       string `yaml:"regex" toml:"regex" json:"regex"`
	Replacement string `yaml:"replacement" toml:"replacement" json:"replacement"`
	// Permanent answers 308 instead of 307.
	Permanent bool `yaml:"permanent" toml:"permanent" json:"permanent,omitempty"`
}

// RedirectScheme redirects requests to another scheme (and port).
type RedirectScheme struct {
	// Scheme: https (default) or http.
	Scheme string `yaml:"scheme" toml:"scheme" json:"scheme"`
	// Port of the target; 0: the scheme's default port.
	Port int `yaml:"port" toml:"port" json:"port,omitempty"`
	// Permanent answers 308 instead of 307.
	Permanent bool `yaml:"permanent" toml:"permanent" json:"permanent,omitempty"`
}

// StripPrefix removes the first of Prefixes the path starts with.
type StripPrefix struct {
	Prefixes []string `yaml:"prefixes" toml:"prefixes" json:"prefixes"`
}

// StripPrefixRegex removes what Regex matches at the start of the path.
type StripPrefixRegex struct {
	Regex string `yaml:"regex" toml:"regex" json:"regex"`
}

// AddPrefix puts Prefix before the path.
type AddPrefix struct {
	Prefix string `yaml:"prefix" toml:"prefix" json:"prefix"`
}

// ReplacePath replaces the whole path.
type ReplacePath struct {
	Path string `yaml:"path" toml:"path" json:"path"`
}

// ReplacePathRegex replaces the path when it matches Regex.
type ReplacePathRegex struct {
	Regex       string `yaml:"regex" toml:"regex" json:"regex"`
	Replacement string `yaml:"replacement" toml:"replacement" json:"replacement"`
}

// BasicAuth asks for a user and password from an htpasswd file (bcrypt
// hashes only).
type BasicAuth struct {
	// UsersFile is the htpasswd file (htpasswd -B); read at every
	// (re)load.
	UsersFile string `yaml:"usersFile" toml:"usersFile" json:"usersFile"`
	// Realm shown by browsers; default "zoku".
	Realm string `yaml:"realm" toml:"realm" json:"realm,omitempty"`
	// ForwardHeader passes the Authorization header on to the service;
	// by default it is removed.
	ForwardHeader bool `yaml:"forwardHeader" toml:"forwardHeader" json:"forwardHeader,omitempty"`
	// UserHeader, if set, carries the authenticated user's name to the
	// service (a client's own value is replaced).
	UserHeader string `yaml:"userHeader" toml:"userHeader" json:"userHeader,omitempty"`
}

// ForwardAuth asks an authentication server about every request.
type ForwardAuth struct {
	// Address of the server, an http:// or https:// URL.
	Address string `yaml:"address" toml:"address" json:"address"`
	// TrustForwardHeader passes the client's X-Forwarded-* on (when the
	// entry point kept them); otherwise zoku's own are sent.
	TrustForwardHeader bool `yaml:"trustForwardHeader" toml:"trustForwardHeader" json:"trustForwardHeader,omitempty"`
	// AuthRequestHeaders are the client headers sent to the server;
	// default all of them.
	AuthRequestHeaders []string `yaml:"authRequestHeaders" toml:"authRequestHeaders" json:"authRequestHeaders,omitempty"`
	// AuthResponseHeaders are copied from the server's 2xx answer to the
	// request sent on to the service (a client's own values are replaced).
	AuthResponseHeaders []string `yaml:"authResponseHeaders" toml:"authResponseHeaders" json:"authResponseHeaders,omitempty"`
	// Timeout of the server's answer; default 5s.
	Timeout Duration `yaml:"timeout" toml:"timeout" json:"timeout"`
	// CAFile holds the CA certificates of an https:// server; default
	// the system's roots.
	CAFile string `yaml:"caFile" toml:"caFile" json:"caFile,omitempty"`
}

// IPAllowList lets only clients from SourceRange through (403 otherwise).
type IPAllowList struct {
	SourceRange []string `yaml:"sourceRange" toml:"sourceRange" json:"sourceRange"`
	// Depth: 0 checks the peer's address; n checks the n-th address
	// from the right of X-Forwarded-For (kept only from trustedProxies).
	Depth int `yaml:"depth" toml:"depth" json:"depth,omitempty"`
}

// RateLimit is a token bucket per client: Average requests per Period,
// with bursts of up to Burst; more get 429 with Retry-After.
type RateLimit struct {
	Average int      `yaml:"average" toml:"average" json:"average"`
	Period  Duration `yaml:"period" toml:"period" json:"period"` // default 1s
	Burst   int      `yaml:"burst" toml:"burst" json:"burst"`    // default Average
	// MaxSources bounds the clients tracked at once; default 100000.
	MaxSources int `yaml:"maxSources" toml:"maxSources" json:"maxSources"`
	// SourceHeader counts by the value of this request header (requests
	// without it count by client IP).
	SourceHeader string `yaml:"sourceHeader" toml:"sourceHeader" json:"sourceHeader,omitempty"`
	// Depth picks the client IP as IPAllowList.Depth does.
	Depth int `yaml:"depth" toml:"depth" json:"depth,omitempty"`
}

// InFlightReq bounds the requests in flight per client; more get 429.
type InFlightReq struct {
	Amount int `yaml:"amount" toml:"amount" json:"amount"`
	// SourceHeader and Depth as in RateLimit.
	SourceHeader string `yaml:"sourceHeader" toml:"sourceHeader" json:"sourceHeader,omitempty"`
	Depth        int    `yaml:"depth" toml:"depth" json:"depth,omitempty"`
}

// Compress compresses answers by the client's Accept-Encoding.
type Compress struct {
	// Encodings offered, in zoku's order of preference; default [zstd, gzip].
	Encodings []string `yaml:"encodings" toml:"encodings" json:"encodings"`
	// MinSize: smaller answers are sent as they are; default 1024.
	MinSize int `yaml:"minSize" toml:"minSize" json:"minSize"`
	// ContentTypes compressed (a "text/*" entry covers its type); default
	// text/*, JSON, JavaScript, XML, SVG, WebAssembly and a few more.
	ContentTypes []string `yaml:"contentTypes" toml:"contentTypes" json:"contentTypes"`
}

// The compress defaults.
var (
	DefaultCompressEncodings    = []string{"zstd", "gzip"}
	DefaultCompressContentTypes = []string{"text/*", "application/json", "application/javascript", "application/xml",
		"application/xhtml+xml", "application/rss+xml", "application/atom+xml", "application/ld+json",
		"application/manifest+json", "application/wasm", "image/svg+xml", "font/ttf", "font/otf"}
)

// DefaultCompressMinSize is compress.minSize's default.
const DefaultCompressMinSize = 1024

// Buffering reads the whole request body before the service sees it (in
// memory up to MemRequestBodyBytes, in a temporary file beyond), so that
// the service gets a length and a failed try can be made again; a body
// over MaxRequestBodyBytes gets 413.
type Buffering struct {
	MaxRequestBodyBytes int64 `yaml:"maxRequestBodyBytes" toml:"maxRequestBodyBytes" json:"maxRequestBodyBytes"`
	MemRequestBodyBytes int64 `yaml:"memRequestBodyBytes" toml:"memRequestBodyBytes" json:"memRequestBodyBytes"` // default 1 MiB
}

// DefaultMemRequestBodyBytes is buffering.memRequestBodyBytes' default.
const DefaultMemRequestBodyBytes = 1 << 20

// CircuitBreaker stops sending requests to the route's service while its
// answers fail (ErrorRatio) or are slow (Latency), answering
// ResponseCode instead; after FallbackDuration it lets a growing share
// through for RecoveryDuration and closes again if they do well.
type CircuitBreaker struct {
	// ErrorRatio: trip when this share (0 to 1) of answers in Window are
	// 5xx; 0 turns the check off.
	ErrorRatio float64 `yaml:"errorRatio" toml:"errorRatio" json:"errorRatio,omitempty"`
	// Latency: trip when the median answer in Window took this long or
	// longer; 0 turns the check off.
	Latency Duration `yaml:"latency" toml:"latency" json:"latency"`
	// Window of the statistics; default 10s.
	Window Duration `yaml:"window" toml:"window" json:"window"`
	// MinRequests in Window before the breaker may trip; default 10.
	MinRequests int `yaml:"minRequests" toml:"minRequests" json:"minRequests"`
	// FallbackDuration it stays open; default 10s.
	FallbackDuration Duration `yaml:"fallbackDuration" toml:"fallbackDuration" json:"fallbackDuration"`
	// RecoveryDuration of the ramp back; default 10s.
	RecoveryDuration Duration `yaml:"recoveryDuration" toml:"recoveryDuration" json:"recoveryDuration"`
	// ResponseCode while open; default 503.
	ResponseCode int `yaml:"responseCode" toml:"responseCode" json:"responseCode"`
}

// ErrorPages replaces answers of the listed statuses by a page fetched
// from Service (the status stays).
type ErrorPages struct {
	// Status lists codes and ranges: "404", "500-599".
	Status []string `yaml:"status" toml:"status" json:"status"`
	// Service that serves the pages.
	Service string `yaml:"service" toml:"service" json:"service"`
	// Query is the path asked of Service; {status} is replaced by the
	// code; default "/{status}.html".
	Query string `yaml:"query" toml:"query" json:"query"`
}

// The defaults of the limits and breakers.
const (
	DefaultRateLimitPeriod   = time.Second
	DefaultRateLimitSources  = 100_000
	DefaultForwardAuthTime   = 5 * time.Second
	DefaultBreakerWindow     = 10 * time.Second
	DefaultBreakerMinReqs    = 10
	DefaultBreakerFallback   = 10 * time.Second
	DefaultBreakerRecovery   = 10 * time.Second
	DefaultBreakerStatus     = 503
	DefaultBasicAuthRealm    = "zoku"
	DefaultErrorPagesQuery   = "/{status}.html"
	DefaultRedirectSchemeTo  = "https"
	DefaultStickyCookiePath  = "/"
	DefaultMirrorMaxBody     = 1 << 20
	DefaultMirrorMaxInFlight = 100
)

// applyMiddlewareDefaults fills the middlewares' documented defaults.
func (c *Config) applyMiddlewareDefaults() {
	for _, m := range c.Middlewares {
		if m == nil {
			continue
		}
		if s := m.SecurityHeaders; s != nil {
			if s.ContentTypeNosniff == nil {
				s.ContentTypeNosniff = new(true)
			}
			if s.HideServer == nil {
				s.HideServer = new(true)
			}
			if s.FrameOptions == nil {
				s.FrameOptions = new(DefaultFrameOptions)
			}
			if s.ReferrerPolicy == nil {
				s.ReferrerPolicy = new(DefaultReferrerPolicy)
			}
			if s.XSSProtection == nil {
				s.XSSProtection = new(DefaultXSSProtection)
			}
		}
		if r := m.RedirectScheme; r != nil {
			setStr(&r.Scheme, DefaultRedirectSchemeTo)
		}
		if b := m.BasicAuth; b != nil {
			setStr(&b.Realm, DefaultBasicAuthRealm)
		}
		if f := m.ForwardAuth; f != nil {
			setDur(&f.Timeout, DefaultForwardAuthTime)
		}
		if r := m.RateLimit; r != nil {
			setDur(&r.Period, DefaultRateLimitPeriod)
			if r.Burst == 0 {
				r.Burst = r.Average
			}
			if r.MaxSources == 0 {
				r.MaxSources = DefaultRateLimitSources
			}
		}
		if cp := m.Compress; cp != nil {
			if len(cp.Encodings) == 0 {
				cp.Encodings = append([]string(nil), DefaultCompressEncodings...)
			}
			if cp.MinSize == 0 {
				cp.MinSize = DefaultCompressMinSize
			}
			if len(cp.ContentTypes) == 0 {
				cp.ContentTypes = append([]string(nil), DefaultCompressContentTypes...)
			}
		}
		if b := m.Buffering; b != nil && b.MemRequestBodyBytes == 0 {
			b.MemRequestBodyBytes = min(DefaultMemRequestBodyBytes, b.MaxRequestBodyBytes)
		}
		if cb := m.CircuitBreaker; cb != nil {
			setDur(&cb.Window, DefaultBreakerWindow)
			setDur(&cb.FallbackDuration, DefaultBreakerFallback)
			setDur(&cb.RecoveryDuration, DefaultBreakerRecovery)
			if cb.MinRequests == 0 {
				cb.MinRequests = DefaultBreakerMinReqs
			}
			if cb.ResponseCode == 0 {
				cb.ResponseCode = DefaultBreakerStatus
			}
		}
		if e := m.Errors; e != nil {
			setStr(&e.Query, DefaultErrorPagesQuery)
		}
	}
}
