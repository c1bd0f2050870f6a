package hook

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/storage"
)

func TestRunErrors(t *testing.T) {
	ev := Event{Name: "x.example.test", Domains: []string{"x.example.test", "y.example.test"}}
	tests := []struct {
		name    string
		cmd     string
		timeout time.Duration
		want    string
	}{
		{"ok", `test "$LEGO_HOOK_CERT_DOMAINS" = "x.example.test,y.example.test" && test "$RENEWED_DOMAINS" = "x.example.test y.example.test"`, 0, ""},
		{"exit status", "exit 3", 0, "exited with status 3"},
		{"timeout", "sleep 5", 50 * time.Millisecond, "timed out"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := Run(context.Background(), tc.cmd, ev, tc.timeout, &out, &out)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("err = %v; output %s", err, out.String())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestEnvironNeverHoldsKeyMaterial(t *testing.T) {
	env := Environ(Event{Name: "a", Domains: []string{"a"}, Paths: storage.Paths{Key: "/k"}, Lineage: "/l"})
	for _, kv := range env {
		if strings.Contains(kv, "PRIVATE KEY") {
			t.Fatalf("key material in hook environment: %s", kv)
		}
	}
}

// lego splits a hook at white space and runs it without a shell: quotes
// and $VARS reach the program as they are written.
func TestExecSplitsLikeLego(t *testing.T) {
	dir := t.TempDir()
	out := dir + "/args"
	script := dir + "/h.sh"
	if err := os.WriteFile(script, []byte("#!/bin/sh\nprintf '%s|' \"$@\" > "+out+"\nprintf '%s' \"$LEGO_HOOK_CERT_NAME\" >> "+out+"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	err := Exec(context.Background(), script+`  "a b"   $HOME  'c'`, []string{"LEGO_HOOK_CERT_NAME=x.example"}, time.Second*10, io.Discard, io.Discard, "deploy hook")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(out)
	if want := `"a|b"|$HOME|'c'|x.example`; string(got) != want {
		t.Fatalf("hook saw %q, want %q", got, want)
	}
	if err := Exec(context.Background(), "   ", nil, time.Second, io.Discard, io.Discard, "pre hook"); err != nil {
		t.Fatalf("empty hook: %v", err)
	}
	err = Exec(context.Background(), dir+"/missing-program", nil, time.Second, io.Discard, io.Discard, "pre hook")
	if err == nil || !strings.Contains(err.Error(), "hook: pre hook") {
		t.Fatalf("missing program: %v", err)
	}
}

// TestEnvironNamesTheCertificate: lego's LEGO_CERT_DOMAIN and acme.sh's
// Le_Domain carry the certificate's name (the wildcard, here), not its
// first SAN; the lists carry every name in order.
func TestEnvironNamesTheCertificate(t *testing.T) {
	env := Environ(Event{Name: "*.example.test", Domains: []string{"example.test", "*.example.test"}})
	want := map[string]string{
		"LEGO_CERT_DOMAIN":        "*.example.test",
		"Le_Domain":               "*.example.test",
		"LEGO_HOOK_CERT_NAME":     "*.example.test",
		"LEGO_HOOK_CERT_DOMAINS":  "example.test,*.example.test",
		"RENEWED_DOMAINS":         "example.test *.example.test",
		"LEGO_HOOK_CERT_KEY_TYPE": "",
	}
	got := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		got[k] = v
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s=%q, want %q", k, got[k], v)
		}
	}
	// Without a name (an older caller), the first domain stands in.
	for _, kv := range Environ(Event{Domains: []string{"a.test", "b.test"}}) {
		if kv == "LEGO_CERT_DOMAIN=a.test" {
			return
		}
	}
	t.Error("LEGO_CERT_DOMAIN is not the first domain when the event has no name")
}
