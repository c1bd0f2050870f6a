package config

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	etcdsStorage = "certificates:\n  acme:\n    storage: etcds://127.0.0.1:2379/zoku\n"
	etcdStorage  = "certificates:\n  acme:\n    storage: etcd://127.0.0.1:2379/zoku\n"
)

func TestStorageErrors(t *testing.T) {
	dir := t.TempDir()
	writeKeyPair(t, dir)
	goodKey := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	shortKey := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	if err := os.WriteFile(filepath.Join(dir, "short.key"), []byte(shortKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	getenv := env("DIR", dir, "KEY", goodKey, "SHORT", shortKey, "PW", "etcd-Password-77")

	tests := []struct {
		name, src, want string
	}{
		{"encryption without key", eps + "storage:\n  encryption: {} # <-\n", "storage.encryption needs keyFile (a file made by 'zoku storage keygen FILE') or key"},
		{"encryption with both", eps + "storage:\n  encryption:\n    keyFile: ${DIR}/k\n    key: ${KEY} # <-\n", "give keyFile or key, not both"},
		{"key file missing", eps + "storage:\n  encryption:\n    keyFile: ${DIR}/none.key # <-\n", "storage.encryption.keyFile: cannot read the storage key file " + dir + "/none.key: no such file"},
		{"key file short", eps + "storage:\n  encryption:\n    keyFile: ${DIR}/short.key # <-\n", "storage.encryption.keyFile: the storage key decodes (base64) to 16 bytes; a key is 32 bytes"},
		{"key short", eps + "storage:\n  encryption:\n    key: ${SHORT} # <-\n", "storage.encryption: the storage key decodes (base64) to 16 bytes; a key is 32 bytes: make one with 'zoku storage keygen FILE'"},
		{"key env unset", eps + "storage:\n  encryption:\n    key: ${ZOKU_STORAGE_KEY} # <-\n", "environment variable ZOKU_STORAGE_KEY is not set"},
		{"etcd unknown key", eps + "storage:\n  etcd:\n    caFiel: x # <-\n", `unknown key "caFiel" in storage.etcd (did you mean "caFile"?)`},
		{"TLS files with etcd://", eps + etcdStorage + "storage:\n  etcd:\n    caFile: ${DIR}/cert.pem # <-\n", "storage.etcd.caFile is set but certificates.acme.storage is etcd:// (no TLS); write etcds://"},
		{"CA file missing", eps + etcdsStorage + "storage:\n  etcd:\n    caFile: ${DIR}/none.pem # <-\n", "storage.etcd.caFile: cannot read " + dir + "/none.pem: no such file"},
		{"CA file not PEM", eps + etcdsStorage + "storage:\n  etcd:\n    caFile: ${DIR}/short.key # <-\n", "holds no PEM certificate"},
		{"cert without key", eps + etcdsStorage + "storage:\n  etcd:\n    certFile: ${DIR}/cert.pem # <-\n", "storage.etcd.certFile needs keyFile too"},
		{"key without cert", eps + etcdsStorage + "storage:\n  etcd:\n    keyFile: ${DIR}/key.pem # <-\n", "storage.etcd.keyFile needs certFile too"},
		{"cert and key mismatch", eps + etcdsStorage + "storage:\n  etcd:\n    certFile: ${DIR}/cert.pem # <-\n    keyFile: ${DIR}/other-key.pem\n", "private key does not match public key"},
		{"user without password", eps + "storage:\n  etcd:\n    username: zoku # <-\n", "storage.etcd.username needs password too"},
		{"password without user", eps + "storage:\n  etcd:\n    password: ${PW} # <-\n", "storage.etcd.password needs username too"},
		{"user twice", eps + "certificates:\n  acme:\n    storage: etcd://u:p@127.0.0.1:2379/zoku\nstorage:\n  etcd:\n    username: zoku # <-\n    password: ${PW}\n", "certificates.acme.storage has a user too"},
		{"dial timeout", eps + "storage:\n  etcd:\n    dialTimeout: 1ms # <-\n", "storage.etcd.dialTimeout 1ms is out of range; use 100ms to 10m0s"},
		{"lease TTL", eps + "storage:\n  etcd:\n    leaseTTL: 1s # <-\n", "storage.etcd.leaseTTL 1s is out of range; use 2s to 1h0m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("zoku.yaml", []byte(tt.src), getenv)
			if err == nil {
				t.Fatalf("got no error, want %q", tt.want)
			}
			prefix := fmt.Sprintf("config: zoku.yaml:%d:", markedLine(t, tt.src))
			msg := err.Error()
			if !strings.HasPrefix(msg, prefix) || !strings.Contains(msg, tt.want) || strings.Contains(msg, "\n") {
				t.Errorf("got error\n  %s\nwant one line starting %q containing\n  %s", msg, prefix, tt.want)
			}
			for _, secret := range []string{goodKey, shortKey, "etcd-Password-77"} {
				if strings.Contains(msg, secret) {
					t.Errorf("the error shows a secret: %s", msg)
				}
			}
		})
	}
}

func TestStorageValid(t *testing.T) {
	dir := t.TempDir()
	writeKeyPair(t, dir)
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	src := eps + etcdsStorage + `storage:
  etcd:
    caFile: ${DIR}/cert.pem
    certFile: ${DIR}/cert.pem
    keyFile: ${DIR}/key.pem
    username: zoku
    password: ${PW}
    dialTimeout: 3s
    leaseTTL: 15s
  encryption:
    key: ${KEY}
`
	c, err := Parse("zoku.yaml", []byte(src), env("DIR", dir, "KEY", key, "PW", "etcd-Password-77"))
	if err != nil {
		t.Fatal(err)
	}
	e := c.Storage.Etcd
	if e.Username != "zoku" || string(e.Password) != "etcd-Password-77" || e.DialTimeout.D().Seconds() != 3 || e.LeaseTTL.D().Seconds() != 15 {
		t.Errorf("storage.etcd = %+v", e)
	}
	if string(c.Storage.Encryption.Key) != key {
		t.Error("storage.encryption.key not read")
	}
	shown, err := c.Redacted().YAML()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(shown), key) || strings.Contains(string(shown), "etcd-Password-77") {
		t.Errorf("the redacted config shows a secret:\n%s", shown)
	}
	// The same in TOML.
	toml := "[entryPoints.web]\naddress = \":80\"\n[certificates.acme]\nstorage = \"etcds://127.0.0.1:2379/zoku\"\n[storage.encryption]\nkeyFile = \"" + filepath.Join(dir, "k.key") + "\"\n"
	if err := os.WriteFile(filepath.Join(dir, "k.key"), []byte(key), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := Parse("zoku.toml", []byte(toml), env()); err != nil || c.Storage.Encryption.KeyFile == "" {
		t.Errorf("TOML storage section: %v", err)
	}
}
