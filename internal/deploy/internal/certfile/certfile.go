// Package certfile splits a stored certificate set into the parts load
// balancers want, and writes files the way a deploy needs: atomically, with
// a backup that can be put back when the new file is refused.
package certfile

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"

	"github.com/zoku/zoku/internal/storage"
)

// Parts is a certificate set split up.
type Parts struct {
	// Leaf is the end-entity certificate; Chain its issuers, nearest first.
	Leaf  *x509.Certificate
	Chain []*x509.Certificate
	// LeafPEM, ChainPEM (issuers only), FullchainPEM (leaf then issuers)
	// and KeyPEM are PEM encoded, one block after the other with no blank
	// lines.
	LeafPEM, ChainPEM, FullchainPEM, KeyPEM []byte
}

// Split parses b. It fails when there is no certificate or no key; it does
// not check that they match (the appliance does, and must refuse).
func Split(b *storage.Bundle) (*Parts, error) {
	certs, err := parseCerts(b.Certificate)
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", b.Meta.ID, err)
	}
	if len(certs) == 1 && len(b.IssuerCertificate) > 0 {
		issuers, err := parseCerts(b.IssuerCertificate)
		if err != nil {
			return nil, fmt.Errorf("certificate %s: issuer: %w", b.Meta.ID, err)
		}
		certs = append(certs, issuers...)
	}
	keyBlock, _ := pem.Decode(b.PrivateKey)
	if keyBlock == nil || !strings.Contains(keyBlock.Type, "PRIVATE KEY") {
		return nil, fmt.Errorf("certificate %s has no private key stored (ordered from a CSR?); a deploy needs the key", b.Meta.ID)
	}
	p := &Parts{Leaf: certs[0], Chain: certs[1:], KeyPEM: pem.EncodeToMemory(keyBlock)}
	p.LeafPEM = encode(certs[:1])
	p.ChainPEM = encode(certs[1:])
	p.FullchainPEM = encode(certs)
	return p, nil
}

func parseCerts(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var blk *pem.Block
		blk, data = pem.Decode(data)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate")
	}
	return certs, nil
}

// PEM encodes certificates, one block after the other.
func PEM(certs ...*x509.Certificate) []byte { return encode(certs) }

func encode(certs []*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.Bytes()
}

// SerialHex is a serial number as appliances print it: upper-case hex
// without separators.
func SerialHex(n *big.Int) string {
	if n == nil {
		return ""
	}
	return strings.ToUpper(n.Text(16))
}

// ParseSerial reads a hex serial with or without ':' separators and
// leading zeros ("04:D3", "04D3" and "4d3" are equal); ok is false for
// anything else.
func ParseSerial(s string) (*big.Int, bool) {
	s = strings.ReplaceAll(strings.TrimSpace(s), ":", "")
	if s == "" {
		return nil, false
	}
	return new(big.Int).SetString(s, 16)
}

// WriteAtomic replaces path with data: a temporary file in the same folder
// with mode perm, fsync, rename, fsync of the folder. Missing folders are
// created 0755 (a web server must reach a webroot; keys are protected by
// their own mode).
func WriteAtomic(path string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	werr := func() error {
		if err := f.Chmod(perm); err != nil {
			return err
		}
		if _, err := f.Write(data); err != nil {
			return err
		}
		return f.Sync()
	}()
	if err := errors.Join(werr, f.Close()); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

// Backup is a file's content before a deploy replaced it.
type Backup struct {
	path    string
	data    []byte
	perm    fs.FileMode
	existed bool
}

// Save reads path so it can be restored; a missing file is restored by
// removing it.
func Save(path string) (*Backup, error) {
	b := &Backup{path: path}
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return b, nil
	}
	if err != nil {
		return nil, err
	}
	if b.data, err = os.ReadFile(path); err != nil {
		return nil, err
	}
	b.perm, b.existed = fi.Mode().Perm(), true
	return b, nil
}

// Existed reports whether the file was there before.
func (b *Backup) Existed() bool { return b.existed }

// Data is the saved content (nil when the file did not exist).
func (b *Backup) Data() []byte { return b.data }

// Restore puts the saved content back, or removes the file if there was
// none.
func (b *Backup) Restore() error {
	if !b.existed {
		if err := os.Remove(b.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	return WriteAtomic(b.path, b.data, b.perm)
}
