package proxy

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/zoku/zoku/internal/config"
)

// seen is what the header-echo backend reports.
type seen struct {
	Host, XFF, Proto, XHost, Forwarded, RealIP, Connection, Custom string
}

func headerEcho(w http.ResponseWriter, r *http.Request) {
	_ = json.NewEncoder(w).Encode(seen{
		Host:       r.Host,
		XFF:        r.Header.Get("X-Forwarded-For"),
		Proto:      r.Header.Get("X-Forwarded-Proto"),
		XHost:      r.Header.Get("X-Forwarded-Host"),
		Forwarded:  r.Header.Get("Forwarded"),
		RealIP:     r.Header.Get("X-Real-Ip"),
		Connection: r.Header.Get("X-Hop"),
		Custom:     r.Header.Get("X-Custom"),
	})
}

func TestForwardedHeaders(t *testing.T) {
	backend := startBackend(t, "echo", headerEcho)
	spoof := map[string]string{
		"X-Forwarded-For":   "203.0.113.7",
		"X-Forwarded-Proto": "https",
		"X-Forwarded-Host":  "original.example",
		"Forwarded":         "for=203.0.113.7",
		"X-Real-Ip":         "203.0.113.7",
	}
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}
	tests := []struct {
		name    string
		remote  string
		trusted []netip.Prefix
		headers map[string]string
		want    seen
	}{
		{
			name: "untrusted peer: replaced", remote: "198.51.100.1:5000", trusted: trusted, headers: spoof,
			want: seen{Host: "app.example", XFF: "198.51.100.1", Proto: "http", XHost: "app.example"},
		},
		{
			name: "no trusted proxies: replaced", remote: "10.1.2.3:5000", headers: spoof,
			want: seen{Host: "app.example", XFF: "10.1.2.3", Proto: "http", XHost: "app.example"},
		},
		{
			name: "trusted peer: appended and kept", remote: "10.1.2.3:5000", trusted: trusted, headers: spoof,
			want: seen{Host: "app.example", XFF: "203.0.113.7, 10.1.2.3", Proto: "https", XHost: "original.example", Forwarded: "for=203.0.113.7", RealIP: "203.0.113.7"},
		},
		{
			name: "trusted peer without headers: filled in", remote: "10.1.2.3:5000", trusted: trusted,
			want: seen{Host: "app.example", XFF: "10.1.2.3", Proto: "http", XHost: "app.example"},
		},
		{
			name: "trusted IPv6 peer", remote: "[2001:db8::5]:443", trusted: trusted, headers: map[string]string{"X-Forwarded-For": "192.0.2.9"},
			want: seen{Host: "app.example", XFF: "192.0.2.9, 2001:db8::5", Proto: "http", XHost: "app.example"},
		},
		{
			name: "IPv4-mapped peer matches an IPv4 prefix", remote: "[::ffff:10.9.9.9]:443", trusted: trusted, headers: map[string]string{"X-Forwarded-Proto": "https"},
			want: seen{Host: "app.example", XFF: "::ffff:10.9.9.9", Proto: "https", XHost: "app.example"},
		},
		{
			name: "hop-by-hop headers dropped, others kept", remote: "198.51.100.1:5000",
			headers: map[string]string{"Connection": "X-Hop", "X-Hop": "secret", "X-Custom": "kept"},
			want:    seen{Host: "app.example", XFF: "198.51.100.1", Proto: "http", XHost: "app.example", Custom: "kept"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := newService(t, &config.Service{Servers: servers(backend.url())}, nil, Options{TrustedProxies: tt.trusted})
			req := httptest.NewRequest(http.MethodGet, "http://app.example/", nil)
			req.RemoteAddr = tt.remote
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			svc.ServeHTTP(rec, req)
			if rec.Code != 200 {
				t.Fatalf("status = %d (%s), want 200", rec.Code, rec.Body)
			}
			var got seen
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("backend saw\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

func TestParseTrustedProxies(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    []string
		wantErr bool
	}{
		{"empty", nil, []string{}, false},
		{"cidrs and ips", []string{"10.0.0.0/8", " 192.0.2.1 ", "2001:db8::/32", "::1", "::ffff:192.0.2.9"}, []string{"10.0.0.0/8", "192.0.2.1/32", "2001:db8::/32", "::1/128", "192.0.2.9/32"}, false},
		{"host bits are masked", []string{"10.1.2.3/8"}, []string{"10.0.0.0/8"}, false},
		{"garbage", []string{"10.0.0.0/8", "proxy.example"}, nil, true},
		{"zone", []string{"fe80::1%eth0"}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTrustedProxies(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseTrustedProxies(%q) = %v, want an error", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseTrustedProxies(%q) error = %v", tt.in, err)
			}
			gotS := make([]string, len(got))
			for i, p := range got {
				gotS[i] = p.String()
			}
			if strings.Join(gotS, ",") != strings.Join(tt.want, ",") {
				t.Errorf("ParseTrustedProxies(%q) = %v, want %v", tt.in, gotS, tt.want)
			}
		})
	}
}
