package legocli_test

import (
	"path/filepath"
	"strings"
	"testing"
)

// A lego v5 cron line, run daily, orders once: the second run finds the
// certificate not due and leaves it alone, with no random pause.
func TestCronLineRunTwiceIssuesOnce(t *testing.T) {
	ca, addr := httpCA(t)
	dir := t.TempDir()
	line := []string{"run", "--server", ca.DirectoryURL(), "--accept-tos", "--email", "you@example.test",
		"--path", dir, "--http", "--http.address", addr, "-d", "cron.example.test"}

	first := mustLego(t, line...)
	crt := filepath.Join(dir, "certificates", "cron.example.test.crt")
	serial := serialOf(t, crt)
	if len(first.pauses) != 0 {
		t.Errorf("first issuance paused %v; lego pauses before renewals only", first.pauses)
	}

	second := mustLego(t, line...)
	if got := serialOf(t, crt); got != serial {
		t.Fatalf("second run re-issued: serial %s, then %s", serial, got)
	}
	if !strings.Contains(second.stdout, "not due") {
		t.Errorf("second run did not say why it did nothing:\n%s", second.stdout)
	}
	if len(second.pauses) != 0 {
		t.Errorf("a run with nothing due paused %v", second.pauses)
	}
}
