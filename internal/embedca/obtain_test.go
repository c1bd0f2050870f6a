package embedca_test

import (
	"errors"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/challenge/dns01"
	"github.com/go-acme/lego/v5/challenge/tlsalpn01"
	"github.com/go-acme/lego/v5/providers/dns/httpreq"
	"github.com/go-acme/lego/v5/registration"

	"github.com/zoku/zoku/internal/embedca"
	"github.com/zoku/zoku/internal/testkit/testenv"
)

func TestObtainHTTP01(t *testing.T) {
	t.Parallel()
	ca, client := httpCA(t, embedca.Options{})
	res := obtain(t, client, "", "http01.embedca.test")
	verifyChain(t, ca, res, "http01.embedca.test")
}

func TestObtainTLSALPN01(t *testing.T) {
	t.Parallel()
	port := testenv.FreePort(t)
	ca := testenv.StartCA(t, embedca.Options{TLSPort: port})
	client, u := newClient(t, ca)
	register(t, client, u)
	if err := client.Challenge.SetTLSALPN01Provider(tlsalpn01.NewProviderServer("127.0.0.1", strconv.Itoa(port))); err != nil {
		t.Fatalf("SetTLSALPN01Provider: %v", err)
	}
	res := obtain(t, client, "", "tlsalpn01.embedca.test")
	verifyChain(t, ca, res, "tlsalpn01.embedca.test")
}

// TestObtainDNS01Wildcard runs lego's real httpreq provider against
// challtestsrv for an apex plus wildcard order (two TXT values on one name).
// It sets lego's process-wide dns01 client; no other test in this package
// uses dns01, so it may run in parallel with them.
func TestObtainDNS01Wildcard(t *testing.T) {
	t.Parallel()
	dnsSrv := testenv.DNS(t)
	ca := testenv.StartCA(t, embedca.Options{DNSServer: dnsSrv.Addr()})

	prev := dns01.DefaultClient()
	dns01.SetDefaultClient(dns01.NewClient(&dns01.Options{
		RecursiveNameservers: []string{dnsSrv.Addr()},
		Timeout:              2 * time.Second,
	}))
	t.Cleanup(func() { dns01.SetDefaultClient(prev) })

	endpoint, err := url.Parse(testenv.HTTPReqEndpoint(t))
	if err != nil {
		t.Fatalf("parse endpoint: %v", err)
	}
	cfg := httpreq.NewDefaultConfig()
	cfg.Endpoint = endpoint
	cfg.PropagationTimeout = 30 * time.Second
	cfg.PollingInterval = 100 * time.Millisecond
	provider, err := httpreq.NewDNSProviderConfig(cfg)
	if err != nil {
		t.Fatalf("httpreq provider: %v", err)
	}

	client, u := newClient(t, ca)
	register(t, client, u)
	if err := client.Challenge.SetDNS01Provider(provider,
		dns01.DisableAuthoritativeNssPropagationRequirement()); err != nil {
		t.Fatalf("SetDNS01Provider: %v", err)
	}
	const apex = "dns01.embedca.test"
	res := obtain(t, client, "", apex, "*."+apex)
	verifyChain(t, ca, res, apex, "www."+apex)

	if got := dnsSrv.TXT("_acme-challenge." + apex + "."); len(got) != 0 {
		t.Errorf("TXT after cleanup = %q, want none", got)
	}
}

func TestEAB(t *testing.T) {
	t.Parallel()
	const kid, hmac = "kid-start", "c2VjcmV0LWZvci1lbWJlZGNhLXRlc3RzLTMyYnl0ZXMh"
	const lateKid, lateHMAC = "kid-late", "bGF0ZS1rZXktZm9yLWVtYmVkY2EtdGVzdHMtMzJieXQ"
	ca := testenv.StartCA(t, embedca.Options{RequireEAB: true, EABKeys: map[string]string{kid: hmac}})
	if err := ca.AddEABKey(lateKid, lateHMAC); err != nil {
		t.Fatalf("AddEABKey: %v", err)
	}

	t.Run("plain register refused", func(t *testing.T) {
		client, _ := newClient(t, ca)
		_, err := client.Registration.Register(t.Context(), registration.RegisterOptions{TermsOfServiceAgreed: true})
		var prob *acme.ProblemDetails
		if !errors.As(err, &prob) || prob.Type != acme.ExternalAccountRequiredErrorType {
			t.Fatalf("Register error = %v, want problem %s", err, acme.ExternalAccountRequiredErrorType)
		}
	})

	tests := []struct {
		name    string
		kid     string
		hmac    string
		wantErr bool
	}{
		{"key from Options", kid, hmac, false},
		{"key added later", lateKid, lateHMAC, false},
		{"padded key", lateKid, lateHMAC + "=", false},
		{"unknown kid", "kid-unknown", hmac, true},
		{"wrong key", kid, lateHMAC, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client, _ := newClient(t, ca)
			acct, err := client.Registration.RegisterWithExternalAccountBinding(t.Context(), registration.RegisterEABOptions{
				TermsOfServiceAgreed: true, Kid: tc.kid, HmacEncoded: tc.hmac,
			})
			if gotErr := err != nil; gotErr != tc.wantErr {
				t.Fatalf("RegisterWithExternalAccountBinding error = %v, want error %t", err, tc.wantErr)
			}
			if err == nil && acct.Status != acme.StatusValid {
				t.Errorf("account status = %q, want %q", acct.Status, acme.StatusValid)
			}
		})
	}
}

func TestValidityAndProfiles(t *testing.T) {
	t.Parallel()
	ca, client := httpCA(t, embedca.Options{
		Validity: 2 * time.Hour,
		Profiles: map[string]time.Duration{"shortlived": 6 * 24 * time.Hour},
	})
	meta := client.GetServerMetadata()
	if _, ok := meta.Profiles["shortlived"]; !ok {
		t.Errorf("directory profiles = %v, want shortlived", meta.Profiles)
	}
	tests := []struct {
		profile string
		want    time.Duration
	}{
		{embedca.DefaultProfile, 2*time.Hour - time.Second},
		{"shortlived", 6*24*time.Hour - time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.profile, func(t *testing.T) {
			domain := tc.profile + ".validity.embedca.test"
			leaf := verifyChain(t, ca, obtain(t, client, tc.profile, domain), domain)
			if got := leaf.NotAfter.Sub(leaf.NotBefore); got != tc.want {
				t.Errorf("NotAfter-NotBefore = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestSetRenewalInfo(t *testing.T) {
	t.Parallel()
	ca, client := httpCA(t, embedca.Options{})
	res := obtain(t, client, "", "ari.embedca.test")
	leaf := verifyChain(t, ca, res, "ari.embedca.test")

	start := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	end := start.Add(30 * time.Minute)
	if err := ca.SetRenewalInfo(res.Certificate, start, end); err != nil {
		t.Fatalf("SetRenewalInfo: %v", err)
	}
	info, err := client.Certificate.GetRenewalInfo(t.Context(), leaf)
	if err != nil {
		t.Fatalf("GetRenewalInfo: %v", err)
	}
	if got := info.SuggestedWindow; !got.Start.Equal(start) || !got.End.Equal(end) {
		t.Errorf("window = %s..%s, want %s..%s", got.Start, got.End, start, end)
	}

	errTests := []struct {
		name       string
		pem        []byte
		start, end time.Time
	}{
		{"end before start", res.Certificate, end, start},
		{"no certificate", []byte("not pem"), start, end},
		{"foreign certificate", testenv.StartCA(t, embedca.Options{}).RootsPEM(), start, end},
	}
	for _, tc := range errTests {
		t.Run(tc.name, func(t *testing.T) {
			if err := ca.SetRenewalInfo(tc.pem, tc.start, tc.end); err == nil {
				t.Errorf("SetRenewalInfo = nil, want error")
			}
		})
	}
}
