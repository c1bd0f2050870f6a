package dns01_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	legodns01 "github.com/go-acme/lego/v5/challenge/dns01"
	"github.com/miekg/dns"

	"github.com/zoku/zoku/internal/acmeclient"
	"github.com/zoku/zoku/internal/challenge/dns01"
	"github.com/zoku/zoku/internal/embedca"
	"github.com/zoku/zoku/internal/testkit/bindtest"
	"github.com/zoku/zoku/internal/testkit/testenv"
)

// orderTimeout bounds one order of these tests.
const orderTimeout = 2 * time.Minute

// useLegoResolver points lego's process-wide DNS client (CNAME lookups,
// dnsupdate's zone search) at addr for the test. Tests that call it must
// not run in parallel.
func useLegoResolver(t *testing.T, addr string) {
	t.Helper()
	prev := legodns01.DefaultClient()
	legodns01.SetDefaultClient(legodns01.NewClient(&legodns01.Options{RecursiveNameservers: []string{addr}, Timeout: 2 * time.Second}))
	t.Cleanup(func() { legodns01.SetDefaultClient(prev) })
}

// dnsupdateEnv returns the lego variables of a dnsupdate provider that may
// update zone on bind, solving names one after the other without a pause.
func dnsupdateEnv(bind *bindtest.Server, zone string) map[string]string {
	k := bind.Key(zone)
	return map[string]string{
		"DNSUPDATE_NAMESERVER":        bind.Addr(),
		"DNSUPDATE_TSIG_KEY":          k.Name,
		"DNSUPDATE_TSIG_SECRET":       k.Secret,
		"DNSUPDATE_TSIG_ALGORITHM":    k.Algorithm,
		"DNSUPDATE_SEQUENCE_INTERVAL": "0",
	}
}

// checkConfig is a propagation check against bind only, polling fast.
func checkConfig(bind *bindtest.Server, providers ...dns01.ProviderSpec) dns01.Config {
	return dns01.Config{
		Providers:          providers,
		Resolvers:          []string{bind.Addr()},
		AuthoritativePort:  bind.Port(),
		PropagationTimeout: 30 * time.Second,
		PollInterval:       100 * time.Millisecond,
		QueryTimeout:       2 * time.Second,
	}
}

// logBuffer collects a Solver's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

// newSolver builds a Solver for cfg, failing the test on error.
func newSolver(t *testing.T, cfg dns01.Config, logs *logBuffer) *dns01.Solver {
	t.Helper()
	var l *slog.Logger
	if logs != nil {
		l = logs.logger()
	}
	s, err := dns01.NewSolver(cfg, l)
	if err != nil {
		t.Fatalf("NewSolver: %v", err)
	}
	return s
}

// order obtains a certificate for domains from a fresh Pebble that resolves
// through pebbleDNS, with s as the DNS-01 solver. It returns the leaf, or
// the error of the order.
func order(t *testing.T, ctx context.Context, pebbleDNS string, s *dns01.Solver, domains ...string) (*x509.Certificate, error) {
	t.Helper()
	acmeclient.SetLegoLogger(slog.New(slog.DiscardHandler))
	ca := testenv.StartCA(t, embedca.Options{DNSServer: pebbleDNS})
	c := testenv.Client(t, ctx, ca, acmeclient.Solvers{DNS01: s, DNSOptions: s.Options()})
	b, err := c.Obtain(ctx, acmeclient.ObtainRequest{Domains: domains})
	if err != nil {
		return nil, err
	}
	return b.Leaf, nil
}

// mustOrder is order that fails the test on error and checks the names.
func mustOrder(t *testing.T, pebbleDNS string, s *dns01.Solver, domains ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), orderTimeout)
	defer cancel()
	leaf, err := order(t, ctx, pebbleDNS, s, domains...)
	if err != nil {
		t.Fatalf("obtain %v: %v", domains, err)
	}
	got := slices.Sorted(slices.Values(leaf.DNSNames))
	want := slices.Sorted(slices.Values(domains))
	if !slices.Equal(got, want) {
		t.Errorf("certificate names: got %v, want %v", got, want)
	}
}

// noTXT fails the test when bind still serves TXT records at name (a real
// query: what a resolver would see).
func noTXT(t *testing.T, bind *bindtest.Server, names ...string) {
	t.Helper()
	for _, name := range names {
		got, err := bind.TXT(name)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 0 {
			t.Errorf("TXT at %s after the order: got %q, want none (not cleaned up)", name, got)
		}
	}
}

// httpreqToBIND starts an HTTP server speaking lego's httpreq protocol
// (POST /present and /cleanup with {"fqdn","value"}) that writes to zone on
// bind with RFC 2136 updates signed with the zone's key, and counts the
// calls per path.
func httpreqToBIND(t *testing.T, bind *bindtest.Server, zone string) (url string, calls func() map[string]int) {
	t.Helper()
	key := bind.Key(zone)
	var mu sync.Mutex
	count := map[string]int{}
	handle := func(w http.ResponseWriter, r *http.Request) {
		var msg struct{ FQDN, Value string }
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&msg); err != nil || msg.FQDN == "" {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		rr := &dns.TXT{Hdr: dns.RR_Header{Name: dns.Fqdn(msg.FQDN), Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: []string{msg.Value}}
		m := new(dns.Msg).SetUpdate(dns.Fqdn(zone))
		if strings.HasSuffix(r.URL.Path, "/present") {
			m.Insert([]dns.RR{rr})
		} else {
			m.Remove([]dns.RR{rr})
		}
		m.SetTsig(key.Name, key.Algorithm, 300, time.Now().Unix())
		c := &dns.Client{Timeout: 5 * time.Second, TsigSecret: map[string]string{key.Name: key.Secret}}
		in, _, err := c.Exchange(m, bind.Addr())
		if err != nil || in.Rcode != dns.RcodeSuccess {
			http.Error(w, "update failed", http.StatusBadGateway)
			return
		}
		mu.Lock()
		count[r.URL.Path]++
		mu.Unlock()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /present", handle)
	mux.HandleFunc("POST /cleanup", handle)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL, func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		out := map[string]int{}
		for k, v := range count {
			out[k] = v
		}
		return out
	}
}
