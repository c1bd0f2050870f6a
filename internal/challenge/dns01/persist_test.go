package dns01

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/zoku/zoku/internal/testkit/bindtest"
)

func TestPersistRecord(t *testing.T) {
	until := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	long := "https://ca.example/acme/acct/" + strings.Repeat("9", 300)
	tests := []struct {
		name, domain, account string
		wildcard              bool
		until                 time.Time
		want                  string
	}{
		{"apex", "example.test", "https://ca.example/acct/1", false, time.Time{},
			`_validation-persist.example.test. 3600 IN TXT "ca.example; accounturi=https://ca.example/acct/1"`},
		{"wildcard by flag", "Example.Test.", "https://ca.example/acct/1", true, time.Time{},
			`_validation-persist.example.test. 3600 IN TXT "ca.example; accounturi=https://ca.example/acct/1; policy=wildcard"`},
		{"wildcard by name, until", "*.example.test", "https://ca.example/acct/1", false, until,
			`_validation-persist.example.test. 3600 IN TXT "ca.example; accounturi=https://ca.example/acct/1; policy=wildcard; persistUntil=1893553445"`},
		{"long value split", "example.test", long, false, time.Time{},
			`_validation-persist.example.test. 3600 IN TXT "ca.example; accounturi=` + long[:255-len("ca.example; accounturi=")] + `" "` + long[255-len("ca.example; accounturi="):] + `"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PersistRecord(tt.domain, "CA.example", tt.account, tt.wildcard, tt.until); got != tt.want {
				t.Errorf("PersistRecord:\n got %s\nwant %s", got, tt.want)
			}
			// The line must parse as a zone-file record whose value is PersistValue.
			rr, err := dns.NewRR(tt.want)
			if err != nil {
				t.Fatalf("not a zone-file record: %v", err)
			}
			value := strings.Join(rr.(*dns.TXT).Txt, "")
			if want := PersistValue("ca.example", tt.account, tt.wildcard || strings.HasPrefix(tt.domain, "*."), tt.until); value != want {
				t.Errorf("record value: got %q, want %q", value, want)
			}
		})
	}
}

func TestPersistRecords(t *testing.T) {
	got := PersistRecords([]string{"www.example.test", "*.example.test", "example.test"}, "ca.example", "https://ca.example/acct/1", time.Time{})
	want := []string{
		`_validation-persist.example.test. 3600 IN TXT "ca.example; accounturi=https://ca.example/acct/1; policy=wildcard"`,
		`_validation-persist.www.example.test. 3600 IN TXT "ca.example; accounturi=https://ca.example/acct/1"`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("PersistRecords:\n got %q\nwant %q", got, want)
	}
}

func TestPersistIssuer(t *testing.T) {
	got, err := PersistIssuer([]string{"pebble.test", "Letsencrypt.org."})
	if err != nil || got != "letsencrypt.org" {
		t.Errorf("PersistIssuer: got (%q, %v), want letsencrypt.org", got, err)
	}
	if _, err := PersistIssuer(nil); err == nil || !strings.HasPrefix(err.Error(), "dns-01: the CA advertises no issuer domain name") {
		t.Errorf("PersistIssuer(nil): got %v, want the no-issuer error", err)
	}
}

func TestPersistMatches(t *testing.T) {
	until := time.Unix(1893553445, 0)
	const acct = "https://ca.example/acct/1"
	tests := []struct {
		name, value string
		wildcard    bool
		until       time.Time
		want        bool
	}{
		{"exact", "ca.example; accounturi=" + acct, false, time.Time{}, true},
		{"spaces and case", "  CA.Example ;AccountURI=" + acct + " ", false, time.Time{}, true},
		{"other issuer", "other.example; accounturi=" + acct, false, time.Time{}, false},
		{"other account", "ca.example; accounturi=https://ca.example/acct/2", false, time.Time{}, false},
		{"wildcard needs policy", "ca.example; accounturi=" + acct, true, time.Time{}, false},
		{"wildcard policy", "ca.example; accounturi=" + acct + "; policy=wildcard", true, time.Time{}, true},
		{"wildcard policy covers apex", "ca.example; accounturi=" + acct + "; policy=wildcard", false, time.Time{}, true},
		{"until must match", "ca.example; accounturi=" + acct + "; persistUntil=1893553445", false, time.Time{}, false},
		{"until matches", "ca.example; accounturi=" + acct + "; persistUntil=1893553445", false, until, true},
		{"malformed", "ca.example; accounturi", false, time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := persistMatches(tt.value, "ca.example", acct, tt.wildcard, tt.until); got != tt.want {
				t.Errorf("persistMatches(%q): got %v, want %v", tt.value, got, tt.want)
			}
		})
	}
}

func TestHasPersistRecord(t *testing.T) {
	const acct = "https://ca.example/acct/1"
	bind := bindtest.Start(t, bindtest.Zone{Name: "example.test", Records: []string{
		PersistRecord("wild.example.test", "ca.example", acct, true, time.Time{}),
		PersistRecord("plain.example.test", "ca.example", acct, false, time.Time{}),
	}})
	tests := []struct {
		domain string
		want   bool
	}{
		{"wild.example.test", true},
		{"*.wild.example.test", true},
		{"plain.example.test", true},
		{"*.plain.example.test", false},
		{"none.example.test", false},
	}
	for _, tt := range tests {
		t.Run(tt.domain, func(t *testing.T) {
			got, err := HasPersistRecord(context.Background(), []string{bind.Addr()}, tt.domain, "ca.example", acct, time.Time{})
			if err != nil || got != tt.want {
				t.Errorf("HasPersistRecord: got (%v, %v), want %v", got, err, tt.want)
			}
		})
	}
}
