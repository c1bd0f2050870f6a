package sealed_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/zoku/zoku/internal/storage/sealed"
)

func testKey(t testing.TB, b byte) *sealed.Key {
	t.Helper()
	k, err := sealed.NewKey(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpen(t *testing.T) {
	k := testKey(t, 7)
	secret := []byte("secret key material c2VjcmV0\n")
	const name = "certificates/a.example.key"
	v, err := sealed.Seal(k, name, secret)
	if err != nil {
		t.Fatal(err)
	}
	if !sealed.IsSealed(v) || bytes.Contains(v, []byte("key material")) || bytes.Contains(v, []byte("c2VjcmV0")) {
		t.Fatalf("sealed value shows its content:\n%s", v)
	}
	if id, ok := sealed.KeyIDOf(v); !ok || id != k.ID() {
		t.Errorf("KeyIDOf = %q, %v; want %q", id, ok, k.ID())
	}
	if !bytes.Contains(v, []byte("Key-Id: "+k.ID())) || !bytes.Contains(v, []byte("Version: 1")) {
		t.Errorf("the envelope does not name its version and key:\n%s", v)
	}
	got, err := sealed.Open(k, name, v)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	again, _ := sealed.Seal(k, name, secret)
	if bytes.Equal(again, v) {
		t.Error("two seals of one value are equal: the nonce is not random")
	}
	// Plain values pass through.
	if got, err := sealed.Open(nil, name, []byte("plain")); err != nil || string(got) != "plain" {
		t.Errorf("Open of a plain value = %q, %v", got, err)
	}
}

// TestOpenRefuses: every way a sealed value can fail to open is one line
// naming the storage key, with the sentinel to branch on, and no content.
func TestOpenRefuses(t *testing.T) {
	k, other := testKey(t, 7), testKey(t, 8)
	const name = "accounts/ca_443/me/me.key"
	v, err := sealed.Seal(k, name, []byte("the secret"))
	if err != nil {
		t.Fatal(err)
	}
	body := func(v []byte) []byte { // the base64 line(s) of the envelope
		_, after, _ := bytes.Cut(v, []byte("\n\n"))
		b, _, _ := bytes.Cut(after, []byte("\n-----END"))
		return b
	}
	flip := bytes.Clone(v)
	b := body(flip)
	if b[5] == 'A' {
		b[5] = 'B'
	} else {
		b[5] = 'A'
	}
	for _, tc := range []struct {
		name      string
		key       *sealed.Key
		storedAs  string
		value     []byte
		sentinel  error
		want      string
		wantInMsg []string
	}{
		{"no key", nil, name, v, sealed.ErrNoKey, "is encrypted with storage key " + k.ID(), []string{"storage.encryption", "ZOKU_STORAGE_KEY_FILE"}},
		{"another key", other, name, v, sealed.ErrWrongKey, "is encrypted with storage key " + k.ID() + ", but the key configured is " + other.ID(), nil},
		{"moved to another storage key", k, "accounts/ca_443/you/you.key", v, sealed.ErrCorrupt, "does not decrypt with storage key " + k.ID(), nil},
		{"altered ciphertext", k, name, flip, sealed.ErrCorrupt, "was altered", nil},
		{"altered key ID", k, name, bytes.Replace(v, []byte(k.ID()), []byte(other.ID()), 1), sealed.ErrWrongKey, "encrypted with storage key " + other.ID(), nil},
		{"unknown version", k, name, bytes.Replace(v, []byte("Version: 1"), []byte("Version: 2"), 1), sealed.ErrCorrupt, `version "2", this zoku reads version 1; upgrade zoku`, nil},
		{"extra header", k, name, bytes.Replace(v, []byte("Version: 1"), []byte("Version: 1\nX: y"), 1), sealed.ErrCorrupt, "headers other than", nil},
		{"data after it", k, name, append(bytes.Clone(v), "tail"...), sealed.ErrCorrupt, "data after the envelope", nil},
		{"cut short", k, name, v[:len(v)/2], sealed.ErrCorrupt, "malformed", nil},
		{"no body", k, name, []byte("-----BEGIN ZOKU SEALED VALUE-----\nKey-Id: " + k.ID() + "\nVersion: 1\n\nAAAA\n-----END ZOKU SEALED VALUE-----\n"), sealed.ErrCorrupt, "too short", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sealed.Open(tc.key, tc.storedAs, tc.value)
			if !errors.Is(err, tc.sentinel) {
				t.Fatalf("Open: %v, want %v", err, tc.sentinel)
			}
			msg := err.Error()
			for _, w := range append([]string{tc.want, tc.storedAs}, tc.wantInMsg...) {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if strings.Contains(msg, "\n") || strings.Contains(msg, "the secret") || strings.Contains(msg, string(body(v))[:12]) {
				t.Errorf("error is not one clean line: %q", msg)
			}
		})
	}
}

// FuzzOpen: no input makes Open panic or hand back a plaintext it did not
// authenticate.
func FuzzOpen(f *testing.F) {
	k := testKey(f, 7)
	v, _ := sealed.Seal(k, "certificates/a.key", []byte("x"))
	f.Add(v)
	f.Add([]byte("-----BEGIN ZOKU SEALED VALUE-----\n-----END ZOKU SEALED VALUE-----\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 1<<16 {
			return
		}
		got, err := sealed.Open(k, "certificates/a.key", in)
		if err == nil && sealed.IsSealed(in) && !bytes.Equal(got, []byte("x")) {
			t.Fatalf("opened a forged value to %q", got)
		}
	})
}
