package config

import "time"

// This file is the schema of the router's layer-4 and TLS options: TCP
// routes and services (routed by SNI, with TLS passed through or
// terminated), HTTP/3, client certificates and the PROXY protocol.
// l4validate.go checks them; docs/config.md documents every key.

// Defaults of the layer-4 keys.
const (
	// DefaultClientSubjectHeader carries the verified subject of a client
	// certificate to the backend.
	DefaultClientSubjectHeader = "X-Client-Cert-Subject"
	// DefaultProxyHeaderTimeout bounds the wait for a PROXY header from a
	// trusted load balancer.
	DefaultProxyHeaderTimeout = 5 * time.Second
	// DefaultHTTP3MaxAge is the Alt-Svc ma= of HTTP/3 entry points.
	DefaultHTTP3MaxAge = 24 * time.Hour
	// DefaultTCPConnectTimeout bounds one connection attempt to a TCP
	// server.
	DefaultTCPConnectTimeout = 5 * time.Second
	// DefaultTCPProxyVersion is the PROXY protocol version sent to TCP
	// servers when proxyProtocol has none.
	DefaultTCPProxyVersion = 2
	// DefaultTCPStrategy balances TCP connections.
	DefaultTCPStrategy = "round-robin"
)

// TLS modes of a TCP route.
const (
	// TLSPassthrough forwards the TLS bytes untouched: the server
	// terminates TLS with its own certificate.
	TLSPassthrough = "passthrough"
	// TLSTerminate makes zoku terminate TLS (certificates from the engine)
	// and forward the plaintext.
	TLSTerminate = "terminate"
)

// Client certificate modes.
const (
	// ClientAuthRequire refuses a handshake without a client certificate
	// that verifies against caFiles.
	ClientAuthRequire = "require"
	// ClientAuthOptional asks for a certificate; one that is given must
	// verify, none is also fine.
	ClientAuthOptional = "optional"
)

// HTTP3 serves HTTP/3 (QUIC over UDP, on the entry point's port) next to
// HTTP/1.1 and HTTP/2, and advertises it with Alt-Svc on TLS responses.
type HTTP3 struct {
	// AdvertisedPort is the UDP port named in Alt-Svc; default the entry
	// point's own port (set it when a NAT or load balancer maps another
	// public port to it).
	AdvertisedPort int `yaml:"advertisedPort" toml:"advertisedPort" json:"advertisedPort,omitempty"`
	// MaxAge is how long clients may remember the advertisement; default
	// 24h.
	MaxAge Duration `yaml:"maxAge" toml:"maxAge" json:"maxAge"`
}

// ClientAuth asks TLS clients for a certificate, verified against a CA
// bundle. On an entry point it applies to every handshake; on a route, to
// the requests of that route (see docs/config.md, "Client certificates").
type ClientAuth struct {
	// Mode is require (default) or optional.
	Mode string `yaml:"mode" toml:"mode" json:"mode,omitempty"`
	// CAFiles are PEM files of the CAs a client certificate must chain to;
	// required.
	CAFiles []string `yaml:"caFiles" toml:"caFiles" json:"caFiles,omitempty"`
	// SubjectHeader is the request header that carries the verified
	// certificate's subject (RFC 4514) to the backend; a client-sent header
	// of that name is always removed. Default X-Client-Cert-Subject.
	SubjectHeader string `yaml:"subjectHeader" toml:"subjectHeader" json:"subjectHeader,omitempty"`
}

// ProxyProtocol accepts the PROXY protocol (v1 and v2) on an entry point
// from trusted load balancers, which then must send it.
type ProxyProtocol struct {
	// TrustedIPs are the peers (IPs or CIDRs) that must send a PROXY
	// header; required. Other peers' connections are used as they come.
	TrustedIPs []string `yaml:"trustedIPs" toml:"trustedIPs" json:"trustedIPs"`
	// HeaderTimeout bounds the wait for the header; default 5s.
	HeaderTimeout Duration `yaml:"headerTimeout" toml:"headerTimeout" json:"headerTimeout"`
}

// TCPRoute sends connections to a TCP service: TLS connections by their
// SNI (passed through or terminated), or every connection (sni "*").
type TCPRoute struct {
	// SNI is the server name: exact, "*.domain" (one label), or "*" for
	// every connection no other TCP route takes; required.
	SNI string `yaml:"sni" toml:"sni" json:"sni"`
	// TLS is passthrough or terminate; empty (only with sni "*") forwards
	// the connection as it is, TLS or not.
	TLS string `yaml:"tls" toml:"tls" json:"tls,omitempty"`
	// Service is the name of a tcpServices entry; required.
	Service string `yaml:"service" toml:"service" json:"service"`
	// EntryPoints the route listens on; required.
	EntryPoints []string `yaml:"entryPoints" toml:"entryPoints" json:"entryPoints"`
	// ClientAuth asks clients of a terminate route for a certificate
	// (default: the entry point's clientAuth).
	ClientAuth *ClientAuth `yaml:"clientAuth" toml:"clientAuth" json:"clientAuth,omitempty"`
}

// TCPService is a pool of TCP servers.
type TCPService struct {
	// Servers are the backends, host:port.
	Servers []TCPServer `yaml:"servers" toml:"servers" json:"servers"`
	// Strategy: round-robin (default), weighted, least-connections,
	// power-of-two-choices.
	Strategy string `yaml:"strategy" toml:"strategy" json:"strategy,omitempty"`
	// HealthCheck connects to each server on a timer.
	HealthCheck *TCPHealthCheck `yaml:"healthCheck" toml:"healthCheck" json:"healthCheck,omitempty"`
	// PassiveHealth takes out a server whose connections fail.
	PassiveHealth *PassiveHealth `yaml:"passiveHealth" toml:"passiveHealth" json:"passiveHealth,omitempty"`
	// ConnectTimeout bounds one connection attempt; default 5s. A failed
	// attempt is tried on the next server.
	ConnectTimeout Duration `yaml:"connectTimeout" toml:"connectTimeout" json:"connectTimeout"`
	// ProxyProtocol, when set, sends a PROXY header to the servers.
	ProxyProtocol *ProxyProtocolOut `yaml:"proxyProtocol" toml:"proxyProtocol" json:"proxyProtocol,omitempty"`
}

// TCPServer is one TCP backend.
type TCPServer struct {
	Address string `yaml:"address" toml:"address" json:"address"`
	Weight  int    `yaml:"weight" toml:"weight" json:"weight,omitempty"` // default 1
}

// TCPHealthCheck is an active TCP connect check.
type TCPHealthCheck struct {
	Interval Duration `yaml:"interval" toml:"interval" json:"interval"` // default 10s
	Timeout  Duration `yaml:"timeout" toml:"timeout" json:"timeout"`    // default 2s
}

// ProxyProtocolOut is the PROXY header sent to a TCP service's servers.
type ProxyProtocolOut struct {
	// Version is 1 (text) or 2 (binary, default).
	Version int `yaml:"version" toml:"version" json:"version"`
}
