// Package storage is zoku's file store for ACME accounts and certificates.
//
// The on-disk layout is the one the lego v5 CLI uses, so a lego user can point
// zoku at an existing --path and back again:
//
//	<root>/accounts/<host>/<accountID>/account.json
//	<root>/accounts/<host>/<accountID>/<accountID>.key      (PKCS#8 "PRIVATE KEY")
//	<root>/certificates/<name>.crt                          (leaf, then issuers)
//	<root>/certificates/<name>.issuer.crt
//	<root>/certificates/<name>.key                          (PKCS#8 "PRIVATE KEY")
//	<root>/certificates/<name>.json
//	<root>/archives/certificates/<name>_<unix>.zip           (archived sets)
//
// <host> is the directory URL's host with ':', '/' and '\' replaced by '_';
// <name> is [SanitizedName] of the certificate ID.
//
// The store also reads the lego v4 layout (account keys under keys/, account
// and certificate JSON in the v4 shape, keys in SEC1 or PKCS#1 form). Whenever
// it is about to replace v4 files it first copies them to
// <root>/archives/lego-v4/<unix>/<same relative path>, so nothing of a v4 tree
// is ever lost.
//
// Guarantees: every write goes to a temporary file in the target folder, which
// is fsynced and then renamed into place; the folder is fsynced afterwards.
// Files are created 0600 and folders 0700. A certificate set is validated in
// full before anything is written, and its .json is renamed last, so a reader
// that sees the .json sees the rest of the set. A Store is safe for concurrent
// use by goroutines of one process; it does not lock against other processes
// (such as the lego CLI) writing the same folder at the same moment.
package storage

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net/url"
	"os"
	"path/filepath"
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

// Store is a lego-compatible file store rooted at one folder. Create it with
// [Open]; the zero value is not usable.
type Store struct {
	root string

	// now returns the current time; it names the lego-v4 archive folders.
	// Tests in this package replace it.
	now func() time.Time

	// locks serialises writers (and readers against writers) of the same
	// account folder or certificate name within this process.
	locks [lockStripes]sync.RWMutex
}

// Open opens the store at root, creating the folder with mode 0700 if it is
// missing, and proves it is writable by creating and removing a temporary
// file. The error names the path and suggests choosing another --path.
func Open(root string) (*Store, error) {
	if root == "" {
		return nil, errors.New("storage: empty path; set --path to a writable folder")
	}

	root = filepath.Clean(root)

	if err := probeWritable(root); err != nil {
		return nil, fmt.Errorf("storage: path %q is not writable: %w; choose another --path or fix its permissions", root, err)
	}

	return &Store{root: root, now: time.Now}, nil
}

// probeWritable creates root if needed and creates and removes a temp file in it.
func probeWritable(root string) error {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return err
	}

	info, err := os.Stat(root)
	if err != nil {
		return err
	}

	if !info.IsDir() {
		return errors.New("not a directory")
	}

	f, err := os.CreateTemp(root, ".zoku-probe-*")
	if err != nil {
		return err
	}

	name := f.Name()
	closeErr := f.Close()
	removeErr := os.Remove(name)

	return errors.Join(closeErr, removeErr)
}

// Root returns the folder the store was opened on (cleaned).
func (s *Store) Root() string {
	return s.root
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
	replaced := strings.NewReplacer(":", "-", "*", "_").Replace(id)

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
}

// CertPaths returns the paths of the files of the certificate with this ID.
// The files need not exist.
func (s *Store) CertPaths(id string) Paths {
	return s.certPathsByName(SanitizedName(id))
}

func (s *Store) certPathsByName(name string) Paths {
	base := filepath.Join(s.root, certificatesDir, name)

	return Paths{
		Cert:   base + extCert,
		Issuer: base + extIssuer,
		Key:    base + extKey,
		JSON:   base + extJSON,
		PEM:    base + extPEM,
	}
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
