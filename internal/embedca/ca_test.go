package embedca_test

import (
	"context"
	"encoding/pem"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/zoku/zoku/internal/embedca"
	"github.com/zoku/zoku/internal/testkit/testenv"
)

func TestStartInvalidOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts embedca.Options
		want string
	}{
		{"negative HTTP port", embedca.Options{HTTPPort: -1}, "HTTPPort"},
		{"TLS port too big", embedca.Options{TLSPort: 70000}, "TLSPort"},
		{"DNS server without port", embedca.Options{DNSServer: "127.0.0.1"}, "DNSServer"},
		{"upstream with DNS server", embedca.Options{DNSServer: "127.0.0.1:53", Upstream: "127.0.0.1:53"}, "Upstream"},
		{"sub-second validity", embedca.Options{Validity: time.Millisecond}, "Validity"},
		{"default profile redefined", embedca.Options{Profiles: map[string]time.Duration{"default": time.Hour}}, "reserved"},
		{"negative chain length", embedca.Options{ChainLength: -1}, "ChainLength"},
		{"nonce percent too low", embedca.Options{NonceRejectPercent: -2}, "NonceRejectPercent"},
		{"authz reuse too high", embedca.Options{AuthzReusePercent: 101}, "AuthzReusePercent"},
		{"unknown key algorithm", embedca.Options{KeyAlgorithm: "ed25519"}, "KeyAlgorithm"},
		{"bad EAB key", embedca.Options{EABKeys: map[string]string{"kid": "not base64!"}}, "base64url"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ca, err := embedca.Start(t.Context(), tc.opts)
			if err == nil {
				_ = ca.Close()
				t.Fatalf("Start = nil error, want one mentioning %q", tc.want)
			}
			if !strings.HasPrefix(err.Error(), "embedca: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Start error = %q, want prefix %q and %q", err, "embedca: ", tc.want)
			}
		})
	}
}

func TestAddEABKeyErrors(t *testing.T) {
	t.Parallel()
	ca := testenv.StartCA(t, embedca.Options{})
	const secret = "c2VjcmV0LWtleS1mb3ItZWFiLXRlc3Q"
	if err := ca.AddEABKey("dup", secret); err != nil {
		t.Fatalf("AddEABKey: %v", err)
	}
	tests := []struct{ name, kid, hmac string }{
		{"empty kid", "", secret},
		{"empty key", "k", ""},
		{"not base64url", "k", secret + "/+*"},
		{"duplicate kid", "dup", secret},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ca.AddEABKey(tc.kid, tc.hmac)
			if err == nil {
				t.Fatal("AddEABKey = nil, want error")
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("AddEABKey error %q contains the HMAC key", err)
			}
		})
	}
}

// TestStartRestoresEnv checks that Start sets Pebble's env vars only while
// constructing and puts the process environment back, with several CAs
// starting concurrently.
func TestStartRestoresEnv(t *testing.T) {
	t.Setenv("PEBBLE_VA_NOSLEEP", "sentinel")
	t.Setenv("PEBBLE_AUTHZREUSE", "")
	if err := os.Unsetenv("PEBBLE_AUTHZREUSE"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() {
			ca, err := embedca.Start(t.Context(), embedca.Options{AuthzReusePercent: 10 * i, NonceRejectPercent: i - 1})
			if err == nil {
				err = ca.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent Start: %v", err)
	}
	if got := os.Getenv("PEBBLE_VA_NOSLEEP"); got != "sentinel" {
		t.Errorf("PEBBLE_VA_NOSLEEP = %q, want %q", got, "sentinel")
	}
	if got, ok := os.LookupEnv("PEBBLE_AUTHZREUSE"); ok {
		t.Errorf("PEBBLE_AUTHZREUSE = %q, want unset", got)
	}
}

func TestWriteRoot(t *testing.T) {
	t.Parallel()
	ca := testenv.StartCA(t, embedca.Options{AlternateRoots: 1, ChainLength: 2})
	if got := len(ca.Roots()); got != 2 {
		t.Fatalf("len(Roots()) = %d, want 2", got)
	}
	dir := filepath.Join(t.TempDir(), "zoku")
	path := filepath.Join(dir, "embedded-root.pem")
	for range 2 { // the second write replaces the first
		if err := ca.WriteRoot(path); err != nil {
			t.Fatalf("WriteRoot: %v", err)
		}
	}
	for _, c := range []struct {
		path string
		want os.FileMode
	}{{dir, 0o700 | os.ModeDir}, {path, 0o600}} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode(); got != c.want {
			t.Errorf("mode of %s = %v, want %v", filepath.Base(c.path), got, c.want)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(ca.RootsPEM()) {
		t.Errorf("file content differs from RootsPEM")
	}
	var n int
	for rest := got; ; n++ {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type != "CERTIFICATE" || !ca.Roots()[n].Equal(mustParse(t, b.Bytes)) {
			t.Errorf("block %d is not Roots()[%d]", n, n)
		}
	}
	if n != 2 {
		t.Errorf("PEM blocks = %d, want 2", n)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("folder holds %d entries, want 1 (no temp files left)", len(entries))
	}
}

func TestHTTPClientAndRetryAfter(t *testing.T) {
	t.Parallel()
	ca := testenv.StartCA(t, embedca.Options{})
	other := testenv.StartCA(t, embedca.Options{})
	base := strings.TrimSuffix(ca.DirectoryURL(), "/dir")
	if !strings.HasPrefix(base, "https://127.0.0.1:") {
		t.Errorf("DirectoryURL = %q, want https://127.0.0.1:<port>/dir", ca.DirectoryURL())
	}

	tests := []struct {
		name           string
		client         *http.Client
		method, path   string
		wantErr        bool
		wantRetryAfter string
	}{
		{"directory", ca.HTTPClient(), http.MethodGet, "/dir", false, ""},
		{"challenge POST", ca.HTTPClient(), http.MethodPost, "/chalZ/none", false, "1"},
		{"authz POST", ca.HTTPClient(), http.MethodPost, "/authZ/none", false, ""},
		{"other CA's client", other.HTTPClient(), http.MethodGet, "/dir", true, ""},
		{"default client", &http.Client{Timeout: 10 * time.Second}, http.MethodGet, "/dir", true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tc.method, base+tc.path, strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("User-Agent", "zoku-test")
			req.Header.Set("Content-Type", "application/jose+json")
			resp, err := tc.client.Do(req)
			if gotErr := err != nil; gotErr != tc.wantErr {
				t.Fatalf("Do error = %v, want error %t", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			defer resp.Body.Close()
			if got := resp.Header.Get("Retry-After"); got != tc.wantRetryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tc.wantRetryAfter)
			}
		})
	}
}

func TestResolver(t *testing.T) {
	t.Parallel()
	upstream := testenv.DNS(t)
	const txtName = "fwd.resolver.embedca.test."
	upstream.SetTXT(txtName, "forwarded-value")
	t.Cleanup(func() { upstream.ClearTXT(txtName) })

	withUp := testenv.StartCA(t, embedca.Options{Upstream: upstream.Addr()})
	noUp := testenv.StartCA(t, embedca.Options{})
	deadUp := testenv.StartCA(t, embedca.Options{Upstream: "127.0.0.1:1"})

	tests := []struct {
		name      string
		addr      string
		net       string
		qname     string
		qtype     uint16
		wantRcode int
		want      []string // A addresses or TXT values
	}{
		{"A any name udp", withUp.DNSAddr(), "udp", "anything.example.", dns.TypeA, dns.RcodeSuccess, []string{"127.0.0.1"}},
		{"A any name tcp", noUp.DNSAddr(), "tcp", "other.test.", dns.TypeA, dns.RcodeSuccess, []string{"127.0.0.1"}},
		{"AAAA empty", withUp.DNSAddr(), "tcp", "anything.example.", dns.TypeAAAA, dns.RcodeSuccess, nil},
		{"TXT forwarded udp", withUp.DNSAddr(), "udp", txtName, dns.TypeTXT, dns.RcodeSuccess, []string{"forwarded-value"}},
		{"TXT forwarded tcp", withUp.DNSAddr(), "tcp", txtName, dns.TypeTXT, dns.RcodeSuccess, []string{"forwarded-value"}},
		{"upstream rcode copied", withUp.DNSAddr(), "udp", txtName, dns.TypeMX, dns.RcodeNotImplemented, nil},
		{"TXT without upstream", noUp.DNSAddr(), "tcp", txtName, dns.TypeTXT, dns.RcodeSuccess, nil},
		{"unreachable upstream", deadUp.DNSAddr(), "tcp", txtName, dns.TypeTXT, dns.RcodeServerFailure, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := new(dns.Msg)
			m.SetQuestion(tc.qname, tc.qtype)
			c := &dns.Client{Net: tc.net, Timeout: 10 * time.Second}
			in, _, err := c.ExchangeContext(t.Context(), m, tc.addr)
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			if in.Rcode != tc.wantRcode {
				t.Errorf("rcode = %s, want %s", dns.RcodeToString[in.Rcode], dns.RcodeToString[tc.wantRcode])
			}
			var got []string
			for _, rr := range in.Answer {
				switch rr := rr.(type) {
				case *dns.A:
					got = append(got, rr.A.String())
				case *dns.TXT:
					got = append(got, strings.Join(rr.Txt, ""))
				default:
					got = append(got, rr.String())
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("answers = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCloseStopsListeners(t *testing.T) {
	t.Parallel()
	ca, err := embedca.Start(t.Context(), embedca.Options{})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	acmeAddr := strings.TrimSuffix(strings.TrimPrefix(ca.DirectoryURL(), "https://"), "/dir")
	dnsAddr := ca.DNSAddr()
	if err := ca.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := ca.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	for _, addr := range []string{acmeAddr, dnsAddr} {
		d := net.Dialer{Timeout: 5 * time.Second}
		conn, err := d.DialContext(context.Background(), "tcp", addr)
		if err == nil {
			_ = conn.Close()
			t.Errorf("dial %s after Close succeeded, want refused", addr)
		}
	}
}

// recorder is a slog.Handler that keeps records; Pebble may keep writing to
// it after the test ends, which is harmless.
type recorder struct {
	level slog.Level
	mu    sync.Mutex
	recs  []slog.Record
}

func (r *recorder) Enabled(_ context.Context, l slog.Level) bool { return l >= r.level }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec.Clone())
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

func (r *recorder) snapshot() []slog.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.recs)
}

func TestStartLogs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		level      slog.Level
		wantPebble bool
	}{
		{"info", slog.LevelInfo, false},
		{"debug", slog.LevelDebug, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{level: tc.level}
			ca := testenv.StartCA(t, embedca.Options{Logger: slog.New(rec)})
			var warns, pebble int
			for _, r := range rec.snapshot() {
				switch {
				case r.Level == slog.LevelWarn:
					warns++
					if !strings.Contains(r.Message, "never production") {
						t.Errorf("warn message = %q, want the production warning", r.Message)
					}
					r.Attrs(func(a slog.Attr) bool {
						if a.Key == "directory" && a.Value.String() != ca.DirectoryURL() {
							t.Errorf("directory attr = %q, want %q", a.Value, ca.DirectoryURL())
						}
						return true
					})
				case r.Level == slog.LevelDebug && r.Message == "pebble":
					pebble++
				}
			}
			if warns != 1 {
				t.Errorf("warn records = %d, want 1", warns)
			}
			if got := pebble > 0; got != tc.wantPebble {
				t.Errorf("pebble debug records = %d, want some: %t", pebble, tc.wantPebble)
			}
		})
	}
}
