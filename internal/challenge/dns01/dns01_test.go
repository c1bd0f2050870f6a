package dns01

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// wantCodes is the catalogue this build ships; extend it with the table.
var wantCodes = []string{"cloudflare", "digitalocean", "dnsupdate", "exec", "gcloud", "httpreq", "iijdpf", "ovh", "route53"}

const wantKnown = "known providers: cloudflare, digitalocean, dnsupdate, exec, gcloud, httpreq, iijdpf, ovh, route53"

func TestProviders(t *testing.T) {
	got := Providers()
	var gotCodes []string
	for _, info := range got {
		gotCodes = append(gotCodes, info.Code)
	}
	if !slices.Equal(gotCodes, wantCodes) {
		t.Fatalf("codes: got %v, want %v", gotCodes, wantCodes)
	}
	for _, info := range got {
		t.Run(info.Code, func(t *testing.T) {
			if info.Name == "" {
				t.Errorf("Name: got empty, want a display name")
			}
			if len(info.Required) == 0 {
				t.Errorf("Required: got none, want the variables of the usual way to authenticate")
			}
			seen := map[string]bool{}
			for _, v := range slices.Concat(info.Required, info.Optional) {
				if v == "" || strings.Trim(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != "" {
					t.Errorf("variable %q: want an upper-case environment variable name", v)
				}
				if seen[v] {
					t.Errorf("variable %q: listed twice", v)
				}
				seen[v] = true
			}
		})
	}

	// The result is a copy: changing it leaves the catalogue alone.
	got[0].Required[0] = "CHANGED"
	got[0].Code = "changed"
	if again := Providers(); again[0].Required[0] == "CHANGED" || again[0].Code == "changed" {
		t.Errorf("Providers: changing the result changed the catalogue")
	}
}

// TestRequiredMatchesLego pins the variables users must set; the names in
// the catalogue come from lego's constants, so this catches a lego rename.
func TestRequiredMatchesLego(t *testing.T) {
	tests := []struct {
		code string
		want []string
	}{
		{"iijdpf", []string{"IIJ_DPF_API_TOKEN", "IIJ_DPF_DPM_SERVICE_CODE"}},
		{"dnsupdate", []string{"DNSUPDATE_NAMESERVER"}},
		{"exec", []string{"EXEC_PATH"}},
		{"httpreq", []string{"HTTPREQ_ENDPOINT"}},
		{"cloudflare", []string{"CLOUDFLARE_DNS_API_TOKEN"}},
		{"digitalocean", []string{"DO_AUTH_TOKEN"}},
		{"gcloud", []string{"GCE_SERVICE_ACCOUNT"}},
		{"ovh", []string{"OVH_APPLICATION_KEY", "OVH_APPLICATION_SECRET", "OVH_CONSUMER_KEY"}},
		{"route53", []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"}},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			info, err := Lookup(tt.code)
			if err != nil {
				t.Fatalf("Lookup: %v", err)
			}
			if !slices.Equal(info.Required, tt.want) {
				t.Errorf("Required: got %v, want %v", info.Required, tt.want)
			}
		})
	}
	info, err := Lookup("iijdpf")
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	if !slices.Contains(info.Optional, "IIJ_DPF_API_ENDPOINT") {
		t.Errorf("iijdpf Optional: got %v, want IIJ_DPF_API_ENDPOINT among them", info.Optional)
	}
}

func TestLookup(t *testing.T) {
	tests := []struct{ in, want string }{
		{"iijdpf", "iijdpf"},
		{"IIJDPF", "iijdpf"},
		{" exec ", "exec"},
		{"rfc2136", "dnsupdate"},
		{"dnsupdate", "dnsupdate"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			info, err := Lookup(tt.in)
			if err != nil {
				t.Fatalf("Lookup(%q): %v", tt.in, err)
			}
			if info.Code != tt.want {
				t.Errorf("Lookup(%q).Code: got %q, want %q", tt.in, info.Code, tt.want)
			}
		})
	}
}

func TestLookupErrors(t *testing.T) {
	tests := []struct {
		name, code, want string
	}{
		{"unknown without suggestion", "foo",
			`dns-01: unknown provider "foo"; ` + wantKnown},
		{"typo", "cloudfare",
			`dns-01: unknown provider "cloudfare"; ` + wantKnown + ` (did you mean "cloudflare"?)`},
		{"typo of an alias", "rfc2163",
			`dns-01: unknown provider "rfc2163"; ` + wantKnown + ` (did you mean "rfc2136"?)`},
		{"swapped letters", "iijdfp",
			`dns-01: unknown provider "iijdfp"; ` + wantKnown + ` (did you mean "iijdpf"?)`},
		{"prefix", "digital",
			`dns-01: unknown provider "digital"; ` + wantKnown + ` (did you mean "digitalocean"?)`},
		{"not in this build", "manual",
			`dns-01: unknown provider "manual"; ` + wantKnown},
		{"empty", "  ",
			`dns-01: no provider given; ` + wantKnown},
		{"iij is gone", "iij",
			`dns-01: provider "iij" is gone: IIJ DNS outsourcing service ended in May 2023 and lego v5 replaced it with "iijdpf" (IIJ DNS Platform Service); use --dns iijdpf and set IIJ_DPF_API_TOKEN, IIJ_DPF_DPM_SERVICE_CODE (optional: IIJ_DPF_API_ENDPOINT)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Lookup(tt.code)
			if err == nil {
				t.Fatalf("Lookup(%q): got nil error, want %q", tt.code, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("Lookup(%q) error:\n got %s\nwant %s", tt.code, err, tt.want)
			}
			if !errors.Is(err, ErrUnknownProvider) {
				t.Errorf("errors.Is(err, ErrUnknownProvider): got false, want true")
			}
			p, err := NewProvider(tt.code)
			if err == nil || err.Error() != tt.want || p != nil {
				t.Errorf("NewProvider(%q): got (%v, %v), want (nil, the Lookup error)", tt.code, p, err)
			}
		})
	}
}

func TestSuggest(t *testing.T) {
	candidates := []string{"cloudflare", "digitalocean", "dnsupdate", "exec", "rfc2136", "route53"}
	tests := []struct{ in, want string }{
		{"cloudflar", "cloudflare"},
		{"exex", "exec"},
		{"route35", "route53"},
		{"route", "route53"},
		{"dns", "dnsupdate"},
		{"xyz", ""},
		{"ab", ""},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := suggest(tt.in, candidates); got != tt.want {
				t.Errorf("suggest(%q): got %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"abc", "", 3},
		{"", "abc", 3},
		{"kitten", "sitting", 3},
		{"iijdpf", "iijdfp", 2},
		{"exec", "exec", 0},
	}
	for _, tt := range tests {
		t.Run(tt.a+"/"+tt.b, func(t *testing.T) {
			if got := editDistance(tt.a, tt.b); got != tt.want {
				t.Errorf("editDistance(%q, %q): got %d, want %d", tt.a, tt.b, got, tt.want)
			}
		})
	}
}
