package embedca

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/letsencrypt/pebble/v2/core"

	"github.com/zoku/zoku/internal/storage"
)

// Pebble's endpoints the ledger watches (its wfe package keeps the
// constants unexported).
const (
	certPathPrefix   = "/certZ/"
	revokeCertPath   = "/revoke-cert"
	accountPathInKID = "/my-account/"
)

// issuedDir is the ledger's folder inside the StateDir.
const issuedDir = "issued"

// maxRevokeBody bounds the revocation requests the ledger reads.
const maxRevokeBody = 1 << 20

// ledger remembers, across restarts, which certificates the CA handed out
// and the key of the account that ordered each: one small JSON file per
// certificate in <StateDir>/issued/, public data only, removed once the
// certificate has expired. Pebble forgets everything at exit; with the
// ledger a certificate of an earlier run can still be revoked.
type ledger struct {
	dir string
	log *slog.Logger

	mu   sync.Mutex
	seen map[string]bool // guarded by mu; IDs already recorded
}

// ledgerEntry is one file of the ledger.
type ledgerEntry struct {
	NotAfter time.Time `json:"notAfter"`
	// SHA256 is the certificate's DER digest, hex.
	SHA256 string `json:"sha256"`
	// AccountKey is the SHA-256 of the ordering account's public key
	// (SubjectPublicKeyInfo), hex.
	AccountKey string `json:"accountKey"`
}

// openLedger creates dir/issued (0700) and removes the entries of
// certificates expired before now.
func openLedger(stateDir string, now time.Time, logger *slog.Logger) (*ledger, error) {
	l := &ledger{dir: filepath.Join(stateDir, issuedDir), log: logger, seen: map[string]bool{}}
	if err := os.MkdirAll(l.dir, 0o700); err != nil {
		return nil, fmt.Errorf("embedca: create %s: %w", l.dir, err)
	}
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return nil, fmt.Errorf("embedca: read %s: %w", l.dir, err)
	}
	for _, de := range entries {
		name := de.Name()
		if de.IsDir() || !strings.HasSuffix(name, ".json") {
			continue
		}
		e, err := l.read(strings.TrimSuffix(name, ".json"))
		if err == nil && now.Before(e.NotAfter) {
			continue
		}
		// Expired, or unreadable (a record is only a convenience).
		if rerr := os.Remove(filepath.Join(l.dir, name)); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			logger.Debug("embedded CA: could not remove an old issuance record", "file", name, "error", rerr)
		}
	}
	return l, nil
}

// keyDigest is the hex SHA-256 of a public key's SubjectPublicKeyInfo.
func keyDigest(pub crypto.PublicKey) (string, error) {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(spki)
	return hex.EncodeToString(sum[:]), nil
}

// record writes the entry of cert, ordered by acct, unless already done.
func (l *ledger) record(cert *core.Certificate, acct *core.Account) {
	l.mu.Lock()
	done := l.seen[cert.ID]
	l.seen[cert.ID] = true
	l.mu.Unlock()
	if done || acct == nil || acct.Key == nil || cert.Cert == nil {
		return
	}
	ak, err := keyDigest(acct.Key.Key)
	if err != nil {
		l.log.Debug("embedded CA: cannot record the ordering account", "serial", cert.ID, "error", err)
		return
	}
	sum := sha256.Sum256(cert.DER)
	data, _ := json.Marshal(ledgerEntry{NotAfter: cert.Cert.NotAfter.UTC(), SHA256: hex.EncodeToString(sum[:]), AccountKey: ak})
	if err := storage.WriteFile(filepath.Join(l.dir, cert.ID+".json"), data); err != nil {
		// The certificate is fine; only a later run's revocation of it
		// would fail.
		l.log.Warn("embedded CA: could not record an issued certificate", "serial", cert.ID, "error", err)
	}
}

// read returns the entry for a certificate ID (Pebble's hex serial).
func (l *ledger) read(id string) (*ledgerEntry, error) {
	if id == "" || strings.Trim(id, "0123456789abcdef") != "" {
		return nil, fs.ErrNotExist
	}
	data, err := os.ReadFile(filepath.Join(l.dir, id+".json"))
	if err != nil {
		return nil, err
	}
	var e ledgerEntry
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// afterCertificate records the certificate a POST-as-GET to /certZ/<id>
// asked for, once Pebble has answered it.
func (c *CA) afterCertificate(r *http.Request) {
	if c.ledger == nil || r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, certPathPrefix) {
		return
	}
	id, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, certPathPrefix), "/")
	cert := c.db.GetCertificateByID(id)
	if cert == nil {
		return
	}
	c.ledger.record(cert, c.db.GetAccountByID(cert.AccountID))
}

// beforeRevoke gives Pebble back a certificate that an earlier run of this
// CA issued, so that its revocation can proceed: it must be in the ledger
// with the same DER. It is owned by the requesting account when that
// account's key is the one that ordered it; otherwise only the
// certificate's own key can revoke it. The JWS is not verified here;
// Pebble does that next, and a forged request only puts a certificate
// this CA issued back into its database.
func (c *CA) beforeRevoke(r *http.Request) {
	if c.ledger == nil || r.Method != http.MethodPost || r.URL.Path != revokeCertPath {
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRevokeBody))
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return
	}
	kid, der := decodeRevocation(body)
	if der == nil || c.db.GetCertificateByDER(der) != nil || c.db.GetRevokedCertificateByDER(der) != nil {
		return
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return
	}
	id := hex.EncodeToString(cert.SerialNumber.Bytes())
	e, err := c.ledger.read(id)
	sum := sha256.Sum256(der)
	if err != nil || e.SHA256 != hex.EncodeToString(sum[:]) {
		return
	}
	owner := ""
	if u, err := url.Parse(kid); err == nil && strings.HasPrefix(u.Path, accountPathInKID) {
		if acct := c.db.GetAccountByID(path.Base(u.Path)); acct != nil && acct.Key != nil {
			if ak, err := keyDigest(acct.Key.Key); err == nil && ak == e.AccountKey {
				owner = acct.ID
			}
		}
	}
	if _, err := c.db.AddCertificate(&core.Certificate{ID: id, Cert: cert, DER: der, AccountID: owner}); err == nil {
		c.log.Info("embedded CA: certificate of an earlier run taken back for revocation", "serial", id, "owner_matches", owner != "")
	}
}

// decodeRevocation reads the kid and the certificate of a revokeCert JWS
// without verifying it.
func decodeRevocation(body []byte) (kid string, der []byte) {
	var jws struct {
		Protected string `json:"protected"`
		Payload   string `json:"payload"`
	}
	if json.Unmarshal(body, &jws) != nil {
		return "", nil
	}
	dec := func(s string) []byte {
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
		if err != nil {
			return nil
		}
		return b
	}
	var hdr struct {
		KID string `json:"kid"`
	}
	_ = json.Unmarshal(dec(jws.Protected), &hdr)
	var req struct {
		Certificate string `json:"certificate"`
	}
	if json.Unmarshal(dec(jws.Payload), &req) != nil {
		return hdr.KID, nil
	}
	return hdr.KID, dec(req.Certificate)
}
