package legocli_test

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// dumpScript writes a hook that saves its LEGO_HOOK_* variables to the
// file named by its first argument.
func dumpScript(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "dump.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\nenv | grep '^LEGO_HOOK_' | sort > \"$1\"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	return p
}

func readVars(t *testing.T, path string) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the hook did not run: %v", err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}

func diffVars(t *testing.T, event string, got, want map[string]string) {
	t.Helper()
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		g, gok := got[k]
		w, wok := want[k]
		switch {
		case !gok:
			t.Errorf("%s hook: %s missing, lego gives %q", event, k, w)
		case !wok:
			t.Errorf("%s hook: %s=%q, lego does not set it", event, k, g)
		case g != w:
			t.Errorf("%s hook: %s=%q, lego gives %q", event, k, g, w)
		}
	}
}

// Every LEGO_HOOK_* variable of the pre, deploy and post hooks is what
// lego v5 gives for the same first issuance: the account's from the start,
// the certificate's name, key type and names from the pre-hook on, its
// paths (.pem and .pfx with --pem and --pfx) from the deploy hook on; the
// post-hook sees all of it. No other LEGO_HOOK_* variable is set.
func TestHookVariablesMatchLegoV5(t *testing.T) {
	ca, addr := httpCA(t)
	dir := t.TempDir()
	out := t.TempDir()
	script := dumpScript(t)
	mustLego(t, "run", "--server", ca.DirectoryURL(), "--accept-tos", "--email", "hooks@example.test",
		"--path", dir, "--http", "--http.address", addr, "-d", "h.example.test", "-d", "www.h.example.test",
		"--pem", "--pfx", "--key-type", "EC384",
		"--pre-hook", script+" "+filepath.Join(out, "pre"),
		"--deploy-hook", script+" "+filepath.Join(out, "deploy"),
		"--post-hook", script+" "+filepath.Join(out, "post"))

	account := map[string]string{
		"LEGO_HOOK_ACCOUNT_ID":     "hooks@example.test",
		"LEGO_HOOK_ACCOUNT_EMAIL":  "hooks@example.test",
		"LEGO_HOOK_ACCOUNT_SERVER": ca.DirectoryURL(),
	}
	pre := merged(account, map[string]string{
		"LEGO_HOOK_CERT_NAME":           "h.example.test",
		"LEGO_HOOK_CERT_NAME_SANITIZED": "h.example.test",
		"LEGO_HOOK_CERT_KEY_TYPE":       "EC384",
		"LEGO_HOOK_CERT_DOMAINS":        "h.example.test,www.h.example.test",
	})
	base := filepath.Join(dir, "certificates", "h.example.test")
	deploy := merged(pre, map[string]string{
		"LEGO_HOOK_CERT_PATH":        base + ".crt",
		"LEGO_HOOK_CERT_KEY_PATH":    base + ".key",
		"LEGO_HOOK_ISSUER_CERT_PATH": base + ".issuer.crt",
		"LEGO_HOOK_CERT_PEM_PATH":    base + ".pem",
		"LEGO_HOOK_CERT_PFX_PATH":    base + ".pfx",
	})
	diffVars(t, "pre", readVars(t, filepath.Join(out, "pre")), pre)
	diffVars(t, "deploy", readVars(t, filepath.Join(out, "deploy")), deploy)
	diffVars(t, "post", readVars(t, filepath.Join(out, "post")), deploy)
}

// A failed order still runs the post-hook (with what was known: the
// pre-hook's variables), never the deploy hook, and exits 1.
func TestPostHookRunsAfterFailure(t *testing.T) {
	ca, _ := httpCA(t)
	out := t.TempDir()
	script := dumpScript(t)
	// Nothing answers the challenge on this port: the order fails.
	r := legoRun(t, "", "run", "--server", ca.DirectoryURL(), "--accept-tos", "--email", "f@example.test",
		"--path", t.TempDir(), "--tls", "--tls.address", "127.0.0.1:1", "-d", "fail.example.test",
		"--deploy-hook", script+" "+filepath.Join(out, "deploy"),
		"--post-hook", script+" "+filepath.Join(out, "post"))
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(out, "deploy")); err == nil {
		t.Error("the deploy hook ran after a failure")
	}
	got := readVars(t, filepath.Join(out, "post"))
	if got["LEGO_HOOK_ACCOUNT_ID"] != "f@example.test" || got["LEGO_HOOK_CERT_PATH"] != "" {
		t.Errorf("post hook after a failure: %v", got)
	}
}

func merged(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}
