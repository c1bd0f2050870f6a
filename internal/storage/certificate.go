package storage

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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
}

// Leaf parses and returns the first certificate of b.Certificate.
func (b *Bundle) Leaf() (*x509.Certificate, error) {
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
// Every file is written to a temporary file in certificates/, fsynced, then
// renamed into place with the .json last, and the folder is fsynced. A set
// from the lego v4 layout (v4 .json, or a key not in PKCS#8) is first copied
// to archives/lego-v4/<unix>/certificates/. Files the new set no longer has
// (an issuer file when there is no issuer; a key and .pem when there is no
// private key and the stored key does not match the new leaf) are removed
// after the new files are in place; a stored key that does match is kept.
// An existing <name>.pfx is left alone.
func (s *Store) SaveCertificate(b *Bundle) error {
	p, err := prepare(b)
	if err != nil {
		return err
	}

	mu := s.lock("cert", p.name)
	mu.Lock()
	defer mu.Unlock()

	paths := s.certPathsByName(p.name)

	if err := mkdirAll(filepath.Dir(paths.JSON)); err != nil {
		return err
	}

	if err := s.checkCollision(paths, p.meta.ID); err != nil {
		return err
	}

	if err := s.archiveLegacySet(paths); err != nil {
		return err
	}

	if p.key == nil {
		// Ordered from a CSR: keep a stored key only if it belongs to the
		// new leaf (the CSR reused it); any other key is stale.
		p.key = matchingStoredKey(paths.Key, p.leaf.PublicKey)
	}

	if !p.pem {
		p.pem, err = fileExists(paths.PEM)
		if err != nil {
			return err
		}
	}

	metaJSON, err := json.MarshalIndent(&p.meta, "", "\t")
	if err != nil {
		return fmt.Errorf("storage: certificate %q: encode metadata: %w", p.meta.ID, err)
	}

	files := []fileWrite{{path: paths.Cert, data: p.cert}}
	if p.issuer != nil {
		files = append(files, fileWrite{path: paths.Issuer, data: p.issuer})
	}

	if p.key != nil {
		files = append(files, fileWrite{path: paths.Key, data: p.key})
		if p.pem {
			files = append(files, fileWrite{path: paths.PEM, data: slices.Concat(p.cert, p.key)})
		}
	}

	files = append(files, fileWrite{path: paths.JSON, data: append(metaJSON, '\n')})

	if err := writeFileSet(files); err != nil {
		return err
	}

	var stale []string
	if p.issuer == nil {
		stale = append(stale, paths.Issuer)
	}

	if p.key == nil {
		stale = append(stale, paths.Key, paths.PEM)
	}

	return removeFiles(stale...)
}

// checkCollision refuses to overwrite a v5 set that belongs to another ID
// with the same file name (e.g. "a:b" and "a-b").
func (s *Store) checkCollision(paths Paths, id string) error {
	raw, err := os.ReadFile(paths.JSON)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}

	if err != nil {
		return fmt.Errorf("storage: read %q: %w", paths.JSON, err)
	}

	var old CertMeta
	if json.Unmarshal(raw, &old) != nil || old.ID == "" || old.ID == id {
		return nil
	}

	return fmt.Errorf("storage: certificate %q would overwrite the files of certificate %q (same file name %q); choose another --cert.name",
		id, old.ID, filepath.Base(strings.TrimSuffix(paths.JSON, extJSON)))
}

// archiveLegacySet copies a lego v4 set (v4 .json, or a key not in PKCS#8)
// to archives/lego-v4/<unix>/certificates/ before it is replaced.
func (s *Store) archiveLegacySet(paths Paths) error {
	legacy := false

	if raw, err := os.ReadFile(paths.JSON); err == nil {
		legacy = isLegacyCertJSON(raw)
	}

	if !legacy {
		if raw, err := os.ReadFile(paths.Key); err == nil {
			_, format, perr := parsePrivateKey(raw)
			legacy = perr != nil || format != formatPKCS8
		}
	}

	if !legacy {
		return nil
	}

	base := strings.TrimSuffix(paths.JSON, extJSON)

	return s.archiveCopies(filepath.Join(s.root, archivesDir, legacyArchive), paths.Cert, paths.Issuer, paths.Key, paths.JSON, paths.PEM, base+extPFX)
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

// matchingStoredKey returns the key file at path as PKCS#8 PEM if it parses
// and matches pub, else nil.
func matchingStoredKey(path string, pub crypto.PublicKey) []byte {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil
	}

	key, _, err := parsePrivateKey(raw)
	if err != nil || !publicKeyMatches(key, pub) {
		return nil
	}

	out, err := encodePKCS8(key)
	if err != nil {
		return nil
	}

	return out
}

// removeFiles removes the files that exist and fsyncs their folders.
func removeFiles(paths ...string) error {
	var dirs []string

	for _, p := range paths {
		err := os.Remove(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}

		if err != nil {
			return fmt.Errorf("storage: remove %q: %w", p, err)
		}

		if d := filepath.Dir(p); !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}

	for _, d := range dirs {
		if err := syncDir(d); err != nil {
			return err
		}
	}

	return nil
}

// LoadCertificate reads the certificate set with this ID, in the lego v5 or
// v4 layout. If its .json does not exist the error wraps fs.ErrNotExist.
// Meta.Legacy is set for a v4 .json; Meta.Domains and Meta.KeyType are filled
// in from the leaf when the .json lacks them. PrivateKey and
// IssuerCertificate are nil when their files are absent.
func (s *Store) LoadCertificate(id string) (*Bundle, error) {
	name, err := checkCertName(id)
	if err != nil {
		return nil, err
	}

	mu := s.lock("cert", name)
	mu.RLock()
	defer mu.RUnlock()

	return s.loadByName(name, id)
}

// loadByName reads the set stored under name; id, if not empty, is used as
// the ID of a v4 set whose .json has no domain.
func (s *Store) loadByName(name, id string) (*Bundle, error) {
	paths := s.certPathsByName(name)

	raw, err := os.ReadFile(paths.JSON)
	if err != nil {
		return nil, fmt.Errorf("storage: certificate %q: %w", name, err)
	}

	b := new(Bundle)
	if err := json.Unmarshal(raw, &b.Meta); err != nil {
		return nil, fmt.Errorf("storage: certificate %q: parse %s: %w", name, filepath.Base(paths.JSON), err)
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

	if b.Certificate, err = os.ReadFile(paths.Cert); err != nil {
		return nil, fmt.Errorf("storage: certificate %q: %w", b.Meta.ID, err)
	}

	if b.IssuerCertificate, err = readOptional(paths.Issuer); err != nil {
		return nil, err
	}

	if b.PrivateKey, err = readOptional(paths.Key); err != nil {
		return nil, err
	}

	if b.WritePEM, err = fileExists(paths.PEM); err != nil {
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

// readOptional reads a file, returning nil without error if it is absent.
func readOptional(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}

	if err != nil {
		return nil, fmt.Errorf("storage: read %q: %w", path, err)
	}

	return data, nil
}

// ListCertificates loads every certificate set whose .json is in
// certificates/, sorted by ID. Temporary files are ignored. Sets that fail to
// load are left out of the slice and reported together in the error; the
// slice is valid even when the error is not nil.
func (s *Store) ListCertificates() ([]*Bundle, error) {
	dir := filepath.Join(s.root, certificatesDir)

	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}

	if err != nil {
		return nil, fmt.Errorf("storage: list %q: %w", dir, err)
	}

	var (
		out  []*Bundle
		errs []error
	)

	for _, e := range entries {
		base := e.Name()
		if !e.Type().IsRegular() || isTempName(base) || !strings.HasSuffix(base, extJSON) {
			continue
		}

		name := strings.TrimSuffix(base, extJSON)

		b, err := s.loadLocked(name)
		if err != nil {
			// Removed between ReadDir and now (archived): not an error.
			if errors.Is(err, fs.ErrNotExist) {
				if ok, _ := fileExists(filepath.Join(dir, base)); !ok {
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

func (s *Store) loadLocked(name string) (*Bundle, error) {
	mu := s.lock("cert", name)
	mu.RLock()
	defer mu.RUnlock()

	return s.loadByName(name, "")
}

// SaveMeta rewrites only the .json of a stored certificate (renewal
// information, last error), atomically; the certificate and key stay as
// they are. The certificate must exist.
func (s *Store) SaveMeta(meta CertMeta) error {
	paths := s.CertPaths(meta.ID)
	mu := s.lock("cert", SanitizedName(meta.ID))
	mu.Lock()
	defer mu.Unlock()
	if _, err := os.Stat(paths.Cert); err != nil {
		return fmt.Errorf("storage: certificate %q: %w", meta.ID, err)
	}
	raw, err := json.MarshalIndent(meta, "", "\t")
	if err != nil {
		return fmt.Errorf("storage: certificate %q: %w", meta.ID, err)
	}
	return writeFileAtomic(paths.JSON, raw)
}
