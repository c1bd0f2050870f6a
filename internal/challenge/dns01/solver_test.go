package dns01

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/zoku/zoku/internal/testkit/bindtest"
)

// execSpec is a provider that needs no service to be built.
func execSpec(zones ...string) ProviderSpec {
	return ProviderSpec{Code: "exec", Zones: zones, Env: map[string]string{"EXEC_PATH": "/bin/true"}}
}

func TestNewSolverErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no providers", Config{}, "dns-01: no DNS provider configured"},
		{"unknown code", Config{Providers: []ProviderSpec{{Code: "nosuch"}}}, `dns-01: unknown provider "nosuch"`},
		{"two defaults", Config{Providers: []ProviderSpec{execSpec(), {Code: "httpreq", Env: map[string]string{"HTTPREQ_ENDPOINT": "http://127.0.0.1:1"}}}},
			`dns-01: providers "exec" and "httpreq" both have no zones; give all but one default provider its zones`},
		{"zone twice", Config{Providers: []ProviderSpec{execSpec("example.test"), execSpec("Example.Test.")}},
			`dns-01: zone example.test is given to both "exec" and "exec"; give each zone to one provider`},
		{"wildcard zone", Config{Providers: []ProviderSpec{execSpec("*.example.test")}},
			`dns-01: zone "*.example.test": want a domain name such as example.com`},
		{"bad resolver", Config{Providers: []ProviderSpec{execSpec()}, Resolvers: []string{"127.0.0.1"}},
			`dns-01: resolver "127.0.0.1": want host:port, e.g. 127.0.0.1:53`},
		{"missing credentials in spec", Config{Providers: []ProviderSpec{{Code: "exec", Env: map[string]string{}}}},
			`dns-01: provider "exec" is missing credentials: give the provider EXEC_PATH (or EXEC_PATH_FILE naming a file)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewSolver(tt.cfg, nil)
			if err == nil || s != nil {
				t.Fatalf("NewSolver: got (%v, %v), want error %q", s, err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error:\n got %s\nwant %s...", err, tt.want)
			}
		})
	}
}

func TestPickLongestSuffix(t *testing.T) {
	cfg := Config{Providers: []ProviderSpec{
		execSpec("example.test"),               // 0
		execSpec("sub.example.test", "x.test"), // 1
		execSpec(),                             // 2: default
	}, Resolvers: []string{"127.0.0.1:53"}}
	s, err := NewSolver(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		fqdn string
		want int
	}{
		{"_acme-challenge.example.test.", 0},
		{"_acme-challenge.a.example.test.", 0},
		{"_acme-challenge.sub.example.test.", 1},
		{"_acme-challenge.deep.sub.example.test", 1},
		{"_acme-challenge.SUB.Example.Test.", 1},
		{"_acme-challenge.notsub.example.test.", 0},
		{"_acme-challenge.x.test.", 1},
		{"_acme-challenge.ax.test.", 2}, // a suffix match must end at a label
		{"target.elsewhere.test.", 2},
	}
	for _, tt := range tests {
		t.Run(tt.fqdn, func(t *testing.T) {
			got, err := s.pick(tt.fqdn)
			if err != nil || got != tt.want {
				t.Errorf("pick(%q): got (%d, %v), want %d", tt.fqdn, got, err, tt.want)
			}
		})
	}

	noDefault, err := NewSolver(Config{Providers: []ProviderSpec{execSpec("example.test")}, Resolvers: []string{"127.0.0.1:53"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = noDefault.pick("_acme-challenge.other.test.")
	want := "dns-01: no DNS provider serves _acme-challenge.other.test; add its zone to a provider's zones, or configure one provider without zones"
	if err == nil || err.Error() != want {
		t.Errorf("pick outside every zone: got %v, want %q", err, want)
	}
}

// A spec's Env replaces the process environment's values of the provider's
// variables while it is built, and the environment is restored afterwards.
func TestSpecEnvIsolation(t *testing.T) {
	t.Setenv("LEGO_DISABLE_CNAME_SUPPORT", "true") // no DNS look-ups from this test
	t.Setenv("EXEC_MODE", "RAW")
	t.Setenv("EXEC_PATH_FILE", filepath.Join(t.TempDir(), "absent"))
	script := filepath.Join(t.TempDir(), "record.sh")
	record := filepath.Join(t.TempDir(), "calls")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nprintf '%s\\n' \"$*\" >> \"$ZOKU_EXEC_RECORD\"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ZOKU_EXEC_RECORD", record)

	s, err := NewSolver(Config{
		Providers:     []ProviderSpec{{Code: "exec", Env: map[string]string{"EXEC_PATH": script}}},
		DisableChecks: true,
	}, nil)
	if err != nil {
		t.Fatalf("NewSolver: %v", err)
	}
	if got := os.Getenv("EXEC_MODE"); got != "RAW" {
		t.Errorf("EXEC_MODE after NewSolver: got %q, want RAW restored", got)
	}
	if _, set := os.LookupEnv("EXEC_PATH"); set {
		t.Errorf("EXEC_PATH after NewSolver: set, want it unset again")
	}
	ctx := context.Background()
	if err := s.Present(ctx, "iso.example.test", "tok", "tok.thumb"); err != nil {
		t.Fatalf("Present: %v", err)
	}
	if err := s.CleanUp(ctx, "iso.example.test", "tok", "tok.thumb"); err != nil {
		t.Fatalf("CleanUp: %v", err)
	}
	if err := s.CleanUp(ctx, "never.example.test", "tok", "tok.thumb"); err != nil {
		t.Fatalf("CleanUp of a record never presented: %v, want nil", err)
	}
	data, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	// Default mode, not the process's RAW: <action> <fqdn> <value>.
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "present _acme-challenge.iso.example.test. ") ||
		!strings.HasPrefix(lines[1], "cleanup _acme-challenge.iso.example.test. ") {
		t.Errorf("script calls: got %q, want present and cleanup in default mode", lines)
	}
}

func TestTimeoutDefaults(t *testing.T) {
	t.Setenv("EXEC_PROPAGATION_TIMEOUT", "")
	tests := []struct {
		name                  string
		cfg                   Config
		wantTimeout, wantPoll time.Duration
	}{
		{"from config", Config{PropagationTimeout: 10 * time.Second, PollInterval: time.Second, QueryTimeout: time.Second}, 13 * time.Second, time.Second},
		{"from the provider", Config{Providers: []ProviderSpec{{Code: "exec", Env: map[string]string{"EXEC_PATH": "/bin/true", "EXEC_PROPAGATION_TIMEOUT": "90"}}}},
			90*time.Second + 2*DefaultPollInterval + DefaultQueryTimeout, DefaultPollInterval},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.cfg.Providers) == 0 {
				tt.cfg.Providers = []ProviderSpec{execSpec()}
			}
			tt.cfg.Resolvers = []string{"127.0.0.1:53"}
			s, err := NewSolver(tt.cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			timeout, poll := s.Timeout()
			if timeout != tt.wantTimeout || poll != tt.wantPoll {
				t.Errorf("Timeout: got (%s, %s), want (%s, %s)", timeout, poll, tt.wantTimeout, tt.wantPoll)
			}
		})
	}
}

// TestPropagationCheck runs the check against a real BIND: the record is
// written with an RFC 2136 update, then each configuration either sees it
// or names the server that did not.
func TestPropagationCheck(t *testing.T) {
	bind := bindtest.Start(t)
	const fqdn, value = "_acme-challenge.check.example.test.", "the-value"
	key := bind.Key("example.test")
	rr := &dns.TXT{Hdr: dns.RR_Header{Name: fqdn, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: []string{value}}
	m := new(dns.Msg).SetUpdate("example.test.")
	m.Insert([]dns.RR{rr})
	m.SetTsig(key.Name, key.Algorithm, 300, time.Now().Unix())
	c := &dns.Client{Timeout: 5 * time.Second, TsigSecret: map[string]string{key.Name: key.Secret}}
	if in, _, err := c.Exchange(m, bind.Addr()); err != nil || in.Rcode != dns.RcodeSuccess {
		t.Fatalf("write the record: %v %v", in, err)
	}
	closed := closedPort(t)
	port := fmt.Sprint(bind.Port())

	tests := []struct {
		name    string
		cfg     Config
		value   string
		wantErr string // "" for success
	}{
		{"visible everywhere", Config{Resolvers: []string{bind.Addr()}, AuthoritativePort: bind.Port()}, value, ""},
		{"wrong value", Config{Resolvers: []string{bind.Addr()}, AuthoritativePort: bind.Port()}, "other",
			"dns-01: _acme-challenge.check.example.test: TXT not visible at 127.0.0.1:" + port + " after 300ms"},
		{"authoritative server down", Config{Resolvers: []string{bind.Addr()}, AuthoritativePort: closed}, value,
			fmt.Sprintf("dns-01: _acme-challenge.check.example.test: TXT not visible at 127.0.0.1:%d after 300ms; last error: ", closed)},
		{"authoritative check skipped", Config{Resolvers: []string{bind.Addr()}, AuthoritativePort: closed, DisableAuthoritative: true}, value, ""},
		{"one resolver is enough", Config{Resolvers: []string{"127.0.0.1:" + fmt.Sprint(closed), bind.Addr()}, DisableAuthoritative: true}, value, ""},
		{"all resolvers required", Config{Resolvers: []string{bind.Addr(), "127.0.0.1:" + fmt.Sprint(closed)}, DisableAuthoritative: true, RequireAllResolvers: true}, value,
			fmt.Sprintf("dns-01: _acme-challenge.check.example.test: TXT not visible at 127.0.0.1:%d after 300ms; last error: ", closed)},
		{"no resolver has it", Config{Resolvers: []string{bind.Addr(), bind.Addr()}, DisableAuthoritative: true}, "other",
			"dns-01: _acme-challenge.check.example.test: TXT not visible at any of 127.0.0.1:" + port + ", 127.0.0.1:" + port + " after 300ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Providers = []ProviderSpec{execSpec()}
			tt.cfg.PropagationTimeout = 300 * time.Millisecond
			tt.cfg.PollInterval = 50 * time.Millisecond
			tt.cfg.QueryTimeout = 200 * time.Millisecond
			s, err := NewSolver(tt.cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			stop, err := s.preCheck(context.Background(), "check.example.test", fqdn, tt.value, nil)
			if !stop {
				t.Errorf("preCheck: asked lego to poll again, want it to stop")
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("preCheck: got %v, want success", err)
			case tt.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.wantErr)):
				t.Errorf("preCheck:\n got %v\nwant %s", err, tt.wantErr)
			}
		})
	}

	t.Run("cancelled", func(t *testing.T) {
		s, err := NewSolver(Config{Providers: []ProviderSpec{execSpec()}, Resolvers: []string{bind.Addr()}, DisableAuthoritative: true, PollInterval: 50 * time.Millisecond}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err = s.preCheck(ctx, "check.example.test", fqdn, "never", nil)
		want := "dns-01: _acme-challenge.check.example.test: propagation check stopped: context canceled"
		if err == nil || err.Error() != want {
			t.Errorf("preCheck: got %v, want %q", err, want)
		}
	})
}

// closedPort returns a loopback port nothing listens on (UDP: queries to
// it fail at once or time out).
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := (&net.ListenConfig{}).ListenPacket(context.Background(), "udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.LocalAddr().(*net.UDPAddr).Port
	_ = ln.Close()
	return port
}
