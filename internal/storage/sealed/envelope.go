package sealed

import (
	"bytes"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// The envelope of a sealed value is a PEM block, so that a person who
// opens the file sees what it is and which key it needs:
//
//	-----BEGIN ZOKU SEALED VALUE-----
//	Key-Id: 3f9a1c22e07b4d15
//	Version: 1
//
//	<base64 of the 12-byte nonce, then the AES-256-GCM ciphertext and tag>
//	-----END ZOKU SEALED VALUE-----
//
// The associated data of the cipher is the version, the key ID and the
// storage key the value is stored under: a sealed value copied (or moved
// by an attacker) to another key does not open there, and neither does a
// value whose header was edited.
const (
	pemType     = "ZOKU SEALED VALUE"
	hdrVersion  = "Version"
	hdrKeyID    = "Key-Id"
	version1    = "1"
	nonceSize   = 12
	tagSize     = 16
	aadContext  = "zoku sealed value"
	sealedBegin = "-----BEGIN " + pemType + "-----"
)

// Errors of Open, for errors.Is; the messages of the errors returned
// name the storage key and the fix.
var (
	// ErrNoKey: the value is sealed and no key was given.
	ErrNoKey = errors.New("sealed: no storage key configured")
	// ErrWrongKey: the value is sealed with another key than the one
	// given.
	ErrWrongKey = errors.New("sealed: sealed with another storage key")
	// ErrCorrupt: the value does not open (altered, truncated, or stored
	// under another key than the one it was sealed for).
	ErrCorrupt = errors.New("sealed: the sealed value does not open")
)

// IsSealed reports whether value is in a sealed envelope (it may still
// turn out malformed when opened).
func IsSealed(value []byte) bool {
	return bytes.HasPrefix(value, []byte(sealedBegin))
}

// KeyIDOf returns the key ID written in a sealed value's envelope; ok is
// false when value is not a well-formed envelope.
func KeyIDOf(value []byte) (id string, ok bool) {
	env, err := parse(value)
	if err != nil {
		return "", false
	}
	return env.keyID, true
}

// Seal seals plaintext for storage key name under k.
func Seal(k *Key, name string, plaintext []byte) ([]byte, error) {
	nonce := make([]byte, nonceSize, nonceSize+len(plaintext)+tagSize)
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("sealed: %s: random nonce: %w", name, err)
	}
	body := k.aead.Seal(nonce, nonce, plaintext, aad(version1, k.id, name))
	return pem.EncodeToMemory(&pem.Block{
		Type:    pemType,
		Headers: map[string]string{hdrVersion: version1, hdrKeyID: k.id},
		Bytes:   body,
	}), nil
}

// Open returns the plaintext of a value stored under name: a sealed
// value is opened with k (nil k fails with ErrNoKey when the value is
// sealed); any other value is returned as it is. Errors name the storage
// key and the key ID, never any content.
func Open(k *Key, name string, value []byte) ([]byte, error) {
	if !IsSealed(value) {
		return value, nil
	}
	env, err := parse(value)
	if err != nil {
		return nil, fmt.Errorf("%w: %s looks encrypted but its envelope is malformed (%v); restore it from a backup", ErrCorrupt, name, err)
	}
	if k == nil {
		return nil, fmt.Errorf("%w: %s is encrypted with storage key %s; configure that key (storage.encryption in the config, ZOKU_STORAGE_KEY_FILE for commands, --from-key for zoku storage copy)", ErrNoKey, name, env.keyID)
	}
	if env.keyID != k.id {
		return nil, fmt.Errorf("%w: %s is encrypted with storage key %s, but the key configured is %s; configure key %s (zoku storage copy re-encrypts a storage with another key)", ErrWrongKey, name, env.keyID, k.id, env.keyID)
	}
	plain, err := k.aead.Open(nil, env.body[:nonceSize], env.body[nonceSize:], aad(env.version, env.keyID, name))
	if err != nil {
		return nil, fmt.Errorf("%w: %s does not decrypt with storage key %s: it was altered, or copied from another key's place; restore it from a backup", ErrCorrupt, name, k.id)
	}
	return plain, nil
}

// envelope is a parsed sealed value.
type envelope struct {
	version, keyID string
	body           []byte // nonce, ciphertext, tag
}

// parse checks the envelope strictly: one PEM block of the right type
// with exactly the known headers, nothing but white space after it.
func parse(value []byte) (*envelope, error) {
	if !IsSealed(value) {
		return nil, errors.New("no sealed envelope")
	}
	block, rest := pem.Decode(value)
	if block == nil || block.Type != pemType {
		return nil, errors.New("not a PEM block")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("data after the envelope")
	}
	v, id := block.Headers[hdrVersion], block.Headers[hdrKeyID]
	if len(block.Headers) != 2 || v == "" || id == "" {
		return nil, errors.New("headers other than Version and Key-Id")
	}
	if v != version1 {
		return nil, fmt.Errorf("version %q, this zoku reads version %s; upgrade zoku", clip(v), version1)
	}
	if len(id) != 16 || strings.Trim(id, "0123456789abcdef") != "" {
		return nil, errors.New("a key ID that is not 16 hex digits")
	}
	if len(block.Bytes) < nonceSize+tagSize {
		return nil, errors.New("too short")
	}
	return &envelope{version: v, keyID: id, body: block.Bytes}, nil
}

// aad is the associated data: what a sealed value is bound to.
func aad(version, keyID, name string) []byte {
	return []byte(aadContext + "\x00" + version + "\x00" + keyID + "\x00" + name)
}

// clip shortens a header value for a message.
func clip(s string) string {
	if len(s) > 16 {
		return s[:16] + "…"
	}
	return s
}
