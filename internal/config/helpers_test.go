package config

import (
	"crypto/tls"
	"reflect"
	"strings"
	"testing"
)

func TestTLSConfigBase(t *testing.T) {
	tests := []struct {
		name    string
		tls     *TLS
		want    *tls.Config
		wantErr string
	}{
		{"defaults", &TLS{}, &tls.Config{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS13, NextProtos: []string{"h2", "http/1.1", "http/1.0"}}, ""},
		{"h2 only", &TLS{ALPN: []string{"h2"}}, &tls.Config{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS13, NextProtos: []string{"h2"}}, ""},
		{"http/1.0 listed", &TLS{ALPN: []string{"http/1.0", "http/1.1"}}, &tls.Config{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS13, NextProtos: []string{"http/1.0", "http/1.1"}}, ""},
		{"everything", &TLS{
			MinVersion: "1.3", MaxVersion: "1.3",
			CipherSuites:     []string{"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"},
			CurvePreferences: []string{"X25519MLKEM768", "P384"},
			ALPN:             []string{"http/1.1"},
		}, &tls.Config{
			MinVersion: tls.VersionTLS13, MaxVersion: tls.VersionTLS13,
			CipherSuites:     []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256},
			CurvePreferences: []tls.CurveID{tls.X25519MLKEM768, tls.CurveP384},
			NextProtos:       []string{"http/1.1", "http/1.0"},
		}, ""},
		{"bad version", &TLS{MinVersion: "VersionTLS12"}, nil, `config: tls.minVersion "VersionTLS12" is unknown`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := (&Config{}).TLSConfigBase(&EntryPoint{TLS: tt.tls})
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.MinVersion != tt.want.MinVersion || got.MaxVersion != tt.want.MaxVersion ||
				!reflect.DeepEqual(got.CipherSuites, tt.want.CipherSuites) ||
				!reflect.DeepEqual(got.CurvePreferences, tt.want.CurvePreferences) ||
				!reflect.DeepEqual(got.NextProtos, tt.want.NextProtos) || got.Certificates != nil {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
	if _, err := (&Config{}).TLSConfigBase(&EntryPoint{}); err == nil {
		t.Error("entry point without tls: got no error")
	}
}

func TestEntryPointPort(t *testing.T) {
	tests := []struct {
		addr string
		want int
	}{
		{":443", 443},
		{"127.0.0.1:8443", 8443},
		{"[::1]:80", 80},
		{"127.0.0.1:0", 0},
		{"nonsense", 0},
	}
	for _, tt := range tests {
		if got := (&EntryPoint{Address: tt.addr}).Port(); got != tt.want {
			t.Errorf("Port(%q): got %d, want %d", tt.addr, got, tt.want)
		}
	}
}

func TestRoutedHostsAndRedirectTarget(t *testing.T) {
	src := `entryPoints:
  web:
    address: ":8080"
    redirect: {entryPoint: websecure}
  temp:
    address: ":8081"
    redirect: {entryPoint: websecure, permanent: false, scheme: http}
  websecure:
    address: ":8443"
    tls: {}
routes:
  a: {host: B.example.test., service: s}
  b: {host: a.example.test, service: s}
  c: {host: b.example.test, service: s, pathPrefix: /x}
  d: {host: "*.example.test", service: s}
services:
  s: {static: {body: hi}}
`
	c, err := Parse("zoku.yaml", []byte(src), env())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.RoutedHosts(), []string{"*.example.test", "a.example.test", "b.example.test"}; !reflect.DeepEqual(got, want) {
		t.Errorf("RoutedHosts: got %v, want %v", got, want)
	}
	tests := []struct {
		ep         string
		wantScheme string
		wantPort   int
		wantCode   int
	}{
		{"web", "https", 8443, 308},
		{"temp", "http", 8443, 307},
		{"websecure", "", 0, 0},
	}
	for _, tt := range tests {
		s, p, code := c.RedirectTarget(c.EntryPoints[tt.ep])
		if s != tt.wantScheme || p != tt.wantPort || code != tt.wantCode {
			t.Errorf("RedirectTarget(%s): got %q %d %d, want %q %d %d", tt.ep, s, p, code, tt.wantScheme, tt.wantPort, tt.wantCode)
		}
	}
}

func TestDefaults(t *testing.T) {
	src := `entryPoints:
  web: {address: ":80", redirect: {entryPoint: websecure}}
  websecure: {address: ":443", tls: {}, hsts: {}}
routes:
  r: {host: a.test, service: s}
services:
  s:
    servers: [{url: "http://127.0.0.1:1"}]
    healthCheck: {}
    passiveHealth: {}
  st: {static: {}}
`
	c, err := Parse("zoku.yaml", []byte(src), env())
	if err != nil {
		t.Fatal(err)
	}
	ws, s, st := c.EntryPoints["websecure"], c.Services["s"], c.Services["st"].Static
	checks := []struct {
		name      string
		got, want any
	}{
		{"readHeader", ws.Timeouts.ReadHeader.String(), "10s"},
		{"read", ws.Timeouts.Read.String(), "1m0s"},
		{"write", ws.Timeouts.Write.String(), "0s"},
		{"idle", ws.Timeouts.Idle.String(), "2m0s"},
		{"shutdown", ws.Timeouts.Shutdown.String(), "30s"},
		{"maxHeaderBytes", ws.MaxHeaderBytes, 1 << 20},
		{"tls min", ws.TLS.MinVersion, "1.2"},
		{"tls max", ws.TLS.MaxVersion, "1.3"},
		{"alpn", ws.TLS.ALPN, []string{"h2", "http/1.1"}},
		{"hsts maxAge", ws.HSTS.MaxAge.String(), "8760h0m0s"},
		{"redirect scheme", c.EntryPoints["web"].Redirect.Scheme, "https"},
		{"redirect permanent", *c.EntryPoints["web"].Redirect.Permanent, true},
		{"storage", c.Certificates.ACME.Storage, "./.zoku"},
		{"keyType", c.Certificates.ACME.KeyType, "ec256"},
		{"route entry points", c.Routes["r"].EntryPoints, []string{"websecure"}},
		{"route path", c.Routes["r"].PathPrefix, "/"},
		{"strategy", s.Strategy, "round-robin"},
		{"weight", s.Servers[0].Weight, 1},
		{"health path", s.HealthCheck.Path, "/"},
		{"health interval", s.HealthCheck.Interval.String(), "10s"},
		{"health timeout", s.HealthCheck.Timeout.String(), "2s"},
		{"passive", []any{s.PassiveHealth.MaxFailures, s.PassiveHealth.Window.String(), s.PassiveHealth.Cooldown.String()}, []any{3, "10s", "30s"}},
		{"tryTimeout", s.TryTimeout.String(), "30s"},
		{"retries", *s.Retries, 1},
		{"static", []any{st.Status, st.ContentType}, []any{200, "text/plain; charset=utf-8"}},
		{"log", []string{c.Log.Format, c.Log.Level}, []string{"text", "info"}},
	}
	for _, ck := range checks {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s: got %v, want %v", ck.name, ck.got, ck.want)
		}
	}
}
