package catalogue_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/zoku/zoku/internal/challenge/dns01"
	_ "github.com/zoku/zoku/internal/challenge/dns01/catalogue"
)

func TestEveryAvailableProviderIsLinked(t *testing.T) {
	linked, unavailable := 0, 0
	for _, info := range dns01.Providers() {
		switch {
		case info.Unavailable:
			unavailable++
			if info.Linked {
				t.Errorf("%s: linked although unavailable", info.Code)
			}
		case !info.Linked:
			t.Errorf("%s: not linked by the catalogue", info.Code)
		default:
			linked++
		}
	}
	if linked != 207 || unavailable != 22 {
		t.Errorf("got %d linked and %d unavailable, want 207 and 22", linked, unavailable)
	}
	var b bytes.Buffer
	if err := dns01.PrintProviders(&b, ""); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "229 providers from lego v5.6.0: 207 usable here, 22 unavailable in this build") {
		t.Errorf("list summary missing:\n%s", b.String()[max(0, b.Len()-300):])
	}
}

// The providers the package used to hand-list build from the catalogue and
// report missing credentials in one line.
func TestCatalogueProvidersMissingCredentials(t *testing.T) {
	tests := []struct {
		code  string
		clear []string
		want  string
	}{
		{"cloudflare", []string{"CLOUDFLARE_EMAIL", "CLOUDFLARE_API_KEY", "CLOUDFLARE_DNS_API_TOKEN", "CLOUDFLARE_ZONE_API_TOKEN",
			"CF_API_EMAIL", "CF_API_KEY", "CF_DNS_API_TOKEN", "CF_ZONE_API_TOKEN"}, "CLOUDFLARE_EMAIL"},
		{"digitalocean", []string{"DO_AUTH_TOKEN"}, `set DO_AUTH_TOKEN (or DO_AUTH_TOKEN_FILE naming a file)`},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			for _, n := range tt.clear {
				t.Setenv(n, "")
				t.Setenv(n+"_FILE", "")
			}
			p, err := dns01.NewProvider(tt.code)
			if err == nil || p != nil {
				t.Fatalf("NewProvider(%s): got (%v, %v), want a missing-credentials error", tt.code, p, err)
			}
			if !errors.Is(err, dns01.ErrMissingCredentials) || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error: got %q, want one line matching ErrMissingCredentials and containing %q", err, tt.want)
			}
		})
	}
}

func TestUnavailableStaysUnavailable(t *testing.T) {
	if _, err := dns01.NewProvider("azuredns"); !errors.Is(err, dns01.ErrUnavailableProvider) {
		t.Errorf("NewProvider(azuredns): got %v, want ErrUnavailableProvider", err)
	}
}
