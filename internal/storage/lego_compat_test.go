package storage

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-acme/lego/v5/certificate"
)

// legoTestdata returns lego v5's own storage testdata folder from the module
// cache, or skips the test when it cannot be found.
func legoTestdata(t *testing.T) string {
	t.Helper()

	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("lego testdata: the go command is not on PATH: %v", err)
	}

	out, err := exec.Command(goBin, "list", "-m", "-f", "{{.Dir}}", "github.com/go-acme/lego/v5").Output()
	if err != nil {
		t.Skipf("lego testdata: go list cannot locate github.com/go-acme/lego/v5: %v", err)
	}

	dir := filepath.Join(strings.TrimSpace(string(out)), "cmd", "internal", "storage", "testdata")
	if _, err := os.Stat(filepath.Join(dir, "account.json")); err != nil {
		t.Skipf("lego testdata not in the module cache (run go mod download): %v", err)
	}

	return dir
}

// jsonKeys returns the sorted dotted key paths of the JSON objects in raw.
func jsonKeys(t *testing.T, raw []byte) []string {
	t.Helper()

	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("parse JSON: %v", err)
	}

	var keys []string

	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if m, ok := v.(map[string]any); ok {
			for k, child := range m {
				keys = append(keys, prefix+k)
				walk(prefix+k+".", child)
			}
		}
	}
	walk("", v)
	slices.Sort(keys)

	return keys
}

func TestLegoAccountJSONCompat(t *testing.T) {
	dir := legoTestdata(t)

	legoRaw, err := os.ReadFile(filepath.Join(dir, "account.json"))
	if err != nil {
		t.Fatal(err)
	}

	var a Account
	if err := json.Unmarshal(legoRaw, &a); err != nil {
		t.Fatalf("parse lego's account.json with our Account: %v", err)
	}

	checks := []struct{ field, got, want string }{
		{"ID", a.ID, "test@example.com"},
		{"Email", a.Email, "account@example.com"},
		{"Server", a.Server, "https://example.com/dir"},
		{"KeyType", string(a.KeyType), "RSA4096"},
		{"Registration.Status", a.Registration.Status, "valid"},
		{"Registration.Orders", a.Registration.Orders, "https://ame.example.com/orders/123456"},
		{"Registration.Location", a.Registration.Location, "https://ame.example.com"},
		{"Registration.Contact", strings.Join(a.Registration.Contact, ","), "contact@example.com"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %q, want %q", c.field, c.got, c.want)
		}
	}

	// Write it back with a real key (EC256 keeps the test fast) and check
	// that our account.json has exactly lego's key set.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	a.Key = key
	s := openTestStore(t)

	if err := s.SaveAccount(context.Background(), &a); err != nil {
		t.Fatalf("SaveAccount: %v", err)
	}

	accountDir := filepath.Join(s.Root(), "accounts", "example.com", "test@example.com")

	ours, err := os.ReadFile(filepath.Join(accountDir, "account.json"))
	if err != nil {
		t.Fatalf("read our account.json: %v", err)
	}

	if got, want := jsonKeys(t, ours), jsonKeys(t, legoRaw); !slices.Equal(got, want) {
		t.Errorf("account.json keys:\n got %v\nwant %v", got, want)
	}

	if !strings.HasPrefix(string(ours), "{\n\t\"id\"") {
		t.Errorf("account.json indentation: got %.12q, want lego's tab indentation", ours)
	}

	if _, err := os.Stat(filepath.Join(accountDir, "test@example.com.key")); err != nil {
		t.Errorf("account key at lego's v5 path: %v", err)
	}
}

func TestLegoCertificateJSONCompat(t *testing.T) {
	dir := legoTestdata(t)

	legoRaw, err := os.ReadFile(filepath.Join(dir, "certificates", "example.com.json"))
	if err != nil {
		t.Fatal(err)
	}

	var meta CertMeta
	if err := json.Unmarshal(legoRaw, &meta); err != nil {
		t.Fatalf("parse lego's example.com.json with our CertMeta: %v", err)
	}

	checks := []struct{ field, got, want string }{
		{"ID", meta.ID, "example.com"},
		{"Domains", strings.Join(meta.Domains, ","), "example.com"},
		{"KeyType", string(meta.KeyType), "EC256"},
		{"CertURL", meta.CertURL, "https://acme.example.org/cert/123"},
		{"CertStableURL", meta.CertStableURL, "https://acme.example.org/cert/456"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %q, want %q", c.field, c.got, c.want)
		}
	}

	if meta.Legacy || isLegacyCertJSON(legoRaw) {
		t.Errorf("lego v5 .json detected as v4")
	}

	s := openTestStore(t)
	ca := newTestCA(t, "Compat Issuer")
	b := ca.bundle(t, "example.com")
	b.Meta = meta

	if err := s.SaveCertificate(context.Background(), b); err != nil {
		t.Fatalf("SaveCertificate: %v", err)
	}

	ours, err := os.ReadFile(filepath.Join(s.Root(), "certificates", "example.com.json"))
	if err != nil {
		t.Fatalf("read our example.com.json: %v", err)
	}

	if got, want := jsonKeys(t, ours), jsonKeys(t, legoRaw); !slices.Equal(got, want) {
		t.Errorf("certificate .json keys:\n got %v\nwant %v", got, want)
	}

	// zoku's own fields must not disturb lego's reader.
	b.Meta.Server = "https://127.0.0.1:14000/dir"
	b.Meta.RenewalInfo = &RenewalInfo{WindowStart: time.Unix(1, 0).UTC(), WindowEnd: time.Unix(2, 0).UTC()}

	if err := s.SaveCertificate(context.Background(), b); err != nil {
		t.Fatalf("SaveCertificate with zoku fields: %v", err)
	}

	ours, err = os.ReadFile(filepath.Join(s.Root(), "certificates", "example.com.json"))
	if err != nil {
		t.Fatal(err)
	}

	var res certificate.Resource
	if err := json.Unmarshal(ours, &res); err != nil {
		t.Fatalf("lego's certificate.Resource cannot read our .json: %v", err)
	}

	if res.ID != meta.ID || res.CertURL != meta.CertURL || res.KeyType != meta.KeyType || !slices.Equal(res.Domains, meta.Domains) {
		t.Errorf("lego reads: got %+v, want the fields of %+v", res, meta)
	}

	for _, ext := range []string{".crt", ".issuer.crt", ".key"} {
		if _, err := os.Stat(filepath.Join(s.Root(), "certificates", "example.com"+ext)); err != nil {
			t.Errorf("file at lego's path: %v", err)
		}
	}
}
