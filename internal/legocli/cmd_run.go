package legocli

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-acme/lego/v5/certcrypto"
	"golang.org/x/net/idna"

	"github.com/zoku/zoku/internal/acmeclient"
	"github.com/zoku/zoku/internal/certmgr"
	"github.com/zoku/zoku/internal/storage"
)

// randomPauseMax bounds lego's random pause before a scheduled renewal
// (certbot's jitter), so that cron lines written for the same minute do
// not all reach the CA at once.
const randomPauseMax = 8 * time.Minute

// runRun is `lego run`: obtain the certificate when none is stored under
// its name, else renew it when it is due (ARI, else --renew-days or the
// lifetime rule), when its names or profile changed, or with
// --renew-force. Running it daily from cron orders once per lifetime.
func runRun(ctx context.Context, inv *invocation) error {
	started := time.Now().UTC()
	f := inv.flags
	if err := inv.refuseUnavailable(); err != nil {
		return err
	}
	domains, csrFile, certID := f.List("domains"), f.String("csr"), f.String("cert.name")
	switch {
	case len(domains) > 0 && csrFile != "":
		return usagef("give either --domains/-d or --csr, not both")
	case certID == "" && len(domains) == 0 && csrFile == "":
		return usagef("give --cert.name and/or --domains/-d (or --csr with a certificate request)")
	case f.Bool("force-cert-domains") && csrFile != "":
		return usagef("--force-cert-domains works with --domains/-d only, not --csr")
	}
	kt, err := certcrypto.ToKeyType(f.String("key-type"))
	if err != nil {
		return usagef("--key-type %q is not one of %s", f.String("key-type"), keyTypes)
	}
	var csr *x509.CertificateRequest
	if csrFile != "" {
		if csr, err = readCSR(csrFile); err != nil {
			return err
		}
	}
	var priv crypto.Signer
	if f.String("private-key") != "" {
		if priv, err = readKey(f.String("private-key")); err != nil {
			return fmt.Errorf("--private-key: %w", err)
		}
		if kt, err = certcrypto.GetPrivateKeyType(priv); err != nil {
			return fmt.Errorf("--private-key: %w", err)
		}
	}
	if certID == "" {
		if csr != nil {
			if certID, err = certcrypto.GetCSRMainDomain(csr); err != nil {
				return fmt.Errorf("--csr %s: %w", csrFile, err)
			}
		} else {
			certID = domains[0]
		}
	}

	o, err := inv.sessionOptions()
	if err != nil {
		return err
	}
	o.AccountKeyType = string(kt)
	if err := inv.challengeOptions(&o); err != nil {
		return err
	}
	sess, err := inv.open.Open(ctx, o)
	if err != nil {
		return err
	}
	defer sess.Close()
	store := sess.Store()
	store.SetPFX(o.PFX, f.Bool("pfx"))
	// zoku's challenge servers are up from here on; lego's delays ask that
	// they be up this long before the CA looks.
	if d := max(f.Duration("http.delay"), f.Duration("tls.delay")); d > 0 {
		sess.Logger().Info("waiting before ordering (--http.delay/--tls.delay)", "wait", d.String())
		if err := inv.env.Sleep(ctx, d); err != nil {
			return err
		}
	}

	cur, err := store.LoadCertificate(ctx, certID)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read the stored certificate %q: %w", certID, err)
	}
	if errors.Is(err, fs.ErrNotExist) {
		cur = nil
	}
	r := &runner{inv: inv, sess: sess, certID: certID, kt: kt, csr: csr, priv: priv, started: started}
	r.hooks = newHooks(inv, sess)
	if cur == nil {
		if f.Bool(renewOnlyFlag) {
			return fmt.Errorf("no certificate %q in %s to renew; 'lego ... run' obtains it", certID, o.Path)
		}
		return r.obtain(ctx, domains)
	}
	sess.Logger().Info("renewing certificate", "cert_name", certID)
	return r.renew(ctx, cur, domains)
}

// runner carries one `lego run`.
type runner struct {
	inv     *invocation
	sess    Session
	hooks   *hooks
	certID  string
	kt      certcrypto.KeyType
	csr     *x509.CertificateRequest
	priv    crypto.Signer
	started time.Time
}

// order fills the parts of an order lego's flags decide.
func (r *runner) order(domains []string) certmgr.Order {
	f := r.inv.flags
	return certmgr.Order{
		Set:            certmgr.Set{Name: r.certID, Domains: domains, KeyType: r.kt, Profile: f.String("profile"), ReuseKey: f.Bool("reuse-key")},
		CSR:            r.csr,
		PrivateKey:     r.priv,
		PreferredChain: f.String("preferred-chain"),
		MustStaple:     f.Bool("must-staple"),
		NotBefore:      f.Time("not-before"),
		NotAfter:       f.Time("not-after"),
		WritePEM:       f.Bool("pem"),
		KeepNewerThan:  r.started,
	}
}

func (r *runner) obtain(ctx context.Context, domains []string) error {
	names := domains
	if r.csr != nil {
		names = certcrypto.ExtractDomainsCSR(r.csr)
	}
	if _, err := acmeclient.NormalizeDomains(names, r.inv.flags.String("dns") != "" || r.inv.flags.Bool("dns-persist")); err != nil {
		return err
	}
	if err := r.hooks.pre(ctx, r.certID, names, r.kt); err != nil {
		return err
	}
	defer r.hooks.post(ctx)
	if err := r.preparePersist(ctx, names); err != nil {
		return err
	}
	o := r.order(names)
	res, err := r.sess.OrderNow(ctx, o)
	if err != nil {
		return fmt.Errorf("obtain certificate: %w", err)
	}
	if res.Action == certmgr.KeptStored {
		r.sess.Logger().Info("another process stored this certificate while this one waited; kept it", "cert_name", r.certID)
		return nil
	}
	return r.hooks.deploy(ctx, res.Bundle)
}

func (r *runner) renew(ctx context.Context, cur *storage.Bundle, domains []string) error {
	f := r.inv.flags
	log := r.sess.Logger()
	leaf, err := cur.Leaf()
	if err != nil {
		return fmt.Errorf("renew certificate: %w", err)
	}
	if leaf.IsCA {
		return fmt.Errorf("renew certificate: the bundle of %q starts with a CA certificate", r.certID)
	}
	certDomains := certcrypto.ExtractDomains(leaf)
	changed := cur.Meta.Profile != f.String("profile")
	var names []string
	same := false
	if r.csr != nil {
		names = certcrypto.ExtractDomainsCSR(r.csr)
		same = sameDomains(certDomains, names)
	} else {
		if len(domains) == 0 {
			domains = cur.Meta.Domains
		}
		names = punycode(domains)
		if !f.Bool("force-cert-domains") {
			names = merge(certDomains, names)
		}
		same = sameDomains(certDomains, names)
	}
	scheduled := !changed && same
	if scheduled {
		due, err := r.due(ctx, leaf)
		if err != nil || !due {
			return err
		}
	} else {
		log.Info("the certificate's names or profile changed: ordering a new one", "cert_name", r.certID)
	}
	log.Info("renewing", "cert_name", r.certID, "time_left", leaf.NotAfter.Sub(r.inv.env.Now()).Round(time.Second).String())
	if err := r.hooks.pre(ctx, r.certID, names, r.kt); err != nil {
		return fmt.Errorf("pre-renew hook: %w", err)
	}
	defer r.hooks.post(ctx)
	if scheduled {
		if err := r.randomPause(ctx); err != nil {
			return err
		}
	}
	if err := r.preparePersist(ctx, names); err != nil {
		return err
	}
	o := r.order(names)
	o.Renew, o.Force = true, true
	o.Seen = leaf.SerialNumber.Text(16)
	o.NoReplaces = f.Bool("ari-disable") || !scheduled
	res, err := r.sess.OrderNow(ctx, o)
	if err != nil {
		return fmt.Errorf("could not renew the certificate %q: %w", r.certID, err)
	}
	if res.Action == certmgr.KeptStored {
		log.Info("renewed by another process meanwhile; kept its certificate", "cert_name", r.certID)
		return nil
	}
	return r.hooks.deploy(ctx, res.Bundle)
}

// persister is a Session that can set DNS-PERSIST-01 up for names (the
// records are looked up, or printed for the user to publish once).
type persister interface {
	PreparePersist(ctx context.Context, names []string) error
}

func (r *runner) preparePersist(ctx context.Context, names []string) error {
	if !r.inv.flags.Bool("dns-persist") {
		return nil
	}
	p, ok := r.sess.(persister)
	if !ok {
		return errors.New("--dns-persist is not available in this session")
	}
	return p.PreparePersist(ctx, names)
}

// due applies lego's rule: renew when the CA's renewal information (ARI)
// says so, waiting up to --ari-wait-to-renew-duration for its time; else
// with --renew-force; else once --renew-days (or, by default, one third of
// the lifetime; one half for lifetimes of 10 days or less) are left.
func (r *runner) due(ctx context.Context, leaf *x509.Certificate) (bool, error) {
	f, env, log := r.inv.flags, r.inv.env, r.sess.Logger()
	if !f.Bool("ari-disable") {
		at := r.ariTime(ctx, leaf)
		if at != nil {
			if wait := at.Sub(env.Now()); wait > 0 {
				log.Info("waiting for the renewal time the CA gave", "cert_name", r.certID, "wait", wait.String())
				if err := env.Sleep(ctx, wait); err != nil {
					return false, err
				}
			}
			return true, nil
		}
	}
	if f.Bool("renew-force") {
		return true, nil
	}
	days := noDays
	if f.IsSet("renew-days") {
		days = f.Int("renew-days")
	}
	now := env.Now()
	at := dueDate(leaf, days, now)
	if !at.After(now) {
		return true, nil
	}
	log.Info("not due: skipping the renewal", "cert_name", r.certID,
		"expires", leaf.NotAfter.UTC().Format(time.RFC3339), "renewal_in", at.Sub(now).Round(time.Minute).String())
	fmt.Fprintf(env.Stdout, "%s: not due until %s\n", r.certID, at.UTC().Format(time.RFC3339))
	return false, nil
}

// noDays means --renew-days was not given.
const noDays = -1 << 31

// dueDate is when lego renews leaf without ARI.
func dueDate(leaf *x509.Certificate, days int, now time.Time) time.Time {
	if days == noDays {
		life := leaf.NotAfter.Sub(leaf.NotBefore)
		div := int64(3)
		if life.Round(24*time.Hour).Hours()/24 <= 10 {
			div = 2
		}
		return leaf.NotAfter.Add(-time.Duration(life.Nanoseconds() / div))
	}
	if days < 0 {
		return now
	}
	return leaf.NotAfter.Add(-time.Duration(days) * 24 * time.Hour)
}

// ariTime asks the CA's renewal information and picks lego's time in its
// window: now when the picked time has passed, the picked time when it is
// within --ari-wait-to-renew-duration, else nil (not yet).
func (r *runner) ariTime(ctx context.Context, leaf *x509.Certificate) *time.Time {
	env, log := r.inv.env, r.sess.Logger()
	ri, err := r.sess.Issuer().RenewalInfo(ctx, leaf)
	if err != nil {
		if errors.Is(err, acmeclient.ErrNoARI) {
			log.Warn("the CA offers no renewal information (ARI)", "cert_name", r.certID)
		} else {
			log.Warn("renewal information unavailable", "cert_name", r.certID, "error", err)
		}
		return nil
	}
	if ri == nil {
		return nil
	}
	now := env.Now().UTC()
	at := ri.WindowStart.UTC()
	if span := ri.WindowEnd.Sub(ri.WindowStart); span > 0 {
		at = at.Add(time.Duration(env.Rand(int64(span))))
	}
	if at.Before(now) {
		return &now
	}
	if !now.Add(r.inv.flags.Duration("ari-wait-to-renew-duration")).Before(at) {
		return &at
	}
	if ri.ExplanationURL != "" {
		log.Info("the CA explains its renewal window", "cert_name", r.certID, "url", ri.ExplanationURL)
	}
	return nil
}

// randomPause is lego's pause before a scheduled renewal: up to 8 minutes,
// skipped on a terminal and with --no-random-sleep.
func (r *runner) randomPause(ctx context.Context) error {
	env := r.inv.env
	if env.StdoutIsTerminal() || r.inv.flags.Bool("no-random-sleep") {
		return nil
	}
	d := time.Duration(env.Rand(int64(randomPauseMax)))
	r.sess.Logger().Info("renewal: random pause first (--no-random-sleep skips it)", "sleep", d.String())
	return env.Sleep(ctx, d)
}

// merge adds to prev the names of next it lacks.
func merge(prev, next []string) []string {
	out := slices.Clone(prev)
	for _, n := range next {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

func sameDomains(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	sort.Strings(a)
	sort.Strings(b)
	return slices.Equal(a, b)
}

// punycode turns internationalised names into their ASCII form.
func punycode(names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		if a, err := idna.ToASCII(n); err == nil {
			n = a
		}
		out = append(out, n)
	}
	return out
}

// readCSR reads a PEM (or DER) certificate request.
func readCSR(path string) (*x509.CertificateRequest, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read --csr: %w", err)
	}
	if blk, _ := pem.Decode(raw); blk != nil {
		raw = blk.Bytes
	}
	csr, err := x509.ParseCertificateRequest(raw)
	if err != nil {
		return nil, fmt.Errorf("--csr %s is not a certificate request: %w", path, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("--csr %s has a bad signature: %w", path, err)
	}
	return csr, nil
}

// readKey reads a PEM private key file; its content never reaches an
// error.
func readKey(path string) (crypto.Signer, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := certcrypto.ParsePEMPrivateKey(raw)
	if err != nil {
		return nil, fmt.Errorf("%s is not a PEM private key", path)
	}
	return k, nil
}

// join is strings.Join, kept for the hooks' domain lists.
func join(s []string) string { return strings.Join(s, ",") }
