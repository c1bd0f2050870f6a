package dns01

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestPrintProviders(t *testing.T) {
	tests := []struct {
		name, code string
		want       []string // lines that must appear, in order
		absent     []string
	}{
		{"list", "", []string{
			"acmedns (acme-dns)",
			"azuredns ",
			"unavailable in this build",
			"dnsupdate (rfc2136)",
			"229 providers from lego v5.6.0: 4 usable here, 22 unavailable in this build",
		}, nil},
		{"one by alias", "rfc2136", []string{
			"dnsupdate: DNS Update (RFC2136)",
			"aliases: rfc2136",
			"credentials (each may also be given as NAME_FILE",
			"  DNSUPDATE_NAMESERVER",
			"optional:",
			"  DNSUPDATE_TSIG_KEY",
			"  DNSUPDATE_SEQUENCE_INTERVAL",
			"note: leave the TSIG variables unset",
		}, []string{"status:"}},
		{"not linked", "cloudflare", []string{
			"cloudflare: Cloudflare",
			"status: not linked into this binary",
			"  CLOUDFLARE_DNS_API_TOKEN",
		}, nil},
		{"unavailable", "azuredns", []string{
			"azuredns: Azure DNS",
			"status: unavailable in this build",
		}, nil},
		{"no credentials", "manual", []string{"credentials (", "  (none)", "optional:", "  MANUAL_PROPAGATION_TIMEOUT"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := PrintProviders(&b, tt.code); err != nil {
				t.Fatalf("PrintProviders(%q): %v", tt.code, err)
			}
			out := b.String()
			rest := out
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("output lacks %q (in order):\n%s", w, out)
				}
				rest = rest[i+len(w):]
			}
			for _, a := range tt.absent {
				if strings.Contains(out, a) {
					t.Errorf("output has %q:\n%s", a, out)
				}
			}
		})
	}
	var b bytes.Buffer
	if err := PrintProviders(&b, "iij"); !errors.Is(err, ErrUnknownProvider) || b.Len() != 0 {
		t.Errorf("PrintProviders(iij): got (%q, %v), want no output and the retired-provider error", b.String(), err)
	}
}
