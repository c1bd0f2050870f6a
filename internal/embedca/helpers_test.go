package embedca_test

import (
	"crypto"
	"crypto/x509"
	"log/slog"
	"os"
	"strconv"
	"testing"

	"github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/challenge/http01"
	"github.com/go-acme/lego/v5/lego"
	legolog "github.com/go-acme/lego/v5/log"
	"github.com/go-acme/lego/v5/registration"

	"github.com/zoku/zoku/internal/embedca"
	"github.com/zoku/zoku/internal/testkit/testenv"
)

func TestMain(m *testing.M) {
	// lego logs every step at info level to stdout; tests check results.
	legolog.SetDefault(slog.New(slog.DiscardHandler))
	os.Exit(m.Run())
}

// testUser is a lego registration.User with an in-memory key.
type testUser struct {
	key crypto.Signer
	reg *acme.ExtendedAccount
}

func (u *testUser) GetEmail() string                       { return "" }
func (u *testUser) GetRegistration() *acme.ExtendedAccount { return u.reg }
func (u *testUser) GetPrivateKey() crypto.Signer           { return u.key }

// newClient returns a lego client for ca with a fresh, unregistered account.
func newClient(t *testing.T, ca *embedca.CA) (*lego.Client, *testUser) {
	t.Helper()
	key, err := certcrypto.GeneratePrivateKey(certcrypto.EC256)
	if err != nil {
		t.Fatalf("generate account key: %v", err)
	}
	u := &testUser{key: key}
	cfg := lego.NewConfig(u)
	cfg.CADirURL = ca.DirectoryURL()
	cfg.HTTPClient = ca.HTTPClient()
	client, err := lego.NewClient(cfg)
	if err != nil {
		t.Fatalf("lego.NewClient: %v", err)
	}
	return client, u
}

// register registers u's account with the plain (non-EAB) flow.
func register(t *testing.T, client *lego.Client, u *testUser) {
	t.Helper()
	reg, err := client.Registration.Register(t.Context(), registration.RegisterOptions{TermsOfServiceAgreed: true})
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	u.reg = reg
}

// httpCA starts a CA whose HTTP-01 port is served by lego's own provider
// server, and returns it with a registered client.
func httpCA(t *testing.T, opts embedca.Options) (*embedca.CA, *lego.Client) {
	t.Helper()
	port := testenv.FreePort(t)
	opts.HTTPPort = port
	ca := testenv.StartCA(t, opts)
	client, u := newClient(t, ca)
	register(t, client, u)
	if err := client.Challenge.SetHTTP01Provider(http01.NewProviderServer("127.0.0.1", strconv.Itoa(port))); err != nil {
		t.Fatalf("SetHTTP01Provider: %v", err)
	}
	return ca, client
}

// obtain gets a certificate for domains with the given profile.
func obtain(t *testing.T, client *lego.Client, profile string, domains ...string) *certificate.Resource {
	t.Helper()
	res, err := client.Certificate.Obtain(t.Context(), certificate.ObtainRequest{
		Domains: domains,
		KeyType: certcrypto.EC256,
		Bundle:  true,
		Profile: profile,
	})
	if err != nil {
		t.Fatalf("Obtain(%v): %v", domains, err)
	}
	return res
}

// verifyChain checks that res's bundle chains to ca's roots for every domain.
func verifyChain(t *testing.T, ca *embedca.CA, res *certificate.Resource, domains ...string) *x509.Certificate {
	t.Helper()
	certs, err := certcrypto.ParsePEMBundle(res.Certificate)
	if err != nil {
		t.Fatalf("parse bundle: %v", err)
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	for _, d := range domains {
		if _, err := certs[0].Verify(x509.VerifyOptions{
			DNSName:       d,
			Roots:         ca.RootPool(),
			Intermediates: inter,
		}); err != nil {
			t.Errorf("Verify(%s) against Roots(): %v", d, err)
		}
	}
	return certs[0]
}

func mustParse(t *testing.T, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parse certificate: %v", err)
	}
	return c
}
