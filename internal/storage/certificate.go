package storage

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/go-acme/lego/v5/certcrypto"
)

// CertMeta is the content of <name>.json. The fields up to Origin are lego
// v5's; the rest are zoku's own, which lego ignores when it reads the file.
type CertMeta struct {
	// ID is the certificate's name; its file names derive from it.
	ID string `json:"id"`
	// Domains are the identifiers (DNS names and IPs) the certificate covers.
	Domains []string `json:"domains"`
	// KeyType is the certificate key's type.
	KeyType certcrypto.KeyType `json:"keyType"`
	// PreferredChain is the issuer CN asked for when ordering, if any.
	PreferredChain string `json:"preferredChain,omitempty"`
	// Profile is the ACME profile the certificate was ordered with, if any.
	Profile string `json:"profile,omitempty"`
	// CertURL is the certificate's URL at the CA.
	CertURL string `json:"certUrl"`
	// CertStableURL is the certificate's stable URL at the CA.
	CertStableURL string `json:"certStableUrl"`
	// Origin records how the certificate came to be (lego: "command",
	// "configuration", "migration"); empty is allowed.
	Origin string `json:"origin,omitempty"`

	// Server is the directory URL of the CA that issued the certificate.
	Server string `json:"server,omitempty"`
	// RenewalInfo is the last ARI answer for the certificate, nil if none.
	RenewalInfo *RenewalInfo `json:"renewalInfo,omitempty"`
	// LastError is the last failed renewal's error, empty after a success.
	LastError string `json:"lastError,omitempty"`
	// LastAttempt is when zoku last tried to renew it; zero if never.
	LastAttempt time.Time `json:"lastAttempt,omitzero"`
	// StoredAt is when zoku stored the certificate (zero for one stored
	// by lego): a command that started later than that keeps it.
	StoredAt time.Time `json:"storedAt,omitzero"`
	// StoredBy names the process or node that ordered and stored it.
	StoredBy string `json:"storedBy,omitempty"`

	// Legacy is true when the .json was in the lego v4 shape.
	Legacy bool `json:"-"`
}

// RenewalInfo is a stored ACME Renewal Information (RFC 9773) answer.
type RenewalInfo struct {
	// WindowStart and WindowEnd bound the suggested renewal window.
	WindowStart time.Time `json:"windowStart"`
	WindowEnd   time.Time `json:"windowEnd"`
	// ExplanationURL is the CA's explanation for the window, if given.
	ExplanationURL string `json:"explanationUrl,omitempty"`
	// NextPoll is when to ask the CA again (from Retry-After).
	NextPoll time.Time `json:"nextPoll"`
	// FetchedAt is when the answer was received.
	FetchedAt time.Time `json:"fetchedAt"`
}

// Bundle is one certificate set: metadata, certificate chain and key.
type Bundle struct {
	// Meta is the content of the .json file.
	Meta CertMeta
	// Certificate is the PEM leaf followed by its issuers (the .crt file).
	Certificate []byte
	// IssuerCertificate is the PEM issuer chain (the .issuer.crt file); may
	// be nil.
	IssuerCertificate []byte
	// PrivateKey is the PEM private key (the .key file); nil when the
	// certificate was ordered from a CSR whose key zoku does not hold.
	PrivateKey []byte
	// WritePEM makes SaveCertificate also write <name>.pem (certificate
	// then key), like lego's --pem. An existing .pem is always refreshed, and
	// LoadCertificate sets WritePEM when a .pem exists.
	WritePEM bool
	// PFX, when set, makes SaveCertificate also write <name>.pfx (lego's
	// --pfx) with these options. An existing .pfx is kept in step without
	// it (see Store.SetPFX).
	PFX *PFXOptions

	// parsed and parseErr cache TLSCertificate.
	parsed   *tls.Certificate
	parseErr error
}

// Leaf parses and returns the first certificate of b.Certificate.
func (b *Bundle) Leaf() (*x509.Certificate, error) {
	if b.parsed != nil && b.parsed.Leaf != nil {
		return b.parsed.Leaf, nil
	}
	certs, err := parseCertificates(b.Certificate)
	if err != nil {
		return nil, fmt.Errorf("storage: certificate %q: %w", b.Meta.ID, err)
	}

	return certs[0], nil
}

// legacyCertJSON holds the fields only lego v4's certificate .json has.
type legacyCertJSON struct {
	Domain string `json:"domain"`
}

// preparedSet is a validated bundle ready to be written.
type preparedSet struct {
	name   string
	meta   CertMeta
	cert   []byte
	issuer []byte
	key    []byte // nil without a private key
	leaf   *x509.Certificate
	pem    bool
	pfx    *PFXOptions
}

// prepare validates b completely and builds the files to write. Nothing on
// disk is touched.
func prepare(b *Bundle) (*preparedSet, error) {
	if b == nil {
		return nil, errors.New("storage: nil certificate bundle")
	}

	name, err := checkCertName(b.Meta.ID)
	if err != nil {
		return nil, err
	}

	id := b.Meta.ID

	certs, err := parseCertificates(b.Certificate)
	if err != nil {
		return nil, fmt.Errorf("storage: certificate %q: the certificate PEM is invalid: %w; refusing to save", id, err)
	}

	leaf := certs[0]
	if leaf.IsCA {
		return nil, fmt.Errorf("storage: certificate %q: the first certificate is a CA, not the leaf; put the leaf first", id)
	}

	if len(certs) > 1 && !bytes.Equal(leaf.RawIssuer, certs[1].RawSubject) {
		return nil, fmt.Errorf("storage: certificate %q: the second certificate did not issue the first; put the leaf first, then its issuers in order", id)
	}

	p := &preparedSet{name: name, meta: b.Meta, cert: encodeCertificates(certs), leaf: leaf, pem: b.WritePEM}

	if b.PFX != nil {
		if err := checkPFXFormat(b.PFX.Format); err != nil {
			return nil, err
		}
		if b.PrivateKey == nil {
			return nil, fmt.Errorf("storage: certificate %q: a .pfx needs the private key, and this certificate has none (ordered from a CSR); drop --pfx", id)
		}
	}

	if len(b.IssuerCertificate) > 0 {
		issuers, err := parseCertificates(b.IssuerCertificate)
		if err != nil {
			return nil, fmt.Errorf("storage: certificate %q: the issuer PEM is invalid: %w; refusing to save", id, err)
		}

		p.issuer = encodeCertificates(issuers)
	}

	if b.PrivateKey != nil {
		key, _, err := parsePrivateKey(b.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("storage: certificate %q: the private key is invalid: %w; refusing to save", id, err)
		}

		if !publicKeyMatches(key, leaf.PublicKey) {
			return nil, fmt.Errorf("storage: certificate %q: the private key does not match the certificate; refusing to save", id)
		}

		if p.key, err = encodePKCS8(key); err != nil {
			return nil, fmt.Errorf("storage: certificate %q: %w", id, err)
		}
	}

	if len(p.meta.Domains) == 0 {
		p.meta.Domains = certcrypto.ExtractDomains(leaf)
	}

	if p.meta.KeyType == "" {
		p.meta.KeyType, _ = certcrypto.GetCertificateKeyType(leaf)
	}

	return p, nil
}

// SaveCertificate writes a certificate set in the lego v5 layout.
//
// It validates first and refuses, writing nothing, unless: Meta.ID is set,
// Certificate is a PEM bundle with the leaf first, IssuerCertificate (if set)
// parses, and PrivateKey (if set) parses and matches the leaf. Keys are
// re-encoded as PKCS#8. Empty Meta.Domains and Meta.KeyType are filled in
// from the leaf; b itself is not modified.
//
// The set is written as one batch with the .json last. A set from the lego
// v4 layout (v4 .json, or a key not in PKCS#8) is first copied to
// archives/lego-v4/<unix>/certificates/. Keys the new set no longer has (an
// issuer file when there is no issuer; a key and .pem when there is no
// private key and the stored key does not match the new leaf) are removed
// in the same batch; a stored key that does match is kept.
//
// <name>.pem and <name>.pfx stay in step with the certificate: each is
// written when asked for (WritePEM, PFX) and rewritten whenever it exists.
// An existing .pfx is re-encrypted with the store's PFX options (SetPFX;
// lego's default password and the file's own format unless set); when that
// password does not open it, the save fails and nothing is written, rather
// than leave a stale .pfx behind. Without a private key both are removed.
// A ctx from [WithFence] makes the write happen only while that lock is
// held.
func (s *Store) SaveCertificate(ctx context.Context, b *Bundle) error {
	p, err := prepare(b)
	if err != nil {
		return err
	}

	mu := s.lock("cert", p.name)
	mu.Lock()
	defer mu.Unlock()

	keys := certKeysOf(p.name)

	if err := s.checkCollision(ctx, keys, p.meta.ID); err != nil {
		return err
	}

	if err := s.archiveLegacySet(ctx, keys); err != nil {
		return err
	}

	if p.key == nil {
		// Ordered from a CSR: keep a stored key only if it belongs to the
		// new leaf (the CSR reused it); any other key is stale.
		p.key = s.matchingStoredKey(ctx, keys.key, p.leaf.PublicKey)
	}

	if !p.pem {
		p.pem, err = s.exists(ctx, keys.pem)
		if err != nil {
			return err
		}
	}

	oldPFX, err := s.loadPFX(ctx, keys)
	if err != nil {
		return err
	}

	var pfxData []byte
	if p.key != nil {
		if p.pfx, err = s.pfxPlan(p.meta.ID, b.PFX, oldPFX); err != nil {
			return err
		}
		if p.pfx != nil {
			if pfxData, err = encodePFX(p, p.pfx); err != nil {
				return err
			}
		}
	}

	metaJSON, err := json.MarshalIndent(&p.meta, "", "\t")
	if err != nil {
		return fmt.Errorf("storage: certificate %q: encode metadata: %w", p.meta.ID, err)
	}

	ops := []Op{{Key: keys.cert, Value: p.cert}}
	if p.issuer != nil {
		ops = append(ops, Op{Key: keys.issuer, Value: p.issuer})
	}

	if p.key != nil {
		ops = append(ops, Op{Key: keys.key, Value: p.key})
		if p.pem {
			ops = append(ops, Op{Key: keys.pem, Value: slices.Concat(p.cert, p.key)})
		}
		if pfxData != nil {
			ops = append(ops, Op{Key: keys.pfx, Value: pfxData})
		}
	}

	ops = append(ops, Op{Key: keys.json, Value: append(metaJSON, '\n')})

	if p.issuer == nil {
		ops = append(ops, Op{Key: keys.issuer, Delete: true})
	}

	if p.key == nil {
		ops = append(ops, Op{Key: keys.key, Delete: true}, Op{Key: keys.pem, Delete: true}, Op{Key: keys.pfx, Delete: true})
	}

	return storeAll(ctx, s.b, ops)
}

// exists reports whether key holds a value.
func (s *Store) exists(ctx context.Context, key string) (bool, error) {
	_, err := s.b.Stat(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// loadOptional reads key, returning nil without error if it is absent.
func (s *Store) loadOptional(ctx context.Context, key string) ([]byte, error) {
	data, err := s.b.Load(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return data, err
}

// checkCollision refuses to overwrite a v5 set that belongs to another ID
// with the same file name (e.g. "a:b" and "a-b").
func (s *Store) checkCollision(ctx context.Context, keys certKeys, id string) error {
	raw, err := s.loadOptional(ctx, keys.json)
	if err != nil || raw == nil {
		return err
	}

	var old CertMeta
	if json.Unmarshal(raw, &old) != nil || old.ID == "" || old.ID == id {
		return nil
	}

	return fmt.Errorf("storage: certificate %q would overwrite the files of certificate %q (same file name %q); choose another --cert.name",
		id, old.ID, strings.TrimSuffix(path.Base(keys.json), extJSON))
}

// archiveLegacySet copies a lego v4 set (v4 .json, or a v4 key: SEC1 or
// PKCS#1) to archives/lego-v4/<unix>/certificates/ before it is replaced.
// A key that does not parse at all is not a v4 file, just a broken one
// (a truncated write of another tool): it is replaced without archiving.
func (s *Store) archiveLegacySet(ctx context.Context, keys certKeys) error {
	legacy := false

	if raw, err := s.loadOptional(ctx, keys.json); err == nil && raw != nil {
		legacy = isLegacyCertJSON(raw)
	}

	if !legacy {
		if raw, err := s.loadOptional(ctx, keys.key); err == nil && raw != nil {
			_, format, perr := parsePrivateKey(raw)
			legacy = perr == nil && format != formatPKCS8
		}
	}

	if !legacy {
		return nil
	}

	return s.archiveCopies(ctx, archivesDir+"/"+legacyArchive, keys.cert, keys.issuer, keys.key, keys.json, keys.pem, keys.pfx)
}

// isLegacyCertJSON reports whether raw is a lego v4 certificate .json (it
// has "domain" and no "id").
func isLegacyCertJSON(raw []byte) bool {
	var probe struct {
		ID     *string `json:"id"`
		Domain *string `json:"domain"`
	}

	if json.Unmarshal(raw, &probe) != nil {
		return false
	}

	return probe.ID == nil && probe.Domain != nil
}

// matchingStoredKey returns the key stored at key as PKCS#8 PEM if it parses
// and matches pub, else nil.
func (s *Store) matchingStoredKey(ctx context.Context, key string, pub crypto.PublicKey) []byte {
	raw, err := s.loadOptional(ctx, key)
	if err != nil || raw == nil {
		return nil
	}

	k, _, err := parsePrivateKey(raw)
	if err != nil || !publicKeyMatches(k, pub) {
		return nil
	}

	out, err := encodePKCS8(k)
	if err != nil {
		return nil
	}

	return out
}

// torn is how often LoadCertificate reads a set again when its key does
// not match its leaf: another process is replacing the set right now.
const tornRetries = 5

// LoadCertificate reads the certificate set with this ID, in the lego v5 or
// v4 layout. If its .json does not exist the error wraps fs.ErrNotExist.
// Meta.Legacy is set for a v4 .json; Meta.Domains and Meta.KeyType are filled
// in from the leaf when the .json lacks them. PrivateKey and
// IssuerCertificate are nil when their files are absent.
func (s *Store) LoadCertificate(ctx context.Context, id string) (*Bundle, error) {
	name, err := checkCertName(id)
	if err != nil {
		return nil, err
	}

	mu := s.lock("cert", name)
	mu.RLock()
	defer mu.RUnlock()

	return s.loadByName(ctx, name, id)
}

// loadByName reads the set stored under name; id, if not empty, is used as
// the ID of a v4 set whose .json has no domain. A set caught mid-write by
// another process (key and leaf do not match) is read again.
func (s *Store) loadByName(ctx context.Context, name, id string) (*Bundle, error) {
	var (
		b   *Bundle
		err error
	)
	for range tornRetries {
		if b, err = s.loadOnce(ctx, name, id); err != nil || !b.torn() {
			return b, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		time.Sleep(20 * time.Millisecond) // the writer renames its files within milliseconds
	}
	return b, nil
}

// torn reports whether the bundle's key does not belong to its leaf.
func (b *Bundle) torn() bool {
	if len(b.PrivateKey) == 0 {
		return false
	}
	_, err := b.TLSCertificate()
	return err != nil && strings.Contains(err.Error(), "does not match")
}

// TLSCertificate returns the bundle as a tls.Certificate (chain, key and
// parsed leaf), checking that the key belongs to the leaf. The result is
// kept: a bundle loaded once is parsed once, however many look at it. A
// bundle whose Certificate or PrivateKey is changed afterwards must be a
// new Bundle value with ResetParsed called.
func (b *Bundle) TLSCertificate() (*tls.Certificate, error) {
	if b.parsed != nil || b.parseErr != nil {
		return b.parsed, b.parseErr
	}
	crt, err := tls.X509KeyPair(b.Certificate, b.PrivateKey)
	if err != nil {
		b.parseErr = fmt.Errorf("storage: certificate %q: %w", b.Meta.ID, err)
		return nil, b.parseErr
	}
	for i := 1; i < len(crt.Certificate); i++ {
		crt.Certificate[i] = issuers.share(crt.Certificate[i])
	}
	b.parsed = &crt
	return b.parsed, nil
}

// ResetParsed forgets what TLSCertificate parsed.
func (b *Bundle) ResetParsed() { b.parsed, b.parseErr = nil, nil }

func (s *Store) loadOnce(ctx context.Context, name, id string) (*Bundle, error) {
	keys := certKeysOf(name)

	raw, err := s.b.Load(ctx, keys.json)
	if err != nil {
		return nil, fmt.Errorf("storage: certificate %q: %w", name, err)
	}

	b := new(Bundle)
	if err := json.Unmarshal(raw, &b.Meta); err != nil {
		return nil, fmt.Errorf("storage: certificate %q: parse %s: %w", name, path.Base(keys.json), err)
	}

	if isLegacyCertJSON(raw) {
		var old legacyCertJSON
		_ = json.Unmarshal(raw, &old) // parsed above already

		b.Meta.Legacy = true
		b.Meta.ID = old.Domain
	}

	if b.Meta.ID == "" {
		b.Meta.ID = id
	}

	if b.Meta.ID == "" {
		b.Meta.ID = name
	}

	if b.Certificate, err = s.b.Load(ctx, keys.cert); err != nil {
		return nil, fmt.Errorf("storage: certificate %q: %w", b.Meta.ID, err)
	}

	if b.IssuerCertificate, err = s.loadOptional(ctx, keys.issuer); err != nil {
		return nil, err
	}
	b.IssuerCertificate = issuers.share(b.IssuerCertificate)

	if b.PrivateKey, err = s.loadOptional(ctx, keys.key); err != nil {
		return nil, err
	}

	if b.WritePEM, err = s.exists(ctx, keys.pem); err != nil {
		return nil, err
	}

	if len(b.Meta.Domains) == 0 || b.Meta.KeyType == "" {
		leaf, err := b.Leaf()
		if err != nil {
			return nil, err
		}

		if len(b.Meta.Domains) == 0 {
			b.Meta.Domains = certcrypto.ExtractDomains(leaf)
		}

		if b.Meta.KeyType == "" {
			b.Meta.KeyType, _ = certcrypto.GetCertificateKeyType(leaf)
		}
	}

	return b, nil
}

// ListCertificates loads every certificate set whose .json is in
// certificates/, sorted by ID. Sets that fail to load are left out of the
// slice and reported together in the error; the slice is valid even when
// the error is not nil.
func (s *Store) ListCertificates(ctx context.Context) ([]*Bundle, error) {
	names, err := s.CertificateNames(ctx)
	if err != nil {
		return nil, err
	}

	var (
		out  []*Bundle
		errs []error
	)

	for _, name := range names {
		b, err := s.loadLocked(ctx, name)
		if err != nil {
			// Removed between the listing and now (archived): not an error.
			if errors.Is(err, fs.ErrNotExist) {
				if ok, _ := s.exists(ctx, certKeysOf(name).json); !ok {
					continue
				}
			}

			errs = append(errs, err)

			continue
		}

		out = append(out, b)
	}

	slices.SortFunc(out, func(a, b *Bundle) int { return strings.Compare(a.Meta.ID, b.Meta.ID) })

	return out, errors.Join(errs...)
}

// CertificateNames lists the file names (see [SanitizedName]) of the
// stored certificate sets, sorted; it reads no set.
func (s *Store) CertificateNames(ctx context.Context) ([]string, error) {
	keys, err := s.b.List(ctx, certificatesDir)
	if err != nil {
		return nil, err
	}

	var names []string

	for _, k := range keys {
		rest, ok := strings.CutPrefix(k, certificatesDir+"/")
		if !ok || strings.Contains(rest, "/") || !strings.HasSuffix(rest, extJSON) {
			continue
		}

		names = append(names, strings.TrimSuffix(rest, extJSON))
	}

	return names, nil
}

// NameOfKey returns the certificate file name a key belongs to
// ("certificates/a.example.crt" gives "a.example"), or "" for keys outside
// certificates/.
func NameOfKey(key string) string {
	rest, ok := strings.CutPrefix(key, certificatesDir+"/")
	if !ok || strings.Contains(rest, "/") {
		return ""
	}

	for _, ext := range []string{extIssuer, extCert, extKey, extJSON, extPEM, extPFX} {
		if n, ok := strings.CutSuffix(rest, ext); ok {
			return n
		}
	}

	return ""
}

func (s *Store) loadLocked(ctx context.Context, name string) (*Bundle, error) {
	mu := s.lock("cert", name)
	mu.RLock()
	defer mu.RUnlock()

	return s.loadByName(ctx, name, "")
}

// SaveMeta rewrites only the .json of a stored certificate (renewal
// information, last error), atomically; the certificate and key stay as
// they are. The certificate must exist.
func (s *Store) SaveMeta(ctx context.Context, meta CertMeta) error {
	name, err := checkCertName(meta.ID)
	if err != nil {
		return err
	}

	keys := certKeysOf(name)

	mu := s.lock("cert", name)
	mu.Lock()
	defer mu.Unlock()

	if _, err := s.b.Stat(ctx, keys.cert); err != nil {
		return fmt.Errorf("storage: certificate %q: %w", meta.ID, err)
	}

	raw, err := json.MarshalIndent(meta, "", "\t")
	if err != nil {
		return fmt.Errorf("storage: certificate %q: %w", meta.ID, err)
	}

	return s.b.Store(ctx, keys.json, append(raw, '\n'))
}
