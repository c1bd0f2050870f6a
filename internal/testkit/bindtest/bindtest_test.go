package bindtest_test

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/zoku/zoku/internal/testkit/bindtest"
	"github.com/zoku/zoku/internal/testkit/need"
)

// update sends an RFC 2136 update adding (or, with remove, deleting) one
// TXT record in zone, signed with key when it is not nil.
func update(t *testing.T, s *bindtest.Server, zone string, key *bindtest.Key, name, value string, remove bool) int {
	t.Helper()
	rr := &dns.TXT{Hdr: dns.RR_Header{Name: dns.Fqdn(name), Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: []string{value}}
	m := new(dns.Msg).SetUpdate(dns.Fqdn(zone))
	if remove {
		m.Remove([]dns.RR{rr})
	} else {
		m.Insert([]dns.RR{rr})
	}
	c := &dns.Client{Timeout: 5 * time.Second}
	if key != nil {
		m.SetTsig(key.Name, key.Algorithm, 300, time.Now().Unix())
		c.TsigSecret = map[string]string{key.Name: key.Secret}
	}
	in, _, err := c.Exchange(m, s.Addr())
	if err != nil {
		t.Fatalf("update %s: %v", name, err)
	}
	return in.Rcode
}

func txt(t *testing.T, s *bindtest.Server, name string) []string {
	t.Helper()
	got, err := s.TXT(name)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestStartServesZones(t *testing.T) {
	s := bindtest.Start(t, bindtest.Zone{Name: "example.test", Records: []string{
		`www A 127.0.0.1`,
		`_acme-challenge.alias CNAME target.other.test.`,
	}}, bindtest.Zone{Name: "other.test", Records: []string{`target TXT "in-other"`}})

	for _, zone := range []string{"example.test", "other.test"} {
		in, err := s.Exchange(zone, dns.TypeSOA)
		if err != nil {
			t.Fatal(err)
		}
		if !in.Authoritative || len(in.Answer) != 1 {
			t.Errorf("SOA %s: got authoritative=%v answers=%d, want an authoritative SOA", zone, in.Authoritative, len(in.Answer))
		}
	}
	// A CNAME into the other zone is followed by the server itself.
	if got, want := txt(t, s, "_acme-challenge.alias.example.test"), []string{"in-other"}; !slices.Equal(got, want) {
		t.Errorf("TXT through CNAME: got %q, want %q", got, want)
	}
	if !strings.HasPrefix(s.Addr(), "127.0.0.1:") || s.Port() == 0 {
		t.Errorf("Addr %q / Port %d: want 127.0.0.1 and a port", s.Addr(), s.Port())
	}
}

func TestUpdatesNeedTheZoneKey(t *testing.T) {
	s := bindtest.Start(t)
	keyA, keyB := s.Key("example.test"), s.Key("other.test.")
	if keyA.Secret == keyB.Secret || keyA.Name == keyB.Name {
		t.Fatalf("zones share a key: %q and %q", keyA.Name, keyB.Name)
	}
	const name, value = "_acme-challenge.a.example.test", "v1"

	tests := []struct {
		name string
		key  *bindtest.Key
		want int
	}{
		{"unsigned", nil, dns.RcodeRefused},
		{"other zone's key", &keyB, dns.RcodeRefused},
		{"zone key", &keyA, dns.RcodeSuccess},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := update(t, s, "example.test", tt.key, name, value, false); got != tt.want {
				t.Errorf("rcode: got %s, want %s", dns.RcodeToString[got], dns.RcodeToString[tt.want])
			}
		})
	}
	if got := txt(t, s, name); !slices.Equal(got, []string{value}) {
		t.Fatalf("TXT after update: got %q, want [%s]", got, value)
	}
	if got := update(t, s, "example.test", &keyA, name, value, true); got != dns.RcodeSuccess {
		t.Fatalf("remove: rcode %s", dns.RcodeToString[got])
	}
	if got := txt(t, s, name); len(got) != 0 {
		t.Errorf("TXT after remove: got %q, want none", got)
	}
}

// TestKeyFileWorksWithNsupdate checks the key file format with BIND's own
// client, which is what the exec provider's scripts use.
func TestKeyFileWorksWithNsupdate(t *testing.T) {
	nsupdate := need.Binary(t, "nsupdate", "apt-get install -y bind9-dnsutils")
	s := bindtest.Start(t)
	key := s.Key("other.test")
	if st, err := os.Stat(key.File); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file %s: want mode 600 (got %v, %v)", key.File, st, err)
	}
	script := "server 127.0.0.1 " + strings.TrimPrefix(s.Addr(), "127.0.0.1:") + "\n" +
		"zone other.test\nupdate add n.other.test. 60 TXT \"by-nsupdate\"\nsend\n"
	cmd := exec.Command(nsupdate, "-k", key.File)
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nsupdate: %v: %s", err, out)
	}
	if got := txt(t, s, "n.other.test"); !slices.Equal(got, []string{"by-nsupdate"}) {
		t.Errorf("TXT: got %q, want [by-nsupdate]", got)
	}
}
