//go:build !race

package cli

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-acme/lego/v5/certcrypto"
)

// Seed 000's folder was written by lego v4. zoku renews it in place: the
// new certificate is written in lego v5's layout, and nothing of the v4
// layout is lost.
func TestNoRaceRenewLegoV4Folder(t *testing.T) {
	const name, email = "*.v4.example.test", "you@example.test"
	e := newRenewEnvDNS(t, name, email)
	v4 := downgradeToV4(t, e.dir, email, name)

	r := mustZoku(t, append([]string{"renew", "--force"}, e.base...)...)
	if !strings.Contains(r.stdout, name+": renewed") {
		t.Fatalf("stdout: %s", r.stdout)
	}
	if !strings.Contains(r.stderr, "legacy_layout=true") {
		t.Errorf("the v4 account was not used:\n%s", r.stderr)
	}
	// v5 files now.
	meta := readJSON(t, filepath.Join(e.dir, "certificates", "_.v4.example.test.json"))
	if _, ok := meta["domains"]; !ok {
		t.Errorf("renewed .json is not lego v5's: %v", meta)
	}
	keyPEM, _ := os.ReadFile(filepath.Join(e.dir, "certificates", "_.v4.example.test.key"))
	if blk, _ := pem.Decode(keyPEM); blk == nil || blk.Type != "PRIVATE KEY" {
		t.Errorf("renewed key is not PKCS#8")
	}
	// v4 account key is still where lego v4 looks for it.
	if _, err := os.Stat(v4.accountKey); err != nil {
		t.Errorf("v4 account key gone: %v", err)
	}
	// The v4 files zoku replaced are kept in the archive, byte for byte.
	for rel, want := range v4.replaced {
		matches, _ := filepath.Glob(filepath.Join(e.dir, "archives", "lego-v4", "*", rel))
		if len(matches) == 0 {
			t.Errorf("v4 file %s not archived", rel)
			continue
		}
		got, _ := os.ReadFile(matches[0])
		if string(got) != want {
			t.Errorf("archived %s differs from the v4 original", rel)
		}
	}
}

// newRenewEnvDNS obtains a wildcard through DNS-01 (seed 000's shape).
func newRenewEnvDNS(t *testing.T, name, email string) renewEnv {
	e := dnsEnv(t)
	base := append([]string{"--accept-tos", "--email", email, "--path", t.TempDir()}, e...)
	mustZoku(t, append([]string{"obtain", "-d", name}, base...)...)
	dir := base[4]
	return renewEnv{dir: dir, base: base}
}

type v4Tree struct {
	accountKey string
	replaced   map[string]string // path relative to the store -> v4 content
}

// downgradeToV4 rewrites a v5 store into the lego v4 layout of seed 000.
func downgradeToV4(t *testing.T, dir, email, name string) v4Tree {
	t.Helper()
	tree := v4Tree{replaced: map[string]string{}}
	accDirs, _ := filepath.Glob(filepath.Join(dir, "accounts", "*", email))
	if len(accDirs) != 1 {
		t.Fatalf("account folders: %v", accDirs)
	}
	acc := accDirs[0]
	v5 := readJSON(t, filepath.Join(acc, "account.json"))
	reg := v5["registration"].(map[string]any)
	v4acc, _ := json.MarshalIndent(map[string]any{
		"email": email,
		"registration": map[string]any{
			"body": map[string]any{"status": "valid", "contact": []string{"mailto:" + email}},
			"uri":  reg["accountURL"],
		},
	}, "", "\t")
	key := readKey(t, filepath.Join(acc, email+".key"))
	tree.accountKey = filepath.Join(acc, "keys", email+".key")
	must(t, os.MkdirAll(filepath.Dir(tree.accountKey), 0o700))
	must(t, os.WriteFile(tree.accountKey, sec1(t, key), 0o600))
	must(t, os.Remove(filepath.Join(acc, email+".key")))
	must(t, os.WriteFile(filepath.Join(acc, "account.json"), v4acc, 0o600))
	rel, _ := filepath.Rel(dir, filepath.Join(acc, "account.json"))
	tree.replaced[rel] = string(v4acc)

	san := strings.ReplaceAll(name, "*", "_")
	certDir := filepath.Join(dir, "certificates")
	meta := readJSON(t, filepath.Join(certDir, san+".json"))
	v4meta, _ := json.MarshalIndent(map[string]any{"domain": name, "certUrl": meta["certUrl"], "certStableUrl": meta["certStableUrl"]}, "", "\t")
	must(t, os.WriteFile(filepath.Join(certDir, san+".json"), v4meta, 0o600))
	ckey := sec1(t, readKey(t, filepath.Join(certDir, san+".key")))
	must(t, os.WriteFile(filepath.Join(certDir, san+".key"), ckey, 0o600))
	tree.replaced[filepath.Join("certificates", san+".json")] = string(v4meta)
	tree.replaced[filepath.Join("certificates", san+".key")] = string(ckey)
	return tree
}

func readJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(path)
	must(t, err)
	var m map[string]any
	must(t, json.Unmarshal(raw, &m))
	return m
}

func readKey(t *testing.T, path string) *ecdsa.PrivateKey {
	t.Helper()
	raw, err := os.ReadFile(path)
	must(t, err)
	k, err := certcrypto.ParsePEMPrivateKey(raw)
	must(t, err)
	return k.(*ecdsa.PrivateKey)
}

func sec1(t *testing.T, k *ecdsa.PrivateKey) []byte {
	der, err := x509.MarshalECPrivateKey(k)
	must(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}
