package dns01_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"log/slog"
	"testing"
	"time"

	"github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/challenge/dnspersist01"
	"github.com/go-acme/lego/v5/lego"
	"github.com/go-acme/lego/v5/registration"
	"github.com/miekg/dns"

	"github.com/zoku/zoku/internal/acmeclient"
	"github.com/zoku/zoku/internal/challenge/dns01"
	"github.com/zoku/zoku/internal/embedca"
	"github.com/zoku/zoku/internal/testkit/bindtest"
	"github.com/zoku/zoku/internal/testkit/testenv"
)

// persistUser is the smallest lego account.
type persistUser struct {
	key crypto.Signer
	reg *acme.ExtendedAccount
}

func (u *persistUser) GetEmail() string                       { return "" }
func (u *persistUser) GetRegistration() *acme.ExtendedAccount { return u.reg }
func (u *persistUser) GetPrivateKey() crypto.Signer           { return u.key }

// TestDNSPersist01 publishes the record PersistRecords prints once, then
// obtains twice (the second time standing for a renewal) with no DNS
// provider and no DNS credentials at all: lego's dns-persist-01 solver
// finds the record and Pebble validates it through BIND. zoku's engine
// does not offer dns-persist-01 yet, so the test drives lego directly.
func TestDNSPersist01(t *testing.T) {
	bind := bindtest.Start(t)
	useLegoResolver(t, bind.Addr())
	prev := dnspersist01.DefaultClient()
	dnspersist01.SetDefaultClient(dnspersist01.NewClient(&dnspersist01.Options{RecursiveNameservers: []string{bind.Addr()}, Timeout: 2 * time.Second}))
	t.Cleanup(func() { dnspersist01.SetDefaultClient(prev) })

	// lego's built-in dns-persist-01 provider reads these when the solver
	// is set: never prompt on the terminal, and poll without a pause.
	t.Setenv("DNSPERSIST_MANUAL_MODE", "wait")
	t.Setenv("DNSPERSIST_MANUAL_WAIT", "0")
	t.Setenv("DNSPERSIST_MANUAL_POLLING_INTERVAL", "0")
	acmeclient.SetLegoLogger(slog.New(slog.DiscardHandler))

	ca := testenv.StartCA(t, embedca.Options{DNSServer: bind.Addr()})
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	user := &persistUser{key: key}
	cfg := lego.NewConfig(user)
	cfg.CADirURL = ca.DirectoryURL()
	cfg.HTTPClient = ca.HTTPClient()
	client, err := lego.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := dns01.PersistIssuer(client.GetServerMetadata().CaaIdentities)
	if err != nil {
		t.Skipf("%v: embedca passes no caaIdentities to Pebble, which then offers dns-persist-01 without issuer-domain-names", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), orderTimeout)
	defer cancel()
	reg, err := client.Registration.Register(ctx, registration.RegisterOptions{TermsOfServiceAgreed: true})
	if err != nil {
		t.Fatal(err)
	}
	user.reg = reg
	if client, err = lego.NewClient(cfg); err != nil { // sign with the account URL
		t.Fatal(err)
	}

	domains := []string{"persist.example.test", "*.persist.example.test"}
	if ok, err := dns01.HasPersistRecord(ctx, []string{bind.Addr()}, domains[1], issuer, reg.Location, time.Time{}); err != nil || ok {
		t.Fatalf("HasPersistRecord before publishing: got (%v, %v), want false", ok, err)
	}
	records := dns01.PersistRecords(domains, issuer, reg.Location, time.Time{})
	if len(records) != 1 {
		t.Fatalf("PersistRecords: got %q, want one record for an apex and its wildcard", records)
	}
	publish(t, bind, "example.test", records[0])
	for _, d := range domains {
		if ok, err := dns01.HasPersistRecord(ctx, []string{bind.Addr()}, d, issuer, reg.Location, time.Time{}); err != nil || !ok {
			t.Fatalf("HasPersistRecord(%s) after publishing: got (%v, %v), want true", d, ok, err)
		}
	}

	opts, err := dns01.PersistOptions(dns01.Config{
		Resolvers: []string{bind.Addr()}, AuthoritativePort: bind.Port(),
		PropagationTimeout: 10 * time.Second, PollInterval: 100 * time.Millisecond,
	}, issuer, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Challenge.SetDNSPersist01(opts...); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		res, err := client.Certificate.Obtain(ctx, certificate.ObtainRequest{Domains: domains, KeyType: certcrypto.EC256, Bundle: true})
		if err != nil {
			t.Fatalf("obtain %d: %v", i+1, err)
		}
		if len(res.Domains) != 2 {
			t.Errorf("obtain %d: domains %v", i+1, res.Domains)
		}
	}
}

// publish adds a zone-file record to zone on bind with the zone's key.
func publish(t *testing.T, bind *bindtest.Server, zone, record string) {
	t.Helper()
	rr, err := dns.NewRR(record)
	if err != nil {
		t.Fatal(err)
	}
	key := bind.Key(zone)
	m := new(dns.Msg).SetUpdate(dns.Fqdn(zone))
	m.Insert([]dns.RR{rr})
	m.SetTsig(key.Name, key.Algorithm, 300, time.Now().Unix())
	c := &dns.Client{Timeout: 5 * time.Second, TsigSecret: map[string]string{key.Name: key.Secret}}
	if in, _, err := c.Exchange(m, bind.Addr()); err != nil || in.Rcode != dns.RcodeSuccess {
		t.Fatalf("publish %s: %v %v", record, in, err)
	}
}
