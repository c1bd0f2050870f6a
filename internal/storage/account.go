package storage

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"

	"github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/registration"
)

// Account is an ACME account as lego v5 stores it in account.json, plus its
// private key. It implements lego's registration.User.
type Account struct {
	// ID is the effective account ID (see [AccountID]); it names the folder.
	ID string `json:"id"`
	// Email is the contact address, may be empty.
	Email string `json:"email"`
	// KeyType is the account key's type (EC256, RSA2048, ...).
	KeyType certcrypto.KeyType `json:"keyType"`
	// Server is the full ACME directory URL.
	Server string `json:"server"`
	// Origin records how the account was created ("command",
	// "configuration" or "migration" in lego); empty is allowed.
	Origin string `json:"origin,omitempty"`
	// Registration is the CA's account object and URL; nil means the key
	// exists but the account is not (or no longer) registered.
	Registration *acme.ExtendedAccount `json:"registration"`

	// Key is the account's private key, stored in <ID>.key; never in JSON.
	Key crypto.Signer `json:"-"`
	// Legacy is true when the account was read from the lego v4 layout.
	Legacy bool `json:"-"`
}

var _ registration.User = (*Account)(nil)

// GetEmail returns the account's email address (registration.User).
func (a *Account) GetEmail() string { return a.Email }

// GetRegistration returns the CA's registration, nil if not registered
// (registration.User).
func (a *Account) GetRegistration() *acme.ExtendedAccount { return a.Registration }

// GetPrivateKey returns the account key (registration.User).
func (a *Account) GetPrivateKey() crypto.Signer { return a.Key }

// legacyAccount is the account.json of lego v4.
type legacyAccount struct {
	Email        string `json:"email"`
	Registration *struct {
		Body acme.Account `json:"body"`
		URI  string       `json:"uri"`
	} `json:"registration"`
}

// accountDir returns the key prefix accounts/<host>/<id> for a server and
// effective ID.
func accountDir(server, id string) (string, error) {
	host, err := serverHost(server)
	if err != nil {
		return "", err
	}

	if err := checkAccountID(id); err != nil {
		return "", err
	}

	return accountsDir + "/" + host + "/" + id, nil
}

// LoadAccount reads the account with the effective ID accountID (see
// [AccountID]; empty means [DefaultAccountID]) of the CA at server, the full
// directory URL. It reads the lego v5 layout first and falls back to the v4
// layout (Legacy is then true). If nothing is stored the error wraps
// fs.ErrNotExist.
//
// If the key exists without an account.json (lego stops between writing the
// two), the Account has Key set and Registration nil: register or recover the
// account with that key rather than creating a new one.
func (s *Store) LoadAccount(ctx context.Context, server, accountID string) (*Account, error) {
	id := AccountID("", accountID)

	dir, err := accountDir(server, id)
	if err != nil {
		return nil, err
	}

	mu := s.lock("account", dir)
	mu.RLock()
	defer mu.RUnlock()

	return s.loadAccount(ctx, dir, server, id)
}

func (s *Store) loadAccount(ctx context.Context, dir, server, id string) (*Account, error) {
	raw, err := s.b.Load(ctx, dir+"/"+accountFile)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("storage: read account %q: %w", id, err)
	}

	jsonMissing := err != nil

	key, keyErr := s.readAccountKey(ctx, dir, id)
	if keyErr != nil && !errors.Is(keyErr, fs.ErrNotExist) {
		return nil, fmt.Errorf("storage: account %q: %w", id, keyErr)
	}

	if jsonMissing {
		if keyErr != nil {
			return nil, fmt.Errorf("storage: no account %q for %s: %w", id, server, fs.ErrNotExist)
		}

		return newKeyOnlyAccount(id, server, key), nil
	}

	if keyErr != nil {
		// A registration is useless without its key; report it as missing
		// so the caller creates a new account.
		return nil, fmt.Errorf("storage: account %q for %s has no key file: %w", id, server, keyErr)
	}

	acct, err := decodeAccount(raw, id, server)
	if err != nil {
		return nil, err
	}

	acct.Key = key

	if acct.KeyType == "" {
		acct.KeyType, _ = certcrypto.GetKeyType(key.Public())
	}

	return acct, nil
}

func newKeyOnlyAccount(id, server string, key crypto.Signer) *Account {
	kt, _ := certcrypto.GetKeyType(key.Public())

	return &Account{ID: id, KeyType: kt, Server: server, Key: key}
}

// decodeAccount parses a v5 or v4 account.json.
func decodeAccount(raw []byte, id, server string) (*Account, error) {
	legacy, err := isLegacyAccountJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("storage: account %q: parse account.json: %w", id, err)
	}

	if !legacy {
		acct := new(Account)
		if err := json.Unmarshal(raw, acct); err != nil {
			return nil, fmt.Errorf("storage: account %q: parse account.json: %w", id, err)
		}

		if acct.ID == "" {
			acct.ID = id
		}

		if acct.Server == "" {
			acct.Server = server
		}

		return acct, nil
	}

	var old legacyAccount
	if err := json.Unmarshal(raw, &old); err != nil {
		return nil, fmt.Errorf("storage: account %q: parse lego v4 account.json: %w", id, err)
	}

	acct := &Account{ID: id, Email: old.Email, Server: server, Legacy: true}
	if old.Registration != nil {
		acct.Registration = &acme.ExtendedAccount{Account: old.Registration.Body, Location: old.Registration.URI}
	}

	return acct, nil
}

// isLegacyAccountJSON tells a lego v4 account.json from a v5 one: v4 nests the
// account under registration.body and has no id, server or keyType.
func isLegacyAccountJSON(raw []byte) (bool, error) {
	var probe struct {
		ID           *string         `json:"id"`
		Server       *string         `json:"server"`
		KeyType      *string         `json:"keyType"`
		Registration json.RawMessage `json:"registration"`
	}

	if err := json.Unmarshal(raw, &probe); err != nil {
		return false, err
	}

	if len(probe.Registration) != 0 && !bytes.Equal(probe.Registration, []byte("null")) {
		var reg map[string]json.RawMessage
		if err := json.Unmarshal(probe.Registration, &reg); err != nil {
			return false, err
		}

		if _, ok := reg["body"]; ok {
			return true, nil
		}

		if _, ok := reg["uri"]; ok {
			return true, nil
		}
	}

	return probe.ID == nil && probe.Server == nil && probe.KeyType == nil, nil
}

// readAccountKey reads <dir>/<id>.key, else the v4 <dir>/keys/<id>.key.
func (s *Store) readAccountKey(ctx context.Context, dir, id string) (crypto.Signer, error) {
	for _, p := range []string{
		dir + "/" + id + extKey,
		dir + "/" + legacyKeysDir + "/" + id + extKey,
	} {
		data, err := s.b.Load(ctx, p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}

		if err != nil {
			return nil, fmt.Errorf("read key file %q: %w", p, err)
		}

		key, _, err := parsePrivateKey(data)
		if err != nil {
			return nil, fmt.Errorf("key file %q: %w", p, err)
		}

		return key, nil
	}

	return nil, fmt.Errorf("no key file: %w", fs.ErrNotExist)
}

// SaveAccount writes the account in the lego v5 layout: the key as PKCS#8 in
// <ID>.key, then account.json, each atomically. An empty ID is filled in from
// [AccountID]; an empty KeyType from the key.
//
// Before replacing anything it archives what it would overwrite: a lego v4
// account.json at the same path is copied, together with the v4 keys/ folder,
// to archives/lego-v4/<unix>/accounts/...; a different v5 key is copied to
// archives/accounts/<unix>/... . The v4 keys/ folder itself stays in place.
func (s *Store) SaveAccount(ctx context.Context, a *Account) error {
	if a == nil {
		return errors.New("storage: nil account")
	}

	if a.Key == nil {
		return fmt.Errorf("storage: account %q has no private key; generate one before saving", AccountID(a.Email, a.ID))
	}

	acct := *a
	acct.ID = AccountID(a.Email, a.ID)

	if acct.KeyType == "" {
		kt, err := certcrypto.GetKeyType(acct.Key.Public())
		if err != nil {
			return fmt.Errorf("storage: account %q: %w", acct.ID, err)
		}

		acct.KeyType = kt
	}

	keyPEM, err := encodePKCS8(acct.Key)
	if err != nil {
		return fmt.Errorf("storage: account %q: %w", acct.ID, err)
	}

	body, err := json.MarshalIndent(&acct, "", "\t")
	if err != nil {
		return fmt.Errorf("storage: account %q: encode account.json: %w", acct.ID, err)
	}

	dir, err := accountDir(acct.Server, acct.ID)
	if err != nil {
		return err
	}

	mu := s.lock("account", dir)
	mu.Lock()
	defer mu.Unlock()

	if err := s.archiveReplacedAccount(ctx, dir, acct.ID, acct.Key); err != nil {
		return err
	}

	return storeAll(ctx, s.b, []Op{
		{Key: dir + "/" + acct.ID + extKey, Value: keyPEM},
		{Key: dir + "/" + accountFile, Value: append(body, '\n')},
	})
}

// archiveReplacedAccount copies files that SaveAccount is about to replace:
// a v4 account (account.json and keys/) to archives/lego-v4/<unix>/..., or a
// v5 account whose key differs from newKey to archives/accounts/<unix>/...
// (see archiveCopies).
func (s *Store) archiveReplacedAccount(ctx context.Context, dir, id string, newKey crypto.Signer) error {
	jsonKey := dir + "/" + accountFile

	raw, err := s.loadOptional(ctx, jsonKey)
	if err != nil {
		return fmt.Errorf("storage: read account %q: %w", id, err)
	}

	if raw != nil {
		legacy, perr := isLegacyAccountJSON(raw)
		if perr == nil && legacy {
			return s.archiveTree(ctx, dir, archivesDir+"/"+legacyArchive)
		}
	}

	keyKey := dir + "/" + id + extKey

	old, err := s.loadOptional(ctx, keyKey)
	if err != nil {
		return fmt.Errorf("storage: read account key of %q: %w", id, err)
	}

	if old == nil {
		return nil
	}

	if oldKey, _, perr := parsePrivateKey(old); perr == nil && publicKeyMatches(oldKey, newKey.Public()) {
		return nil
	}

	return s.archiveCopies(ctx, archivesDir+"/"+accountsDir, jsonKey, keyKey)
}
