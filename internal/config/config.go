// Package config is the schema of zoku's configuration file (YAML, or TOML
// with the same keys), its loading (${ENV} and file references, errors with
// file, line and reason), its validation and its watching. The same file
// drives `zoku run` and `zoku deploy`. docs/config.md documents every key.
package config

import "time"

// Config is the whole file. Zero values mean the documented defaults;
// Load fills them in (see Defaults).
type Config struct {
	// EntryPoints are the listeners, by name.
	EntryPoints map[string]*EntryPoint `yaml:"entryPoints" toml:"entryPoints" json:"entryPoints"`
	// Certificates configures the certificate engine.
	Certificates Certificates `yaml:"certificates" toml:"certificates" json:"certificates"`
	// Routes map requests to services, by name.
	Routes map[string]*Route `yaml:"routes" toml:"routes" json:"routes"`
	// Services are pools of backends (or a static reply), by name.
	Services map[string]*Service `yaml:"services" toml:"services" json:"services"`
	// Middlewares are named request and response processing steps that
	// routes list in order (middlewares.go).
	Middlewares map[string]*Middleware `yaml:"middlewares" toml:"middlewares" json:"middlewares,omitempty"`
	// TCPRoutes send connections to TCP services by SNI (l4.go).
	TCPRoutes map[string]*TCPRoute `yaml:"tcpRoutes" toml:"tcpRoutes" json:"tcpRoutes,omitempty"`
	// TCPServices are pools of TCP servers, by name (l4.go).
	TCPServices map[string]*TCPService `yaml:"tcpServices" toml:"tcpServices" json:"tcpServices,omitempty"`
	// AccessLog configures the per-request JSON log.
	AccessLog AccessLog `yaml:"accessLog" toml:"accessLog" json:"accessLog"`
	// Log configures zoku's own structured log.
	Log Log `yaml:"log" toml:"log" json:"log"`
	// Admin configures the admin API, /metrics and the dashboard
	// (admin.go).
	Admin Admin `yaml:"admin" toml:"admin" json:"admin"`
	// Targets are load balancers zoku deploys certificates to, by name
	// (targets.go).
	Targets map[string]*Target `yaml:"targets" toml:"targets" json:"targets,omitempty"`
	// Storage tunes how the storage is reached (etcd TLS and
	// credentials) and kept (encryption at rest) (storage.go).
	Storage Storage `yaml:"storage" toml:"storage" json:"storage"`
	// Kubernetes, when set, adds the routes, services and certificates of
	// a cluster's Ingresses, Gateway API routes and Secrets
	// (kubernetes.go, docs/kubernetes.md).
	Kubernetes *Kubernetes `yaml:"kubernetes" toml:"kubernetes" json:"kubernetes,omitempty"`

	// Source is the file this was loaded from (not a key).
	Source string `yaml:"-" toml:"-" json:"-"`

	// tree is the document Source was read into, so Validate can name
	// the line of a key path (positions.go); set only while Parse
	// validates.
	tree *node
	// sum is the SHA-256 of the file the config was parsed from; the
	// watcher compares it with the file once it starts.
	sum    [32]byte
	hasSum bool
}

// Duration is a time.Duration written as "10s", "1m30s", "2m" (or a number
// of seconds).
type Duration time.Duration

// EntryPoint is one listener.
type EntryPoint struct {
	// Address is host:port; required.
	Address string `yaml:"address" toml:"address" json:"address"`
	// Redirect, when set, answers every request (except
	// /.well-known/acme-challenge/) with a redirect to another entry point.
	Redirect *Redirect `yaml:"redirect" toml:"redirect" json:"redirect,omitempty"`
	// TLS, when set, makes this an HTTPS entry point.
	TLS *TLS `yaml:"tls" toml:"tls" json:"tls,omitempty"`
	// Timeouts of client connections; zero fields get safe defaults.
	Timeouts Timeouts `yaml:"timeouts" toml:"timeouts" json:"timeouts"`
	// MaxHeaderBytes limits request headers; default 1 MiB.
	MaxHeaderBytes int `yaml:"maxHeaderBytes" toml:"maxHeaderBytes" json:"maxHeaderBytes"`
	// MaxBodyBytes limits request bodies; 0 = unlimited.
	MaxBodyBytes int64 `yaml:"maxBodyBytes" toml:"maxBodyBytes" json:"maxBodyBytes"`
	// TrustedProxies are the peer CIDRs (or IPs) whose X-Forwarded-* headers
	// are kept; from any other peer they are replaced.
	TrustedProxies []string `yaml:"trustedProxies" toml:"trustedProxies" json:"trustedProxies,omitempty"`
	// HSTS adds Strict-Transport-Security on a TLS entry point.
	HSTS *HSTS `yaml:"hsts" toml:"hsts" json:"hsts,omitempty"`
	// HTTP3 serves HTTP/3 on a TLS entry point (l4.go).
	HTTP3 *HTTP3 `yaml:"http3" toml:"http3" json:"http3,omitempty"`
	// ClientAuth asks TLS clients for a certificate (l4.go).
	ClientAuth *ClientAuth `yaml:"clientAuth" toml:"clientAuth" json:"clientAuth,omitempty"`
	// ProxyProtocol accepts PROXY headers from trusted peers (l4.go).
	ProxyProtocol *ProxyProtocol `yaml:"proxyProtocol" toml:"proxyProtocol" json:"proxyProtocol,omitempty"`
}

// Redirect sends clients to another entry point.
type Redirect struct {
	// EntryPoint is the target entry point's name; its port is used.
	EntryPoint string `yaml:"entryPoint" toml:"entryPoint" json:"entryPoint"`
	// Scheme of the target; default "https".
	Scheme string `yaml:"scheme" toml:"scheme" json:"scheme,omitempty"`
	// Permanent uses 308 (default true); false uses 307.
	Permanent *bool `yaml:"permanent" toml:"permanent" json:"permanent,omitempty"`
}

// TLS options of an entry point.
type TLS struct {
	// MinVersion "1.2" (default) or "1.3".
	MinVersion string `yaml:"minVersion" toml:"minVersion" json:"minVersion,omitempty"`
	// MaxVersion "1.2" or "1.3" (default).
	MaxVersion string `yaml:"maxVersion" toml:"maxVersion" json:"maxVersion,omitempty"`
	// CipherSuites by Go name (TLS 1.2 only); empty = Go's secure defaults.
	CipherSuites []string `yaml:"cipherSuites" toml:"cipherSuites" json:"cipherSuites,omitempty"`
	// CurvePreferences by name (X25519MLKEM768, X25519, P256, P384, P521).
	CurvePreferences []string `yaml:"curvePreferences" toml:"curvePreferences" json:"curvePreferences,omitempty"`
	// ALPN protocols; default [h2, http/1.1].
	ALPN []string `yaml:"alpn" toml:"alpn" json:"alpn,omitempty"`
}

// HSTS is the Strict-Transport-Security header.
type HSTS struct {
	MaxAge            Duration `yaml:"maxAge" toml:"maxAge" json:"maxAge"`                                  // default 365 days
	IncludeSubdomains bool     `yaml:"includeSubdomains" toml:"includeSubdomains" json:"includeSubdomains"` // adds includeSubDomains
	Preload           bool     `yaml:"preload" toml:"preload" json:"preload"`                               // adds preload
}

// Timeouts of an entry point's client connections.
type Timeouts struct {
	ReadHeader Duration `yaml:"readHeader" toml:"readHeader" json:"readHeader"` // default 10s
	Read       Duration `yaml:"read" toml:"read" json:"read"`                   // default 60s
	Write      Duration `yaml:"write" toml:"write" json:"write"`                // default 0 (none: streaming)
	Idle       Duration `yaml:"idle" toml:"idle" json:"idle"`                   // default 120s
	Shutdown   Duration `yaml:"shutdown" toml:"shutdown" json:"shutdown"`       // drain limit, default 30s
}

// Certificates configures the engine.
type Certificates struct {
	// ACME settings.
	ACME ACME `yaml:"acme" toml:"acme" json:"acme"`
	// Domains are obtained at start, whether routed or not.
	Domains []DomainSet `yaml:"domains" toml:"domains" json:"domains,omitempty"`
	// OnHostRule obtains a certificate for every host a route names.
	OnHostRule bool `yaml:"onHostRule" toml:"onHostRule" json:"onHostRule"`
	// Files are user-provided certificates; they win over ACME ones for
	// their names.
	Files []CertFile `yaml:"files" toml:"files" json:"files,omitempty"`
	// Issuers are fallback CAs, tried in order after acme.server has
	// failed FallbackAfter times in a row for a certificate.
	Issuers []Issuer `yaml:"issuers" toml:"issuers" json:"issuers,omitempty"`
	// FallbackAfter is the number of failures before the next CA; default 3.
	FallbackAfter int `yaml:"fallbackAfter" toml:"fallbackAfter" json:"fallbackAfter,omitempty"`
	// OnDemand orders certificates for names first seen in SNI (off unless set).
	OnDemand *OnDemand `yaml:"onDemand" toml:"onDemand" json:"onDemand,omitempty"`
	// Hook runs a command on certificate events, with the variables of
	// `zoku renew --deploy-hook`.
	Hook *Hook `yaml:"hook" toml:"hook" json:"hook,omitempty"`
}

// Issuer is a fallback CA.
type Issuer struct {
	// Server: a directory URL or a lego CA code (zerossl, googletrust, ...).
	Server string `yaml:"server" toml:"server" json:"server"`
	// Email is the account contact at that CA (default: acme.email).
	Email string `yaml:"email" toml:"email" json:"email,omitempty"`
	// EAB credentials for that CA.
	EAB *EAB `yaml:"eab" toml:"eab" json:"eab,omitempty"`
}

// OnDemand is the on-demand TLS policy; Ask or Allow is required.
type OnDemand struct {
	// Ask is a URL asked GET ?domain=<name>; 200 allows the name.
	Ask string `yaml:"ask" toml:"ask" json:"ask,omitempty"`
	// Allow are name patterns (exact, or "*.example.com" for any depth).
	Allow []string `yaml:"allow" toml:"allow" json:"allow,omitempty"`
	// RatePerMinute bounds new on-demand orders; default 10.
	RatePerMinute int `yaml:"ratePerMinute" toml:"ratePerMinute" json:"ratePerMinute,omitempty"`
	// MaxNames caps the names ordered on demand; default 1000.
	MaxNames int `yaml:"maxNames" toml:"maxNames" json:"maxNames,omitempty"`
}

// Hook is a command run on certificate events.
type Hook struct {
	// Command runs through /bin/sh -c.
	Command string `yaml:"command" toml:"command" json:"command"`
	// Events: any of obtained, renewed, failed, revoked-by-ari (default:
	// obtained and renewed).
	Events []string `yaml:"events" toml:"events" json:"events,omitempty"`
	// Timeout of the command; default 2m.
	Timeout Duration `yaml:"timeout" toml:"timeout" json:"timeout"`
}

// ACME settings of the engine.
type ACME struct {
	// Server: a directory URL, letsencrypt, letsencrypt-staging or embedded.
	Server string `yaml:"server" toml:"server" json:"server"`
	// Email is the account contact.
	Email string `yaml:"email" toml:"email" json:"email"`
	// AcceptTOS agrees to the CA's terms of service.
	AcceptTOS bool `yaml:"acceptTOS" toml:"acceptTOS" json:"acceptTOS"`
	// KeyType of certificate keys: ec256 (default), ec384, rsa2048, ...
	KeyType string `yaml:"keyType" toml:"keyType" json:"keyType,omitempty"`
	// Storage is the folder (lego layout); default ./.zoku.
	Storage string `yaml:"storage" toml:"storage" json:"storage"`
	// Profile is the ACME profile to ask for.
	Profile string `yaml:"profile" toml:"profile" json:"profile,omitempty"`
	// PreferredChain by root common name.
	PreferredChain string `yaml:"preferredChain" toml:"preferredChain" json:"preferredChain,omitempty"`
	// ReuseKey keeps a certificate's key across renewals (default: a
	// fresh key every time).
	ReuseKey bool `yaml:"reuseKey" toml:"reuseKey" json:"reuseKey,omitempty"`
	// EAB credentials.
	EAB *EAB `yaml:"eab" toml:"eab" json:"eab,omitempty"`
	// Challenges say how names are validated.
	Challenges Challenges `yaml:"challenges" toml:"challenges" json:"challenges"`
	// Embedded tunes the in-process CA (server: embedded).
	Embedded Embedded `yaml:"embedded" toml:"embedded" json:"embedded"`
}

// EAB credentials; HMAC is a secret (use ${ENV} or file:).
type EAB struct {
	KID  string `yaml:"kid" toml:"kid" json:"kid"`
	HMAC Secret `yaml:"hmac" toml:"hmac" json:"hmac"`
}

// Secret is a string that is redacted when shown.
type Secret string

// Challenges configure the solvers.
type Challenges struct {
	// HTTP answers HTTP-01 on a plain entry point (all plain ones answer;
	// this names the one whose port the CA must reach).
	HTTP *HTTPChallenge `yaml:"http" toml:"http" json:"http,omitempty"`
	// TLSALPN answers TLS-ALPN-01 on a TLS entry point.
	TLSALPN *TLSALPNChallenge `yaml:"tlsAlpn" toml:"tlsAlpn" json:"tlsAlpn,omitempty"`
	// DNS uses DNS providers (required for wildcards).
	DNS *DNSChallenge `yaml:"dns" toml:"dns" json:"dns,omitempty"`
}

// HTTPChallenge names the entry point for HTTP-01.
type HTTPChallenge struct {
	EntryPoint string `yaml:"entryPoint" toml:"entryPoint" json:"entryPoint"`
}

// TLSALPNChallenge names the entry point for TLS-ALPN-01.
type TLSALPNChallenge struct {
	EntryPoint string `yaml:"entryPoint" toml:"entryPoint" json:"entryPoint"`
}

// DNSChallenge configures DNS-01.
type DNSChallenge struct {
	// Provider is a lego provider code (e.g. iijdpf, rfc2136): the
	// one-provider shorthand of Providers.
	Provider string `yaml:"provider" toml:"provider" json:"provider,omitempty"`
	// Env sets Provider's variables (lego names) for it alone; values may
	// be ${ENV} or file: references.
	Env map[string]Secret `yaml:"env" toml:"env" json:"env,omitempty"`
	// Providers are several providers, each serving its zones (longest
	// suffix wins; one without zones serves the rest).
	Providers []DNSProvider `yaml:"providers" toml:"providers" json:"providers,omitempty"`
	// Resolvers (host:port) for the propagation check.
	Resolvers []string `yaml:"resolvers" toml:"resolvers" json:"resolvers,omitempty"`
	// DisableAuthoritativeCheck skips asking the zone's name servers.
	DisableAuthoritativeCheck bool `yaml:"disableAuthoritativeCheck" toml:"disableAuthoritativeCheck" json:"disableAuthoritativeCheck"`
	// AuthoritativePort is the port of the zone's name servers; default 53.
	AuthoritativePort int `yaml:"authoritativePort" toml:"authoritativePort" json:"authoritativePort,omitempty"`
	// RequireAllResolvers requires every resolver to see the record.
	RequireAllResolvers bool `yaml:"requireAllResolvers" toml:"requireAllResolvers" json:"requireAllResolvers,omitempty"`
	// PropagationWait sleeps instead of checking.
	PropagationWait Duration `yaml:"propagationWait" toml:"propagationWait" json:"propagationWait"`
	// PropagationTimeout bounds the check; default the provider's, else 60s.
	PropagationTimeout Duration `yaml:"propagationTimeout" toml:"propagationTimeout" json:"propagationTimeout"`
}

// DNSProvider is one DNS provider and the zones it serves.
type DNSProvider struct {
	// Code is the lego provider code.
	Code string `yaml:"code" toml:"code" json:"code"`
	// Zones are the domain suffixes it serves; none means "the rest".
	Zones []string `yaml:"zones" toml:"zones" json:"zones,omitempty"`
	// Env are its own lego variables (${ENV} and file: allowed).
	Env map[string]Secret `yaml:"env" toml:"env" json:"env,omitempty"`
}

// Embedded tunes the in-process CA.
type Embedded struct {
	// Validity of issued certificates; default 90 days (filled in only
	// with server: embedded). A short one (2m)
	// shows renewal in action.
	Validity Duration `yaml:"validity" toml:"validity" json:"validity"`
	// HTTPPort is the port the embedded CA connects to on 127.0.0.1 to
	// validate HTTP-01 (its resolver sends every name there); default:
	// the port of challenges.http's entry point, else 80. Set it when
	// something else answers, e.g. a load balancer of a deploy target
	// tried on loopback (embedded.go).
	HTTPPort int `yaml:"httpPort" toml:"httpPort" json:"httpPort,omitempty"`
	// TLSPort is the same for TLS-ALPN-01; default: the port of
	// challenges.tlsAlpn's entry point, else 443.
	TLSPort int `yaml:"tlsPort" toml:"tlsPort" json:"tlsPort,omitempty"`
}

// DomainSet is one certificate: a main name and more SANs.
type DomainSet struct {
	Main string   `yaml:"main" toml:"main" json:"main"`
	SANs []string `yaml:"sans" toml:"sans" json:"sans,omitempty"`
	// Profile overrides acme.profile (classic, tlsserver, shortlived).
	Profile string `yaml:"profile" toml:"profile" json:"profile,omitempty"`
	// KeyType overrides acme.keyType.
	KeyType string `yaml:"keyType" toml:"keyType" json:"keyType,omitempty"`
	// ReuseKey overrides acme.reuseKey.
	ReuseKey bool `yaml:"reuseKey" toml:"reuseKey" json:"reuseKey,omitempty"`
	// Issuer, set only by a source such as Kubernetes (not a key of the
	// file), picks the CA for this certificate: the server of
	// certificates.acme or of one of certificates.issuers, as written
	// there. Empty means the usual order.
	Issuer string `yaml:"-" toml:"-" json:"issuer,omitempty"`
}

// CertFile is a user-provided certificate and key: two files, or (from a
// source such as a Kubernetes Secret, never from the file) the PEM itself.
type CertFile struct {
	CertFile string `yaml:"certFile" toml:"certFile" json:"certFile,omitempty"`
	KeyFile  string `yaml:"keyFile" toml:"keyFile" json:"keyFile,omitempty"`
	// CertPEM and KeyPEM hold a certificate that has no file; KeyPEM is a
	// private key and is never rendered.
	CertPEM []byte `yaml:"-" toml:"-" json:"-"`
	KeyPEM  []byte `yaml:"-" toml:"-" json:"-"`
	// Origin says where an in-memory certificate came from
	// ("kubernetes secret default/www-tls"), for messages.
	Origin string `yaml:"-" toml:"-" json:"origin,omitempty"`
}

// Route sends matching requests to a service. Every condition it sets
// must hold (matchers.go has the conditions beyond host and path prefix).
type Route struct {
	// Host is an exact name or "*.domain" (one label); required unless
	// HostRegex is set.
	Host string `yaml:"host" toml:"host" json:"host"`
	// PathPrefix restricts the route; default "/".
	PathPrefix string `yaml:"pathPrefix" toml:"pathPrefix" json:"pathPrefix,omitempty"`
	// Priority orders overlapping routes (higher first); ties go to the
	// longer path prefix, then the exact host.
	Priority int `yaml:"priority" toml:"priority" json:"priority,omitempty"`
	// Service is the target service's name; required.
	Service string `yaml:"service" toml:"service" json:"service"`
	// EntryPoints restrict the route; default: every entry point without a
	// redirect.
	EntryPoints []string `yaml:"entryPoints" toml:"entryPoints" json:"entryPoints,omitempty"`
	// ClientAuth requires (or asks for) a client certificate for this
	// route's requests (l4.go).
	ClientAuth *ClientAuth `yaml:"clientAuth" toml:"clientAuth" json:"clientAuth,omitempty"`

	// ResponseHeaders are set on every response of this route.
	ResponseHeaders map[string]string `yaml:"responseHeaders" toml:"responseHeaders" json:"responseHeaders,omitempty"`
	// Middlewares are names under middlewares, applied in this order
	// (the first sees the request first and the response last).
	Middlewares []string `yaml:"middlewares" toml:"middlewares" json:"middlewares,omitempty"`

	// Conditions beyond host and path prefix; docs/config.md gives the
	// precedence of routes that set them (matchers.go checks them).

	// HostRegex matches the host (lower case, without port) against a
	// regular expression, instead of Host.
	HostRegex string `yaml:"hostRegex" toml:"hostRegex" json:"hostRegex,omitempty"`
	// Path is an exact path the request must have.
	Path string `yaml:"path" toml:"path" json:"path,omitempty"`
	// PathRegex is a regular expression the path must match.
	PathRegex string `yaml:"pathRegex" toml:"pathRegex" json:"pathRegex,omitempty"`
	// Methods the request must use (any of them).
	Methods []string `yaml:"methods" toml:"methods" json:"methods,omitempty"`
	// Headers the request must carry with exactly these values.
	Headers map[string]string `yaml:"headers" toml:"headers" json:"headers,omitempty"`
	// HeadersRegex: headers whose value must match these regular
	// expressions.
	HeadersRegex map[string]string `yaml:"headersRegex" toml:"headersRegex" json:"headersRegex,omitempty"`
	// Query parameters the request must carry with exactly these values.
	Query map[string]string `yaml:"query" toml:"query" json:"query,omitempty"`
	// QueryRegex: query parameters whose value must match these regular
	// expressions.
	QueryRegex map[string]string `yaml:"queryRegex" toml:"queryRegex" json:"queryRegex,omitempty"`
	// ClientIPs are the IPs or CIDRs the peer's address must be in.
	ClientIPs []string `yaml:"clientIPs" toml:"clientIPs" json:"clientIPs,omitempty"`

	// Redirect answers the route's requests with a redirect instead of
	// sending them to a service (then Service may be empty). Only sources
	// such as Kubernetes set it.
	Redirect *RouteRedirect `yaml:"-" toml:"-" json:"redirect,omitempty"`
}

// RouteRedirect sends the client elsewhere: each empty field keeps the
// request's own (scheme, host, port), and the path and query are kept.
type RouteRedirect struct {
	Scheme string `json:"scheme,omitempty"`
	Host   string `json:"host,omitempty"`
	// Port 0 is the scheme's default port when Scheme changes, else the
	// request's.
	Port int `json:"port,omitempty"`
	// StatusCode is 301, 302, 303, 307 or 308 (default 302).
	StatusCode int `json:"statusCode,omitempty"`
}

// Service is a pool of servers, or a static reply.
type Service struct {
	// Servers are the backends (http:// or https:// URLs).
	Servers []Server `yaml:"servers" toml:"servers" json:"servers,omitempty"`
	// Strategy: round-robin (default), weighted, least-requests,
	// power-of-two-choices.
	Strategy string `yaml:"strategy" toml:"strategy" json:"strategy,omitempty"`
	// HealthCheck is the active check.
	HealthCheck *HealthCheck `yaml:"healthCheck" toml:"healthCheck" json:"healthCheck,omitempty"`
	// PassiveHealth takes failing servers out for a while.
	PassiveHealth *PassiveHealth `yaml:"passiveHealth" toml:"passiveHealth" json:"passiveHealth,omitempty"`
	// TryTimeout bounds one attempt against one server (default 30s).
	TryTimeout Duration `yaml:"tryTimeout" toml:"tryTimeout" json:"tryTimeout"`
	// Retries of idempotent requests on another server (default 1).
	Retries *int `yaml:"retries" toml:"retries" json:"retries,omitempty"`
	// Static, when set, answers every request itself (no servers).
	Static *Static `yaml:"static" toml:"static" json:"static,omitempty"`
	// Sticky keeps a client on the server (or, with Weighted, the
	// service) that answered it first, by a cookie (servicekinds.go).
	Sticky *Sticky `yaml:"sticky" toml:"sticky" json:"sticky,omitempty"`
	// Failover sends requests to a primary service while it has a
	// server up, else to a fallback service.
	Failover *Failover `yaml:"failover" toml:"failover" json:"failover,omitempty"`
	// Mirroring sends requests to a service and copies a share of them
	// to others, whose answers are discarded.
	Mirroring *Mirroring `yaml:"mirroring" toml:"mirroring" json:"mirroring,omitempty"`
	// Weighted spreads requests over other services by weight.
	Weighted *Weighted `yaml:"weighted" toml:"weighted" json:"weighted,omitempty"`
}

// Server is one backend: an http://, https:// or h2c:// (HTTP/2 without
// TLS, for gRPC) URL.
type Server struct {
	URL    string `yaml:"url" toml:"url" json:"url"`
	Weight int    `yaml:"weight" toml:"weight" json:"weight,omitempty"` // default 1
}

// HealthCheck is an active probe of each server.
type HealthCheck struct {
	Path           string   `yaml:"path" toml:"path" json:"path"`                               // default /
	Interval       Duration `yaml:"interval" toml:"interval" json:"interval"`                   // default 10s
	Timeout        Duration `yaml:"timeout" toml:"timeout" json:"timeout"`                      // default 2s
	ExpectedStatus int      `yaml:"expectedStatus" toml:"expectedStatus" json:"expectedStatus"` // default: any 2xx/3xx
}

// PassiveHealth counts failures of real requests.
type PassiveHealth struct {
	MaxFailures int      `yaml:"maxFailures" toml:"maxFailures" json:"maxFailures"` // default 3
	Window      Duration `yaml:"window" toml:"window" json:"window"`                // default 10s
	Cooldown    Duration `yaml:"cooldown" toml:"cooldown" json:"cooldown"`          // default 30s
}

// Static is a fixed reply (the quickstart's demo backend).
type Static struct {
	Status      int    `yaml:"status" toml:"status" json:"status"` // default 200
	Body        string `yaml:"body" toml:"body" json:"body"`
	ContentType string `yaml:"contentType" toml:"contentType" json:"contentType"` // default text/plain; charset=utf-8
}

// AccessLog is the per-request log.
type AccessLog struct {
	// Path is a file, or "stdout"/"stderr"; empty disables it.
	Path string `yaml:"path" toml:"path" json:"path,omitempty"`
}

// Log is zoku's own log.
type Log struct {
	// Format: text (default) or json.
	Format string `yaml:"format" toml:"format" json:"format,omitempty"`
	// Level: debug, info (default), warn, error.
	Level string `yaml:"level" toml:"level" json:"level,omitempty"`
}
