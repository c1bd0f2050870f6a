package sealed

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
)

// KeySize is the length of a storage key: AES-256.
const KeySize = 32

// maxKeyFile bounds what LoadKeyFile reads: a key file holds 32 bytes, or
// their base64 or hex text, and a line break.
const maxKeyFile = 4 << 10

// idContext is hashed with the key to make its ID, so the ID reveals
// nothing about the key.
const idContext = "zoku storage key id v1"

// Key is a storage key: AES-256-GCM and the key's ID, the first 16 hex
// digits of an HMAC-SHA-256 of a fixed text under the key. The ID is
// written into every sealed value, so a value names the key it needs
// without telling anything about it. A Key is safe for concurrent use.
type Key struct {
	id   string
	aead cipher.AEAD
}

// NewKey returns the key of raw, which must be exactly KeySize bytes.
func NewKey(raw []byte) (*Key, error) {
	if len(raw) != KeySize {
		return nil, fmt.Errorf("sealed: a storage key is %d bytes, not %d; make one with 'zoku storage keygen FILE' (or: openssl rand -base64 32)", KeySize, len(raw))
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, fmt.Errorf("sealed: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("sealed: %w", err)
	}
	mac := hmac.New(sha256.New, raw)
	mac.Write([]byte(idContext))
	return &Key{id: hex.EncodeToString(mac.Sum(nil)[:8]), aead: aead}, nil
}

// ID is the key's public name (16 hex digits), as written in the values
// it seals.
func (k *Key) ID() string { return k.id }

// String is "storage key <ID>"; a Key never prints its bytes.
func (k *Key) String() string { return "storage key " + k.id }

// GoString hides the key from %#v too.
func (k *Key) GoString() string { return k.String() }

// ParseKey reads a key in any of the forms people keep one: exactly 32
// raw bytes, or their base64 (standard or URL alphabet, padded or not) or
// hex text, with white space around it. 32 bytes that are all printable
// text are read as text, not as a raw key: random bytes are that only
// once in 10^13 tries, while a typed passphrase or a 24-byte key in
// base64 is that always, and neither is a key. The error says how long
// the key turned out to be and never shows it.
func ParseKey(data []byte) (*Key, error) {
	if len(data) == KeySize && !printable(data) {
		return NewKey(data)
	}
	text := bytes.TrimSpace(data)
	if len(text) == 0 {
		return nil, errors.New("sealed: the storage key is empty; make one with 'zoku storage keygen FILE' (or: openssl rand -base64 32)")
	}
	if len(text) == 2*KeySize {
		if raw, err := hex.DecodeString(string(text)); err == nil {
			return NewKey(raw)
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		raw, err := enc.DecodeString(string(text))
		if err != nil {
			continue
		}
		if len(raw) != KeySize {
			return nil, fmt.Errorf("sealed: the storage key decodes (base64) to %d bytes; a key is %d bytes: make one with 'zoku storage keygen FILE' (or: openssl rand -base64 32)", len(raw), KeySize)
		}
		return NewKey(raw)
	}
	return nil, fmt.Errorf("sealed: the storage key (%d bytes) is neither %d raw bytes nor their base64 or hex text; make one with 'zoku storage keygen FILE' (or: openssl rand -base64 32)", len(data), KeySize)
}

// LoadKeyFile reads and parses the key file at path. Errors name the
// file, never its content.
func LoadKeyFile(path string) (*Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("sealed: cannot read the storage key file %s: %w", path, pathErr(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("sealed: cannot read the storage key file %s: %w", path, pathErr(err))
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("sealed: the storage key file %s is over %d bytes; a key file holds 32 bytes or their base64 text", path, maxKeyFile)
	}
	k, err := ParseKey(data)
	if err != nil {
		return nil, fmt.Errorf("%w (file %s)", err, path)
	}
	return k, nil
}

// printable reports whether every byte of b is printable ASCII or white
// space.
func printable(b []byte) bool {
	for _, c := range b {
		if (c < 0x20 || c > 0x7e) && c != '\n' && c != '\r' && c != '\t' {
			return false
		}
	}
	return true
}

// GenerateKey returns a new random key as base64 text with a line break,
// the form LoadKeyFile and ParseKey read.
func GenerateKey() ([]byte, error) {
	raw := make([]byte, KeySize)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("sealed: generate a key: %w", err)
	}
	out := base64.StdEncoding.AppendEncode(nil, raw)
	return append(out, '\n'), nil
}

// pathErr drops the path from an *fs.PathError (the message has it).
func pathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
