package cli

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/go-acme/lego/v5/certcrypto"

	"github.com/zoku/zoku/internal/acmeclient"
	"github.com/zoku/zoku/internal/certmgr"
	"github.com/zoku/zoku/internal/hook"
)

// orderFlags describe the certificate to order.
type orderFlags struct {
	domains        listFlag
	csr            string
	keyType        string
	profile        string
	preferredChain string
	certName       string
	mustStaple     bool
	notBefore      time.Time
	notAfter       time.Time
	privateKey     string
	deployHook     string
	deployTimeout  time.Duration
}

func (o *orderFlags) register(fs *flag.FlagSet) {
	fs.Var(&o.domains, "domains", "a name for the certificate; repeatable (the first is the certificate's name)")
	fs.Var(&o.domains, "d", "short for --domains")
	fs.StringVar(&o.csr, "csr", "", "order for this PEM CSR file instead of --domains")
	fs.StringVar(&o.keyType, "key-type", "ec256", "certificate key type: ec256, ec384, rsa2048, rsa3072, rsa4096")
	fs.StringVar(&o.keyType, "k", "ec256", "short for --key-type")
	fs.StringVar(&o.profile, "profile", "", "ACME profile the CA offers (e.g. classic, tlsserver, shortlived)")
	fs.StringVar(&o.preferredChain, "preferred-chain", "", "prefer the chain whose root has this common name")
	fs.StringVar(&o.certName, "cert.name", "", "storage name of the certificate (default: the first domain)")
	fs.StringVar(&o.certName, "c", "", "short for --cert.name")
	fs.BoolVar(&o.mustStaple, "must-staple", false, "ask for the OCSP must-staple extension")
	fs.Func("not-before", "ask for this notBefore (RFC 3339), when the CA honours it", timeFlag(&o.notBefore))
	fs.Func("not-after", "ask for this notAfter (RFC 3339), when the CA honours it", timeFlag(&o.notAfter))
	fs.StringVar(&o.privateKey, "private-key", "", "PEM private key for the certificate (default: a new key)")
	fs.StringVar(&o.deployHook, "deploy-hook", "", "shell command run after the certificate is stored, with lego, certbot and acme.sh variables")
	fs.DurationVar(&o.deployTimeout, "deploy-hook-timeout", hook.DefaultTimeout, "time limit of the deploy hook")
}

// timeFlag parses an RFC 3339 time into t.
func timeFlag(t *time.Time) func(string) error {
	return func(v string) error {
		x, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return errors.New("want an RFC 3339 time such as 2026-03-01T00:00:00Z")
		}
		*t = x
		return nil
	}
}

func runObtain(ctx context.Context, env Env, args []string) error {
	started := time.Now().UTC()
	fs := newFlagSet("obtain", "", "Obtain a certificate and store it in --path (lego's layout).\n\nExample (no domain or internet needed):\n  zoku obtain --server embedded --accept-tos --email you@example.test --http --http.port 127.0.0.1:5002 -d a.example.test", env)
	var (
		af  accountFlags
		cf  challengeFlags
		of  orderFlags
		out outputFlags
		cl  clientFlags
	)
	cl.register(fs)
	af.register(fs)
	cf.register(fs)
	of.register(fs)
	out.register(fs, env)
	if err := parse(fs, args); err != nil {
		return err
	}
	kt, err := parseKeyType(of.keyType)
	if err != nil {
		return err
	}
	req := acmeclient.ObtainRequest{Name: of.certName, KeyType: kt, Profile: of.profile, PreferredChain: of.preferredChain}
	if of.csr != "" {
		if len(of.domains) > 0 {
			return errors.New("--csr and --domains are exclusive: the names come from the CSR")
		}
		if req.CSR, err = readCSR(of.csr); err != nil {
			return err
		}
		if _, err := acmeclient.NormalizeDomains(csrNames(req.CSR), cf.dns != "" || cf.persist); err != nil {
			return fmt.Errorf("CSR %s: %w", of.csr, err)
		}
	} else if req.Domains, err = acmeclient.NormalizeDomains(of.domains, cf.dns != "" || cf.persist); err != nil {
		return err
	}

	if of.privateKey != "" {
		raw, err := os.ReadFile(of.privateKey)
		if err != nil {
			return fmt.Errorf("read --private-key: %w", err)
		}
		if req.PrivateKey, err = certcrypto.ParsePEMPrivateKey(raw); err != nil {
			return fmt.Errorf("--private-key %s is not a PEM private key", of.privateKey)
		}
	}

	if cl.webroot != "" {
		if !cf.http {
			return &usageError{msg: "--http.webroot goes with --http; run 'zoku obtain --help'"}
		}
		cf.http = false // the web server answers; zoku binds nothing
	}
	s, err := openSession(ctx, env, &af, &cf, cl.webroot == "")
	if err != nil {
		return err
	}
	defer s.close()
	if err := s.applyClient(cl, s.log); err != nil {
		return err
	}
	out.apply(s.store)
	if cf.persist {
		names := req.Domains
		if req.CSR != nil {
			names = append(append([]string(nil), req.CSR.DNSNames...), names...)
		}
		if err := s.enablePersist(ctx, env, &cf, names); err != nil {
			return err
		}
	}
	o := certmgr.Order{
		Set: certmgr.Set{Name: req.Name, Domains: req.Domains, KeyType: req.KeyType, Profile: req.Profile},
		CSR: req.CSR, PrivateKey: req.PrivateKey, PreferredChain: req.PreferredChain, KeepNewerThan: started,
		MustStaple: of.mustStaple, NotBefore: of.notBefore, NotAfter: of.notAfter, WritePEM: out.pem,
	}
	if req.CSR != nil {
		o.Set.Domains = csrNames(req.CSR)
	}
	if o.Set.Name == "" {
		o.Set.Name = o.Set.Domains[0]
	}
	// A certificate some other process stores while this one waits for
	// the name's lock is kept; one stored before we started is replaced.
	if cur, err := s.store.LoadCertificate(ctx, o.Set.Name); err == nil {
		if leaf, err := cur.Leaf(); err == nil {
			o.Seen = leaf.SerialNumber.Text(16)
		}
	}
	ev := hook.Event{Name: o.Set.Name, Domains: o.Set.Domains, KeyType: string(o.Set.KeyType),
		AccountID: s.issuer.AccountID(), AccountEmail: s.issuer.Email(), Server: s.issuer.Server()}
	if err := s.runHook(ctx, env, "pre", out.preHook, ev, out.preTimeout); err != nil {
		return err
	}
	defer func() { _ = s.runHook(context.WithoutCancel(ctx), env, "post", out.postHook, ev, out.postTimeout) }()
	res, err := s.mgr.OrderNow(ctx, o)
	if err != nil {
		return err
	}
	b := res.Bundle
	if res.Action == certmgr.KeptStored {
		fmt.Fprintf(env.Stdout, "%s: another process stored a certificate for it while this one waited; kept that one\n", b.Meta.ID)
	}
	p := s.store.CertPaths(b.Meta.ID)
	fmt.Fprintf(env.Stdout, "certificate: %s\nprivate key: %s\nissuer:      %s\n", p.Cert, p.Key, p.Issuer)
	if s.ca != nil {
		fmt.Fprintf(env.Stdout, "embedded CA root: %s (test CA, not trusted by anyone else)\nverify with: openssl verify -CAfile %s -untrusted %s %s\n",
			s.embeddedRoot(), s.embeddedRoot(), p.Issuer, p.Cert)
	}
	if of.deployHook != "" && res.Action == certmgr.Ordered {
		if err := s.runDeployHook(ctx, env, b, s.issuer, of.deployHook, of.deployTimeout); err != nil {
			return fmt.Errorf("the certificate is stored, but %w", err)
		}
	}
	return nil
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

// csrNames are the identifiers a CSR asks for: its DNS names and IPs, else
// its common name.
func csrNames(csr *x509.CertificateRequest) []string {
	names := append([]string(nil), csr.DNSNames...)
	for _, ip := range csr.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 && csr.Subject.CommonName != "" {
		names = append(names, csr.Subject.CommonName)
	}
	return names
}
