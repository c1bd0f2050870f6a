package dns01

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// builtins are the providers this package links itself; every test build
// has them, and only them unless package catalogue is imported.
var builtins = []string{"dnsupdate", "exec", "httpreq", "iijdpf"}

func TestProviders(t *testing.T) {
	got := Providers()
	if len(got) != 229 {
		t.Errorf("providers: got %d, want lego v5.6.0's 229", len(got))
	}
	var linked, unavailable []string
	for i, info := range got {
		if i > 0 && got[i-1].Code >= info.Code {
			t.Errorf("not sorted by code: %q before %q", got[i-1].Code, info.Code)
		}
		if info.Linked {
			linked = append(linked, info.Code)
		}
		if info.Unavailable {
			unavailable = append(unavailable, info.Code)
		}
		if info.Name == "" {
			t.Errorf("%s: Name: got empty, want a display name", info.Code)
		}
		seen := map[string]bool{}
		for _, v := range slices.Concat(info.Required, info.Optional) {
			if v == "" || strings.Trim(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != "" {
				t.Errorf("%s: variable %q: want an upper-case environment variable name", info.Code, v)
			}
			if seen[v] {
				t.Errorf("%s: variable %q: listed twice", info.Code, v)
			}
			seen[v] = true
		}
	}
	if !slices.Equal(linked, builtins) {
		t.Errorf("linked without the catalogue: got %v, want %v", linked, builtins)
	}
	wantUnavailable := []string{"alidns", "aliesa", "azion", "azuredns", "desec", "designate", "dnsimple", "edgedns",
		"edgeone", "exoscale", "huaweicloud", "linode", "myra", "oraclecloud", "regfish", "sakuracloud", "selectelv2",
		"tencentcloud", "ucloud", "ultradns", "volcengine", "yandexcloud"}
	if !slices.Equal(unavailable, wantUnavailable) {
		t.Errorf("unavailable: got %v, want %v", unavailable, wantUnavailable)
	}

	// The result is a copy: changing it leaves the table alone.
	got[0].Required[0] = "CHANGED"
	got[0].Code = "changed"
	if again := Providers(); again[0].Required[0] == "CHANGED" || again[0].Code == "changed" {
		t.Errorf("Providers: changing the result changed the table")
	}
}

// TestRequiredMatchesLego pins variables users must set, as lego's
// descriptors list them; the table is generated, so this catches a lego
// rename or a generator fault.
func TestRequiredMatchesLego(t *testing.T) {
	tests := []struct {
		code string
		want []string
	}{
		{"iijdpf", []string{"IIJ_DPF_API_TOKEN", "IIJ_DPF_DPM_SERVICE_CODE"}},
		{"dnsupdate", []string{"DNSUPDATE_NAMESERVER"}},
		{"exec", []string{"EXEC_PATH"}}, // from lego's Go source: its descriptor lists no variables
		{"httpreq", []string{"HTTPREQ_MODE", "HTTPREQ_ENDPOINT"}},
		{"digitalocean", []string{"DO_AUTH_TOKEN"}},
		{"ovh", []string{"OVH_ENDPOINT", "OVH_APPLICATION_KEY", "OVH_APPLICATION_SECRET", "OVH_CONSUMER_KEY", "OVH_CLIENT_ID", "OVH_CLIENT_SECRET", "OVH_ACCESS_TOKEN"}},
		{"gcloud", []string{"GCE_PROJECT", "GCE_SERVICE_ACCOUNT_FILE", "GCE_SERVICE_ACCOUNT"}},
		{"manual", nil},
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
	for code, want := range map[string]string{"iijdpf": "IIJ_DPF_API_ENDPOINT", "exec": "EXEC_SEQUENCE_INTERVAL", "dnsupdate": "DNSUPDATE_TSIG_FILE"} {
		info, err := Lookup(code)
		if err != nil {
			t.Fatalf("Lookup(%s): %v", code, err)
		}
		if !slices.Contains(info.Optional, want) {
			t.Errorf("%s Optional: got %v, want %s among them", code, info.Optional, want)
		}
	}
}

func TestLookup(t *testing.T) {
	tests := []struct{ in, want string }{
		{"iijdpf", "iijdpf"},
		{"IIJDPF", "iijdpf"},
		{" exec ", "exec"},
		{"rfc2136", "dnsupdate"},
		{"dnsupdate", "dnsupdate"},
		{"acme-dns", "acmedns"},
		{"cloudflare", "cloudflare"}, // known, though not linked into test builds
		{"azuredns", "azuredns"},     // known, though unavailable in this build
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
	const list = "'zoku dns providers' lists the 229 codes lego v5.6.0 has"
	tests := []struct {
		name, code, want string
	}{
		{"unknown without suggestion", "foo",
			`dns-01: unknown provider "foo"; ` + list},
		{"typo", "cloudfare",
			`dns-01: unknown provider "cloudfare"; ` + list + ` (did you mean "cloudflare"?)`},
		{"typo of an alias", "rfc2163",
			`dns-01: unknown provider "rfc2163"; ` + list + ` (did you mean "rfc2136"?)`},
		{"swapped letters", "iijdfp",
			`dns-01: unknown provider "iijdfp"; ` + list + ` (did you mean "iijdpf"?)`},
		{"prefix", "digitalo",
			`dns-01: unknown provider "digitalo"; ` + list + ` (did you mean "digitalocean"?)`},
		{"empty", "  ",
			`dns-01: no provider given; 'zoku dns providers' lists the codes`},
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

func TestNewProviderNotInThisBuild(t *testing.T) {
	tests := []struct{ code, want string }{
		{"azuredns", `dns-01: provider "azuredns" is unavailable in this build: the Go module proxy this build used does not serve its SDK; use a zoku built where it is, or another provider (exec or httpreq can drive any DNS API)`},
		{"manual", `dns-01: provider "manual" is not linked into this binary; import github.com/zoku/zoku/internal/challenge/dns01/catalogue to link every provider`},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			p, err := NewProvider(tt.code)
			if err == nil || p != nil {
				t.Fatalf("NewProvider(%q): got (%v, %v), want an error", tt.code, p, err)
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n got %s\nwant %s", err, tt.want)
			}
			if !errors.Is(err, ErrUnavailableProvider) {
				t.Errorf("errors.Is(err, ErrUnavailableProvider): got false, want true")
			}
		})
	}
}

func TestRegisterPanics(t *testing.T) {
	tests := []struct{ name, code string }{
		{"unknown code", "nosuchprovider"},
		{"unavailable", "azuredns"},
		{"twice", "exec"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("Register(%q): got no panic, want one", tt.code)
				}
			}()
			Register(tt.code, nil)
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
			if got := closestCode(tt.in, candidates); got != tt.want {
				t.Errorf("closestCode(%q): got %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
