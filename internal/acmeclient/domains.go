package acmeclient

import (
	"fmt"
	"net"
	"strings"

	"golang.org/x/net/idna"
)

// NormalizeDomains checks the identifiers of an order and returns them in
// the form the CA expects (lower case, IDNs as punycode). It refuses, with
// one line naming the bad value: an empty list, a syntactically invalid
// name, a duplicate, a wildcard that is not a single leading "*." label,
// and a wildcard when DNS-01 is not available (wildcard names can only be
// validated through DNS, RFC 8555 §7.1.3).
func NormalizeDomains(domains []string, haveDNS01 bool) ([]string, error) {
	if len(domains) == 0 {
		return nil, fmt.Errorf("acme: no domain given; pass -d example.com (repeat -d for more names)")
	}
	seen := make(map[string]bool, len(domains))
	out := make([]string, 0, len(domains))
	for _, d := range domains {
		n, err := normalizeDomain(d)
		if err != nil {
			return nil, err
		}
		if seen[n] {
			return nil, fmt.Errorf("acme: domain %q is given twice; list each name once", d)
		}
		seen[n] = true
		if strings.HasPrefix(n, "*.") && !haveDNS01 {
			return nil, fmt.Errorf("acme: wildcard %q can only be validated with DNS-01; add --dns PROVIDER", d)
		}
		out = append(out, n)
	}
	return out, nil
}

var idnaProfile = idna.New(idna.MapForLookup(), idna.Transitional(false), idna.StrictDomainName(true), idna.ValidateLabels(true))

func normalizeDomain(d string) (string, error) {
	raw := strings.TrimSpace(d)
	if raw == "" {
		return "", fmt.Errorf("acme: empty domain; remove the empty -d")
	}
	if ip := net.ParseIP(raw); ip != nil {
		return ip.String(), nil
	}
	name := strings.TrimSuffix(strings.ToLower(raw), ".")
	wild := strings.HasPrefix(name, "*.")
	if wild {
		name = name[2:]
	}
	if strings.Contains(name, "*") {
		return "", fmt.Errorf("acme: invalid domain %q: a wildcard must be the whole leftmost label, as in *.example.com", d)
	}
	ascii, err := idnaProfile.ToASCII(name)
	if err != nil || len(ascii) > 253 || !strings.Contains(ascii, ".") {
		return "", fmt.Errorf("acme: invalid domain %q: not a fully qualified DNS name like www.example.com", d)
	}
	for _, label := range strings.Split(ascii, ".") {
		if len(label) == 0 || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return "", fmt.Errorf("acme: invalid domain %q: label %q is empty, too long or starts/ends with '-'", d, label)
		}
	}
	if wild {
		ascii = "*." + ascii
	}
	return ascii, nil
}
