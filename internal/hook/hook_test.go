package hook

import (
	"bytes"
	"context"
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
