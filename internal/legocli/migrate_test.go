package legocli_test

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
)

// `lego migrate` rewrites a lego v4 certificate set in v5's layout and
// keeps the v4 files in archives/lego-v4/.
func TestMigrateV4Folder(t *testing.T) {
	ca, addr := httpCA(t)
	dir := t.TempDir()
	mustLego(t, "run", "--server", ca.DirectoryURL(), "-a", "-m", "mig@example.test", "--path", dir,
		"--http", "--http.address", addr, "-d", "mig.example.test")
	base := filepath.Join(dir, "certificates", "mig.example.test")
	// Make it lego v4's: v4 .json and a SEC1 key.
	v4json := `{"domain":"mig.example.test","certUrl":"u","certStableUrl":"u"}`
	must(t, os.WriteFile(base+".json", []byte(v4json), 0o600))
	raw, _ := os.ReadFile(base + ".key")
	blk, _ := pem.Decode(raw)
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	must(t, err)
	sec1, err := x509.MarshalECPrivateKey(k.(*ecdsa.PrivateKey))
	must(t, err)
	must(t, os.WriteFile(base+".key", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), 0o600))

	r := legoRun(t, "y\n", "migrate", "--path", dir)
	if r.code != 0 {
		t.Fatalf("migrate: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	var meta map[string]any
	raw, _ = os.ReadFile(base + ".json")
	must(t, json.Unmarshal(raw, &meta))
	if meta["id"] != "mig.example.test" || meta["origin"] != "migration" {
		t.Errorf("migrated .json: %s", raw)
	}
	raw, _ = os.ReadFile(base + ".key")
	if blk, _ := pem.Decode(raw); blk == nil || blk.Type != "PRIVATE KEY" {
		t.Errorf("migrated key is not PKCS#8")
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "archives", "lego-v4", "*", "certificates", "mig.example.test.json")); len(m) != 1 {
		t.Errorf("the v4 .json was not archived: %v", m)
	}
	// Answering no changes nothing.
	r = legoRun(t, "n\n", "migrate", "--path", dir)
	if r.code != 0 {
		t.Fatalf("migrate (no): exit %d", r.code)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
