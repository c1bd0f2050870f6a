package testenv_test

import (
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/zoku/zoku/internal/embedca"
	"github.com/zoku/zoku/internal/testkit/testenv"
)

func TestDNSShared(t *testing.T) {
	t.Parallel()
	if a, b := testenv.DNS(t), testenv.DNS(t); a != b {
		t.Errorf("DNS returned two servers (%s, %s), want one", a.Addr(), b.Addr())
	}
}

// queryTXT asks addr for name's TXT values over network.
func queryTXT(t *testing.T, addr, network, name string) []string {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeTXT)
	c := &dns.Client{Net: network, Timeout: 5 * time.Second}
	in, _, err := c.ExchangeContext(t.Context(), m, addr)
	if err != nil {
		t.Fatalf("TXT %s over %s: %v", name, network, err)
	}
	var got []string
	for _, rr := range in.Answer {
		if txt, ok := rr.(*dns.TXT); ok {
			got = append(got, strings.Join(txt.Txt, ""))
		}
	}
	slices.Sort(got)
	return got
}

func TestDNSTXT(t *testing.T) {
	t.Parallel()
	d := testenv.DNS(t)
	const name = "_acme-challenge.txt.testenv.test."
	t.Cleanup(func() { d.ClearTXT(name) })

	steps := []struct {
		name string
		do   func()
		want []string
	}{
		{"set one", func() { d.SetTXT(name, "a") }, []string{"a"}},
		{"set second", func() { d.SetTXT(name, "b") }, []string{"a", "b"}},
		{"set duplicate", func() { d.SetTXT(name, "b") }, []string{"a", "b"}},
		{"remove one", func() { d.RemoveTXT(name, "a") }, []string{"b"}},
		{"remove absent", func() { d.RemoveTXT(name, "zzz") }, []string{"b"}},
		{"clear", func() { d.SetTXT(name, "c"); d.ClearTXT(name) }, nil},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			s.do()
			got := slices.Sorted(slices.Values(d.TXT(name)))
			if !slices.Equal(got, s.want) {
				t.Errorf("TXT() = %q, want %q", got, s.want)
			}
			for _, network := range []string{"udp", "tcp"} {
				if got := queryTXT(t, d.Addr(), network, name); !slices.Equal(got, s.want) {
					t.Errorf("%s query = %q, want %q", network, got, s.want)
				}
			}
		})
	}
}

func TestDNSAddresses(t *testing.T) {
	t.Parallel()
	d := testenv.DNS(t)
	tests := []struct {
		qtype uint16
		want  int
	}{
		{dns.TypeA, 1},
		{dns.TypeAAAA, 0},
	}
	for _, tc := range tests {
		t.Run(dns.TypeToString[tc.qtype], func(t *testing.T) {
			m := new(dns.Msg)
			m.SetQuestion("host.addr.testenv.test.", tc.qtype)
			in, _, err := (&dns.Client{Net: "tcp", Timeout: 5 * time.Second}).ExchangeContext(t.Context(), m, d.Addr())
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			if got := len(in.Answer); got != tc.want {
				t.Fatalf("answers = %d, want %d", got, tc.want)
			}
			if a, ok := firstA(in); ok && a != "127.0.0.1" {
				t.Errorf("A = %s, want 127.0.0.1", a)
			}
		})
	}
}

func firstA(m *dns.Msg) (string, bool) {
	for _, rr := range m.Answer {
		if a, ok := rr.(*dns.A); ok {
			return a.A.String(), true
		}
	}
	return "", false
}

func TestHTTPReqEndpoint(t *testing.T) {
	t.Parallel()
	d := testenv.DNS(t)
	url := testenv.HTTPReqEndpoint(t)
	const fqdn = "_acme-challenge.httpreq.testenv.test."
	t.Cleanup(func() { d.ClearTXT(fqdn) })

	steps := []struct {
		name       string
		method     string
		path, body string
		wantStatus int
		wantTXT    []string
	}{
		{"present apex", http.MethodPost, "/present", `{"fqdn":"` + fqdn + `","value":"apex"}`, http.StatusOK, []string{"apex"}},
		{"present wildcard", http.MethodPost, "/present", `{"fqdn":"` + fqdn + `","value":"wild"}`, http.StatusOK, []string{"apex", "wild"}},
		{"cleanup apex keeps wildcard", http.MethodPost, "/cleanup", `{"fqdn":"` + fqdn + `","value":"apex"}`, http.StatusOK, []string{"wild"}},
		{"malformed body", http.MethodPost, "/present", `{"fqdn":`, http.StatusBadRequest, []string{"wild"}},
		{"RAW mode body", http.MethodPost, "/present", `{"domain":"x","token":"t","keyAuth":"k"}`, http.StatusBadRequest, []string{"wild"}},
		{"GET refused", http.MethodGet, "/present", "", http.StatusMethodNotAllowed, []string{"wild"}},
		{"cleanup wildcard", http.MethodPost, "/cleanup", `{"fqdn":"` + fqdn + `","value":"wild"}`, http.StatusOK, nil},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), s.method, url+s.path, strings.NewReader(s.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", s.method, s.path, err)
			}
			resp.Body.Close()
			if resp.StatusCode != s.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, s.wantStatus)
			}
			if got := queryTXT(t, d.Addr(), "udp", fqdn); !slices.Equal(got, s.wantTXT) {
				t.Errorf("TXT = %q, want %q", got, s.wantTXT)
			}
		})
	}
}

func TestFreePort(t *testing.T) {
	t.Parallel()
	port := testenv.FreePort(t)
	if port <= 0 || port > 65535 {
		t.Fatalf("FreePort = %d, want 1-65535", port)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("listen on FreePort %d: %v", port, err)
	}
	_ = ln.Close()
}

func TestStartCA(t *testing.T) {
	t.Parallel()
	ca := testenv.StartCA(t, embedca.Options{})
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, ca.DirectoryURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("User-Agent", "zoku-test")
	resp, err := ca.HTTPClient().Do(req)
	if err != nil {
		t.Fatalf("GET directory: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("directory status = %d, want 200", resp.StatusCode)
	}
}

// TestCAStacks checks what a failed test logs about its CA: the goroutines
// Pebble runs (its VA's task loop lives as long as the process), each
// stack once with its count.
func TestCAStacks(t *testing.T) {
	testenv.StartCA(t, embedca.Options{})
	s := testenv.CAStacks()
	if !strings.Contains(s, "letsencrypt/pebble") || !strings.Contains(s, " like goroutine ") {
		t.Fatalf("CA stacks name no Pebble goroutine:\n%s", s)
	}
}
