package embedca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/letsencrypt/pebble/v2/core"
	"github.com/letsencrypt/pebble/v2/wfe"

	"github.com/zoku/zoku/internal/storage"
)

// The files of Options.StateDir.
const (
	// RootFile holds the root certificate (PEM), the one to trust:
	// `curl --cacert`, `openssl verify -CAfile`, `zoku trust`.
	RootFile = "root.pem"
	// rootKeyFile holds the root's private key (PKCS#8) followed by its
	// certificate, 0600. Keeping both in one file means the pair is
	// written by one rename: it can be missing, never half there or
	// mismatched.
	rootKeyFile = "root-key.pem"
)

// stateDirName is the folder inside zoku's storage that StateDirIn names.
const stateDirName = "embedded-ca"

// rootLifetime is how long a new root is valid (mkcert and Caddy's local CA
// use ten years too). An expired root is replaced at the next start.
const rootLifetime = 10 * 365 * 24 * time.Hour

// ErrForeignChain is wrapped by the errors of VerifyChain and CheckStored
// for a certificate that does not chain to the embedded CA's root: one
// issued before the root was kept across restarts, or under a root that
// was deleted since.
var ErrForeignChain = errors.New("the certificate does not chain to the embedded CA's root")

// StateDirIn returns where zoku keeps the embedded CA's root inside the
// storage folder storageRoot: <storageRoot>/embedded-ca.
func StateDirIn(storageRoot string) string {
	return filepath.Join(storageRoot, stateDirName)
}

// rootCA is the CA's own root: the top of the default chain of every
// certificate it issues.
type rootCA struct {
	key  crypto.Signer
	cert *x509.Certificate
	der  []byte
}

// loadOrCreateRoot returns the root kept in dir, creating it (and dir,
// 0700) when there is none or it has expired; dir "" makes a root that
// lives in memory only. keyAlg ("ecdsa" or "rsa") is the key type of a
// new root. created reports whether a new root was made.
func loadOrCreateRoot(dir, keyAlg string, now time.Time) (r *rootCA, created bool, err error) {
	if dir == "" {
		r, _, err = newRoot(keyAlg, now)
		return r, true, err
	}
	path := filepath.Join(dir, rootKeyFile)
	r, err = readRootKey(path)
	switch {
	case err == nil && now.Before(r.cert.NotAfter):
		return r, false, nil
	case err == nil:
		// Expired: replace it. Whoever trusted it must trust the new
		// one (zoku trust); the start log says so.
		nr, pemBytes, err := newRoot(keyAlg, now)
		if err != nil {
			return nil, false, err
		}
		if err := storage.WriteFile(path, pemBytes); err != nil {
			return nil, false, fmt.Errorf("embedca: replace the expired root in %s: %w", path, err)
		}
		return nr, true, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("embedca: create the root folder %s: %w", dir, err)
	}
	nr, pemBytes, err := newRoot(keyAlg, now)
	if err != nil {
		return nil, false, err
	}
	// Two processes starting at once on a new folder must end up with
	// one root: the file is created by a hard link, which never replaces,
	// and the loser reads the winner's.
	won, err := createOnce(path, pemBytes)
	if err != nil {
		return nil, false, fmt.Errorf("embedca: write the root to %s: %w", path, err)
	}
	if !won {
		r, err = readRootKey(path)
		return r, false, err
	}
	return nr, true, nil
}

// newRoot generates a self-signed root and returns it with the content of
// its key file (key then certificate).
func newRoot(keyAlg string, now time.Time) (*rootCA, []byte, error) {
	var (
		key crypto.Signer
		err error
	)
	switch keyAlg {
	case "rsa":
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("embedca: generate the root key: %w", err)
	}
	spki, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, nil, fmt.Errorf("embedca: encode the root public key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("embedca: generate the root serial: %w", err)
	}
	sum := sha256.Sum256(spki)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			Organization: []string{"zoku embedded CA (local use and tests only)"},
			CommonName:   "zoku embedded root " + hex.EncodeToString(sum[:4]),
		},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(rootLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("embedca: create the root certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("embedca: parse the root certificate: %w", err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("embedca: encode the root key: %w", err)
	}
	var buf bytes.Buffer
	_ = pem.Encode(&buf, &pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})
	_ = pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	return &rootCA{key: key, cert: cert, der: der}, buf.Bytes(), nil
}

// readRootKey reads a key file written by newRoot and checks that its key
// and certificate belong together and make a CA. Errors name the file
// and the fix, never its content; a missing file wraps fs.ErrNotExist.
func readRootKey(path string) (*rootCA, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("embedca: read the root key: %w", err)
	}
	bad := func(why string) error {
		return fmt.Errorf("embedca: %s is not a usable root (%s): move it away to make a new root, then run 'zoku trust' again where the old one was trusted", path, why)
	}
	var keyDER, certDER []byte
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		switch {
		case b.Type == "PRIVATE KEY" && keyDER == nil:
			keyDER = b.Bytes
		case b.Type == "CERTIFICATE" && certDER == nil:
			certDER = b.Bytes
		}
	}
	if keyDER == nil || certDER == nil {
		return nil, bad("a PRIVATE KEY and a CERTIFICATE block are expected")
	}
	k, err := x509.ParsePKCS8PrivateKey(keyDER)
	if err != nil {
		return nil, bad("the key does not parse")
	}
	key, ok := k.(crypto.Signer)
	if !ok {
		return nil, bad("the key cannot sign")
	}
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return nil, bad("the certificate does not parse")
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, bad("the key and the certificate do not match")
	}
	if !cert.IsCA || cert.CheckSignatureFrom(cert) != nil {
		return nil, bad("the certificate is not a self-signed CA")
	}
	return &rootCA{key: key, cert: cert, der: certDER}, nil
}

// createOnce creates path with data (0600) unless it exists: temp file,
// fsync, hard link (which fails rather than replace), fsync of the folder.
// It returns false, and no error, when path already existed.
func createOnce(path string, data []byte) (bool, error) {
	dir, base := filepath.Split(path)
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return false, err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	werr := func() error {
		if err := f.Chmod(0o600); err != nil {
			return err
		}
		if _, err := f.Write(data); err != nil {
			return err
		}
		return f.Sync()
	}()
	if err := errors.Join(werr, f.Close()); err != nil {
		return false, err
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
		return false, err
	}
	if runtime.GOOS == "windows" {
		return true, nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return true, err
	}
	return true, errors.Join(d.Sync(), d.Close())
}

// writeRootPEM writes the root certificate to dir/RootFile unless it is
// already there, byte for byte.
func (r *rootCA) writeRootPEM(dir string) error {
	path := filepath.Join(dir, RootFile)
	want := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.der})
	if have, err := os.ReadFile(path); err == nil && bytes.Equal(have, want) {
		return nil
	}
	if err := storage.WriteFile(path, want); err != nil {
		return fmt.Errorf("embedca: write the root certificate %s: %w", path, err)
	}
	return nil
}

// crossSign re-issues top, the certificate Pebble's own root signed at the
// top of the default chain, under r: same subject, key, serial, key
// identifier and extensions, only the issuer and signature differ. top is
// changed in place, before the CA serves anything, so every chain Pebble
// hands out from then on ends in a certificate r signed, and leaves
// Pebble signs with top's key are unchanged.
func (r *rootCA) crossSign(top *core.Certificate) error {
	orig := top.Cert
	tmpl := &x509.Certificate{
		SerialNumber:          orig.SerialNumber,
		Subject:               orig.Subject,
		NotBefore:             orig.NotBefore.Add(-time.Minute),
		NotAfter:              orig.NotAfter,
		KeyUsage:              orig.KeyUsage,
		ExtKeyUsage:           orig.ExtKeyUsage,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            orig.MaxPathLen,
		MaxPathLenZero:        orig.MaxPathLenZero,
		SubjectKeyId:          orig.SubjectKeyId,
	}
	if tmpl.NotBefore.Before(r.cert.NotBefore) {
		tmpl.NotBefore = r.cert.NotBefore
	}
	if tmpl.NotAfter.After(r.cert.NotAfter) {
		tmpl.NotAfter = r.cert.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, r.cert, orig.PublicKey, r.key)
	if err != nil {
		return fmt.Errorf("embedca: sign the intermediate with the root: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("embedca: parse the cross-signed intermediate: %w", err)
	}
	top.Cert, top.DER = cert, der
	// Its issuer is no Pebble certificate any more.
	top.IssuerChains = nil
	return nil
}

// topOfDefaultChain returns the certificate Pebble's root 0 signed: the
// last intermediate of the default chain, found by walking up from the
// issuing intermediate (Pebble records each CA certificate's signer in
// its IssuerChains).
func topOfDefaultChain(issuing, root *core.Certificate) (*core.Certificate, error) {
	c := issuing
	for range 100 {
		if c == nil || len(c.IssuerChains) == 0 || len(c.IssuerChains[0]) == 0 {
			break
		}
		up := c.IssuerChains[0][0]
		if up == root {
			return c, nil
		}
		c = up
	}
	return nil, errors.New("embedca: pebble's default chain does not have the expected shape (intermediates up to root 0)")
}

// LoadRoot reads the root certificate kept in dir (a StateDir, e.g.
// StateDirIn(storage)), for commands that need it without starting the
// CA (zoku trust, zoku list). A folder without one gives an error
// wrapping fs.ErrNotExist.
func LoadRoot(dir string) (*x509.Certificate, error) {
	path := filepath.Join(dir, RootFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("embedca: read the root certificate: %w", err)
	}
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("embedca: %s holds no PEM certificate; start the embedded CA once to write it", path)
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("embedca: %s: parse the root certificate: %w", path, err)
	}
	if !cert.IsCA || cert.CheckSignatureFrom(cert) != nil {
		return nil, fmt.Errorf("embedca: %s is not a self-signed CA certificate", path)
	}
	return cert, nil
}

// ShortID is a short, stable name for a root: the first 8 hex digits of
// the SHA-256 of its public key (the suffix of its common name when zoku
// made it).
func ShortID(root *x509.Certificate) string {
	sum := sha256.Sum256(root.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:4])
}

// VerifyChain checks that chainPEM, a leaf followed by its issuers as in
// a stored .crt file, leads to one of roots. It checks signatures and CA
// constraints, not the leaf's expiry (renewal handles that): the chain is
// evaluated at the leaf's NotBefore. A chain that leads elsewhere gives
// an error wrapping ErrForeignChain.
func VerifyChain(chainPEM []byte, roots ...*x509.Certificate) error {
	var certs []*x509.Certificate
	for rest := chainPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return fmt.Errorf("embedca: verify chain: parse certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return errors.New("embedca: verify chain: no PEM certificate")
	}
	pool := x509.NewCertPool()
	for _, r := range roots {
		pool.AddCert(r)
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	leaf := certs[0]
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots: pool, Intermediates: inter, CurrentTime: leaf.NotBefore,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return fmt.Errorf("embedca: %w (issuer %q): %w", ErrForeignChain, leaf.Issuer.CommonName, err)
	}
	return nil
}

// FromEmbedded reports whether server, the directory URL a stored
// certificate records (its CertMeta.Server), belongs to an embedded CA:
// StableDirectoryURL, or the https://127.0.0.1:<port>/dir of an embedded
// CA from before it had a stable URL.
func FromEmbedded(server string) bool {
	if server == StableDirectoryURL {
		return true
	}
	u, err := url.Parse(server)
	if err != nil || u.Scheme != "https" || u.Path != wfe.DirectoryPath || u.Port() == "" {
		return false
	}
	ip := net.ParseIP(u.Hostname())
	return ip != nil && ip.IsLoopback()
}

// CheckStored tells whether a stored certificate may still be served as
// the embedded CA's: nil when server (its CertMeta.Server) is not an
// embedded CA's (FromEmbedded), or when chainPEM chains to one of roots;
// otherwise an error wrapping ErrForeignChain. Such a certificate comes
// from a root nobody trusts any more and should be ordered again before
// it is served.
func CheckStored(server string, chainPEM []byte, roots ...*x509.Certificate) error {
	if !FromEmbedded(server) {
		return nil
	}
	return VerifyChain(chainPEM, roots...)
}
