package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestSectionKeysKeepFileOrder(t *testing.T) {
	raw := []byte(`Name = "X"
Code = "x"
Example = '''
[Configuration.Credentials]
  NOT_A_KEY = "inside a string, before any section"
'''
[Configuration]
  [Configuration.Credentials]
    X_TOKEN = "token"
    'Prose key' = "ignored later"
    X_ALT = "other way"
  [Configuration.Additional]
    X_TTL = "ttl"
    X_A = "a"
[Links]
  API = "https://example.test"
`)
	creds, additional := sectionKeys(raw)
	// The scanner is line based; readProvider checks its result against
	// the TOML decoder, which is what rejects a key found inside a string.
	if want := []string{"NOT_A_KEY", "X_TOKEN", "Prose key", "X_ALT"}; !slices.Equal(creds, want) {
		t.Errorf("credentials: got %q, want %q", creds, want)
	}
	if want := []string{"X_TTL", "X_A"}; !slices.Equal(additional, want) {
		t.Errorf("additional: got %q, want %q", additional, want)
	}
	if got, want := envNames(creds), []string{"NOT_A_KEY", "X_TOKEN", "X_ALT"}; !slices.Equal(got, want) {
		t.Errorf("envNames: got %q, want %q", got, want)
	}
}

func TestSourceNames(t *testing.T) {
	dir := t.TempDir()
	src := `package p

const (
	envNamespace = "P_"
	EnvPath      = envNamespace + "PATH"
	EnvMode      = envNamespace + ("MO" + "DE")
	EnvTTL       = envNamespace + "TTL"
	notEnv       = "NOPE"
)

func f() { _, _ = env.Get(EnvPath) }
`
	if err := os.WriteFile(filepath.Join(dir, "p.go"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	creds, additional, err := sourceNames(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"P_PATH"}; !slices.Equal(creds, want) {
		t.Errorf("credentials: got %q, want %q", creds, want)
	}
	if want := []string{"P_MODE", "P_TTL"}; !slices.Equal(additional, want) {
		t.Errorf("additional: got %q, want %q", additional, want)
	}
}
