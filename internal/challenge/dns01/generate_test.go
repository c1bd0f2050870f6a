package dns01

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestGeneratedFilesUpToDate runs the generator into a test folder and
// compares its output with the committed files, so a lego upgrade or a
// hand edit without `go generate` fails here.
func TestGeneratedFilesUpToDate(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not on PATH")
	}
	dir := t.TempDir()
	facts, cat := filepath.Join(dir, "facts.go"), filepath.Join(dir, "catalogue.go")
	cmd := exec.Command(goTool, "run", "./gen", "-builtin", "dnsupdate,exec,httpreq,iijdpf", "-facts", facts, "-catalogue", cat)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run ./gen: %v\n%s", err, out)
	}
	for got, committed := range map[string]string{facts: "zz_gen_providers.go", cat: filepath.Join("catalogue", "zz_gen_catalogue.go")} {
		want, err := os.ReadFile(committed)
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(got)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, want) {
			t.Errorf("%s is stale: run go generate ./internal/challenge/dns01", committed)
		}
	}
}
