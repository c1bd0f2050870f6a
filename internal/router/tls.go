package router

import (
	"crypto/tls"
	"fmt"
	"net/http"
)

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
			if t.l4 != nil && len(t.l4.hello) > 0 {
				// Client certificates: the config of the server name
				// (clientauth.go).
				if h := t.l4.hello[ep]; h != nil {
					return h.pick(hello.ServerName), nil
				}
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

// edgeHandler runs an entry point's edge checks (Alt-Svc, client
// certificates: clientauth.go) before next, when the running config gives
// the entry point any; otherwise it costs one atomic load and a slice
// index.
func (r *Router) edgeHandler(ep string, next http.Handler) http.Handler {
	idx := r.epIndex(ep)
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if t := r.tab.Load(); t != nil && t.l4 != nil && idx < len(t.l4.edge) {
			if e := t.l4.edge[idx]; e != nil && !e.serve(w, req, t, ep) {
				return
			}
		}
		next.ServeHTTP(w, req)
	})
}
