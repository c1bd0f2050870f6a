package sealed_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zoku/zoku/internal/storage/sealed"
)

func TestParseKey(t *testing.T) {
	raw := bytes.Repeat([]byte{0xa5}, 32)
	raw[0], raw[31] = ' ', '\n' // white space at both ends of a raw key stays key
	want, err := sealed.NewKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		err  string
	}{
		{name: "raw", in: raw},
		{name: "base64", in: []byte(base64.StdEncoding.EncodeToString(raw) + "\n")},
		{name: "base64 unpadded", in: []byte(base64.RawStdEncoding.EncodeToString(raw))},
		{name: "base64 URL", in: []byte("  " + base64.URLEncoding.EncodeToString(raw) + "\r\n")},
		{name: "hex", in: []byte(hex.EncodeToString(raw) + "\n")},
		{name: "empty", in: []byte(" \n"), err: "the storage key is empty"},
		{name: "16 bytes base64", in: []byte(base64.StdEncoding.EncodeToString(raw[:16])), err: "decodes (base64) to 16 bytes; a key is 32 bytes"},
		{name: "33 raw bytes", in: append(bytes.Repeat([]byte{0xa5}, 32), 0xa5), err: "neither 32 raw bytes nor their base64 or hex text"},
		{name: "a password", in: []byte("correct horse battery staple"), err: "neither 32 raw bytes"},
		{name: "a 32-character passphrase", in: []byte("correct horse battery staple 123"), err: "neither 32 raw bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := sealed.ParseKey(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseKey: %v, want an error containing %q", err, tc.err)
				}
				if s := strings.TrimSpace(string(tc.in)); len(s) > 4 && strings.Contains(err.Error(), s) {
					t.Errorf("the error shows the key: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseKey: %v", err)
			}
			if k.ID() != want.ID() {
				t.Errorf("ID %s, want %s", k.ID(), want.ID())
			}
		})
	}
}

func TestKeyIDAndPrinting(t *testing.T) {
	a, _ := sealed.NewKey(bytes.Repeat([]byte{1}, 32))
	b, _ := sealed.NewKey(bytes.Repeat([]byte{2}, 32))
	if a.ID() == b.ID() || len(a.ID()) != 16 {
		t.Errorf("IDs %q and %q: want two different 16-digit IDs", a.ID(), b.ID())
	}
	for _, s := range []string{a.String(), a.GoString()} {
		if !strings.Contains(s, a.ID()) || strings.Contains(s, "\x01") {
			t.Errorf("a key prints as %q", s)
		}
	}
}

func TestLoadKeyFile(t *testing.T) {
	dir := t.TempDir()
	gen, err := sealed.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.key")
	if err := os.WriteFile(good, gen, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := sealed.LoadKeyFile(good); err != nil {
		t.Fatalf("a generated key: %v", err)
	}
	short := filepath.Join(dir, "short.key")
	if err := os.WriteFile(short, []byte(base64.StdEncoding.EncodeToString(make([]byte, 24))), 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.key")
	if err := os.WriteFile(big, bytes.Repeat([]byte("A"), 5000), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{filepath.Join(dir, "none.key"), "cannot read the storage key file " + filepath.Join(dir, "none.key") + ": no such file"},
		{short, "decodes (base64) to 24 bytes; a key is 32 bytes: make one with 'zoku storage keygen FILE' (or: openssl rand -base64 32) (file " + short + ")"},
		{big, "is over 4096 bytes"},
	} {
		if _, err := sealed.LoadKeyFile(tc.path); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("LoadKeyFile(%s): %v, want an error containing %q", tc.path, err, tc.want)
		}
	}
}
