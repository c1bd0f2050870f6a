// Package storage keeps zoku's accounts and certificates in lego v5's layout
// over a [Backend]: a key/value store with locks, whose keys are the layout's
// relative paths. The file backend ([Files]) maps them onto files, so a lego
// user can point zoku at an existing --path and back again; the etcd backend
// (package etcdstore) holds the same keys for a cluster.
//
//	accounts/<host>/<accountID>/account.json
//	accounts/<host>/<accountID>/<accountID>.key      (PKCS#8 "PRIVATE KEY")
//	certificates/<name>.crt                          (leaf, then issuers)
//	certificates/<name>.issuer.crt
//	certificates/<name>.key                          (PKCS#8 "PRIVATE KEY")
//	certificates/<name>.json
//	archives/certificates/<name>_<unix>.zip           (archived sets)
//
// <host> is the directory URL's host with ':', '/' and '\' replaced by '_';
// <name> is [SanitizedName] of the certificate ID.
//
// The store also reads the lego v4 layout (account keys under keys/, account
// and certificate JSON in the v4 shape, keys in SEC1 or PKCS#1 form). Whenever
// it is about to replace v4 files it first copies them to
// archives/lego-v4/<unix>/<same relative path>, so nothing of a v4 tree
// is ever lost.
//
// Guarantees: a certificate set is validated in full before anything is
// written, and written as one batch with its .json last, so a reader that
// sees the .json sees the rest of the set; a reader that still catches a set
// mid-write (the key of one certificate with another's leaf) reads it again.
// Writes made under a lock ([WithFence]) happen only while the lock is held.
// A Store is safe for concurrent use by goroutines and processes.
package storage

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode"

	"golang.org/x/net/idna"
)

// Folder and file names of the lego v5 layout.
const (
	accountsDir     = "accounts"
	certificatesDir = "certificates"
	archivesDir     = "archives"
	legacyArchive   = "lego-v4" // under archivesDir
	accountFile     = "account.json"
	legacyKeysDir   = "keys" // lego v4 kept account keys in accounts/<host>/<email>/keys/

	extCert   = ".crt"
	extIssuer = ".issuer.crt"
	extKey    = ".key"
	extJSON   = ".json"
	extPEM    = ".pem"
	extPFX    = ".pfx"
)

// DefaultAccountID is the account ID lego uses when neither an explicit ID nor
// an email address is given.
const DefaultAccountID = "noemail@example.com"

// lockStripes is the number of mutexes that guard the files of accounts and
// certificates. Names hash onto a stripe, so unrelated names rarely contend.
const lockStripes = 64

// Store is lego's layout over a Backend. Create it with [New] or [Open];
// the zero value is not usable.
type Store struct {
	b Backend

	// now returns the current time; it names the lego-v4 archive folders.
	// Tests in this package replace it.
	now func() time.Time

	// pfx rewrites an existing .pfx when a save names no options (SetPFX).
	pfx       PFXOptions
	pfxAlways bool

	// locks serialises writers (and readers against writers) of the same
	// account folder or certificate name within this process; other
	// processes are kept apart by the backend's own atomic writes and, for
	// the issuing path, by Backend locks.
	locks [lockStripes]sync.RWMutex
}

// New returns the store over b.
func New(b Backend) *Store {
	return &Store{b: b, now: time.Now}
}

// Open opens the file backend at root with default options and returns the
// store over it.
func Open(root string) (*Store, error) {
	f, err := OpenFiles(root, FilesOptions{})
	if err != nil {
		return nil, err
	}
	return New(f), nil
}

// Backend returns the backend under the store.
func (s *Store) Backend() Backend { return s.b }

// Root returns the folder of a file backend (also under a [Wrapper]), ""
// for other backends.
func (s *Store) Root() string {
	if f, ok := findBackend[*Files](s.b); ok {
		return f.Root()
	}
	return ""
}

// AccountID returns the effective account ID the way lego computes it: the
// explicit id, else the email address, else [DefaultAccountID].
func AccountID(email, id string) string {
	switch {
	case id != "":
		return id
	case email != "":
		return email
	default:
		return DefaultAccountID
	}
}

// SanitizedName turns a certificate ID into the base name of its files, like
// lego does: '*' becomes '_', ':' becomes '-', internationalised names become
// punycode, and every character other than letters, digits, '-', '_', '.' and
// '@' is dropped. For example "*.example.com" becomes "_.example.com".
func SanitizedName(id string) string {
	if name, ok := sanitizedASCII(id); ok {
		return name
	}
	return sanitizedSlow(id)
}

// sanitizedASCII is SanitizedName for the common ID, made only of ASCII
// letters, digits, '-', '_', '.', '@', '*' and ':' and without "--" (which
// an "xn--" label has: punycode decodes and checks those), which punycode
// leaves as it is: a start with 100,000 certificates names each of them
// several times. It reports false for any other ID.
func sanitizedASCII(id string) (string, bool) {
	if strings.Contains(id, "--") {
		return "", false
	}
	replace := false
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '@':
		case c == '*' || c == ':':
			replace = true
		default:
			return "", false
		}
	}
	if !replace {
		return id, true
	}
	return idReplacer.Replace(id), true
}

// idReplacer is the part of lego's sanitising that keeps the character.
var idReplacer = strings.NewReplacer(":", "-", "*", "_")

// sanitizedSlow is SanitizedName for any ID.
func sanitizedSlow(id string) string {
	replaced := idReplacer.Replace(id)

	ascii, err := idna.ToASCII(replaced)
	asciiOnly := false

	if err != nil {
		// lego exits here; zoku keeps going with an ASCII-only name, so an
		// odd ID can never produce a path outside certificates/.
		ascii = replaced
		asciiOnly = true
	}

	var b strings.Builder

	for _, r := range ascii {
		if asciiOnly && r > unicode.MaxASCII {
			continue
		}

		if unicode.IsLetter(r) || unicode.IsNumber(r) || r == '-' || r == '_' || r == '.' || r == '@' {
			b.WriteRune(r)
		}
	}

	return b.String()
}

// Paths holds the file names of one certificate set.
type Paths struct {
	// Cert is <name>.crt: the leaf followed by its issuers.
	Cert string
	// Issuer is <name>.issuer.crt: the issuer chain without the leaf.
	Issuer string
	// Key is <name>.key: the certificate's private key (PKCS#8 PEM).
	Key string
	// JSON is <name>.json: the metadata ([CertMeta]).
	JSON string
	// PEM is <name>.pem: certificate and key in one file (lego's --pem).
	PEM string
	// PFX is <name>.pfx: key, leaf and issuers in PKCS#12 (lego's --pfx).
	PFX string
}

// CertPaths returns the files of the certificate with this ID when the
// backend keeps files ([Pather], also under a [Wrapper]: the files then hold
// what the wrapper wrote, e.g. sealed keys); for other backends every field
// is empty. The files need not exist.
func (s *Store) CertPaths(id string) Paths {
	p, ok := findBackend[Pather](s.b)
	if !ok {
		return Paths{}
	}
	k := certKeysOf(SanitizedName(id))
	return Paths{Cert: p.Path(k.cert), Issuer: p.Path(k.issuer), Key: p.Path(k.key), JSON: p.Path(k.json), PEM: p.Path(k.pem), PFX: p.Path(k.pfx)}
}

// certKeys are the keys of one certificate set.
type certKeys struct {
	cert, issuer, key, json, pem, pfx string
}

func certKeysOf(name string) certKeys {
	base := certificatesDir + "/" + name
	return certKeys{
		cert: base + extCert, issuer: base + extIssuer, key: base + extKey,
		json: base + extJSON, pem: base + extPEM, pfx: base + extPFX,
	}
}

// all lists the keys of the set, the .json first.
func (k certKeys) all() []string {
	return []string{k.json, k.cert, k.issuer, k.key, k.pem, k.pfx}
}

// checkCertName refuses IDs whose file name would be empty or hidden; hidden
// names are reserved for temporary files.
func checkCertName(id string) (string, error) {
	if id == "" {
		return "", errors.New("storage: certificate has an empty ID; set the certificate name (--cert.name) or its domains")
	}

	name := SanitizedName(id)
	if name == "" || strings.HasPrefix(name, ".") {
		return "", fmt.Errorf("storage: certificate ID %q gives the unusable file name %q; choose another --cert.name", id, name)
	}

	return name, nil
}

// serverHost turns a directory URL into the folder name lego uses for it.
func serverHost(server string) (string, error) {
	u, err := url.Parse(server)
	if err != nil {
		return "", fmt.Errorf("storage: invalid server URL %q: %w", server, err)
	}

	if u.Host == "" {
		return "", fmt.Errorf("storage: server URL %q has no host; use the full directory URL, e.g. https://ca.example/dir", server)
	}

	return strings.NewReplacer(":", "_", "/", "_", `\`, "_").Replace(u.Host), nil
}

// checkAccountID refuses account IDs that would escape their folder.
func checkAccountID(id string) error {
	if id == "." || id == ".." || strings.ContainsAny(id, `/\`) || strings.ContainsRune(id, 0) {
		return fmt.Errorf("storage: account ID %q cannot be used as a folder name; choose another --account-id", id)
	}

	return nil
}

// lock returns the mutex that guards the named object.
func (s *Store) lock(kind, name string) *sync.RWMutex {
	h := fnv.New32a()
	_, _ = h.Write([]byte(kind))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(name))

	return &s.locks[h.Sum32()%lockStripes]
}
