package acmeclient

import (
	"strings"
	"testing"
)

func TestNormalizeDomains(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		dns     bool
		want    []string
		wantErr string
	}{
		{"plain", []string{"Example.COM", "www.example.com."}, false, []string{"example.com", "www.example.com"}, ""},
		{"idn", []string{"bücher.example"}, false, []string{"xn--bcher-kva.example"}, ""},
		{"ip", []string{"a.example", "127.0.0.1", "::1"}, false, []string{"a.example", "127.0.0.1", "::1"}, ""},
		{"wildcard with dns", []string{"*.example.com", "example.com"}, true, []string{"*.example.com", "example.com"}, ""},
		{"wildcard without dns", []string{"*.example.com"}, false, nil, "only be validated with DNS-01"},
		{"inner wildcard", []string{"a.*.example.com"}, true, nil, "leftmost label"},
		{"duplicate", []string{"a.example", "A.example"}, false, nil, "given twice"},
		{"empty list", nil, false, nil, "no domain given"},
		{"empty name", []string{" "}, false, nil, "empty domain"},
		{"single label", []string{"localhost"}, false, nil, "not a fully qualified"},
		{"underscore", []string{"bad_name.example"}, false, nil, "invalid domain"},
		{"hyphen edge", []string{"-a.example"}, false, nil, "invalid domain"},
		{"long label", []string{strings.Repeat("a", 64) + ".example"}, false, nil, "invalid domain"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NormalizeDomains(tc.in, tc.dns)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}
