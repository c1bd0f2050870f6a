package dns01

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-acme/lego/v5/challenge/dnspersist01"
	"github.com/miekg/dns"
)

// DNS-PERSIST-01 (draft-ietf-acme-dns-persist) proves control of a name
// with one TXT record that stays: _validation-persist.<name> holds the CA's
// issuer domain name and the ACME account URL. Once it is published, every
// renewal validates without touching DNS, so no DNS credentials are needed.
// lego v5 solves it (Client.Challenge.SetDNSPersist01) but, when the record
// is missing, asks on the terminal; zoku prints the record instead
// (PersistRecords) and checks for it before ordering (HasPersistRecord).

// persistLabel is the label the record lives under.
const persistLabel = "_validation-persist"

// PersistValue returns the TXT value that lets the account at accountURL
// obtain certificates from the CA named issuer: the issuer domain name, the
// account URL, "policy=wildcard" when wildcard certificates are wanted, and
// persistUntil when until is not zero. lego writes and matches the same form.
func PersistValue(issuer, accountURL string, wildcard bool, until time.Time) string {
	v := strings.ToLower(issuer) + "; accounturi=" + accountURL
	if wildcard {
		v += "; policy=wildcard"
	}
	if !until.IsZero() {
		v += "; persistUntil=" + strconv.FormatInt(until.UTC().Unix(), 10)
	}
	return v
}

// PersistRecord returns the zone-file line to publish for domain (a
// leading "*." sets wildcard), e.g.
//
//	_validation-persist.example.com. 3600 IN TXT "letsencrypt.org; accounturi=https://.../acct/1; policy=wildcard"
//
// Values longer than 255 octets are split into several strings, as TXT
// requires.
func PersistRecord(domain, issuer, accountURL string, wildcard bool, until time.Time) string {
	base, star := strings.CutPrefix(strings.ToLower(strings.TrimSuffix(domain, ".")), "*.")
	value := PersistValue(issuer, accountURL, wildcard || star, until)
	var parts []string
	for len(value) > 255 {
		parts = append(parts, strconv.Quote(value[:255]))
		value = value[255:]
	}
	parts = append(parts, strconv.Quote(value))
	return persistLabel + "." + base + ". 3600 IN TXT " + strings.Join(parts, " ")
}

// PersistRecords returns one record per name for the identifiers of a
// certificate: an apex and its wildcard share one record with
// policy=wildcard. The result is sorted.
func PersistRecords(domains []string, issuer, accountURL string, until time.Time) []string {
	wild := map[string]bool{}
	for _, d := range domains {
		base, star := strings.CutPrefix(strings.ToLower(strings.TrimSuffix(d, ".")), "*.")
		wild[base] = wild[base] || star
	}
	var out []string
	for base, w := range wild {
		out = append(out, PersistRecord(base, issuer, accountURL, w, until))
	}
	slices.Sort(out)
	return out
}

// PersistIssuer returns the issuer domain name lego uses when no record
// exists yet: the first, in sorted order, of the CA's identities (the
// caaIdentities of its ACME directory, which Pebble and Let's Encrypt also
// offer as the challenge's issuer-domain-names).
func PersistIssuer(caaIdentities []string) (string, error) {
	if len(caaIdentities) == 0 {
		return "", errors.New("dns-01: the CA advertises no issuer domain name (caaIdentities), so it cannot offer dns-persist-01")
	}
	ids := make([]string, len(caaIdentities))
	for i, id := range caaIdentities {
		ids[i] = strings.ToLower(strings.TrimSuffix(id, "."))
	}
	slices.Sort(ids)
	return ids[0], nil
}

// HasPersistRecord asks the resolvers (host:port, the first that answers)
// for the TXT records at _validation-persist.<domain> and reports whether one lets accountURL at
// issuer validate domain (a "*." prefix asks for policy=wildcard), with
// the same persistUntil (zero: none), as lego matches them.
func HasPersistRecord(ctx context.Context, resolvers []string, domain, issuer, accountURL string, until time.Time) (bool, error) {
	if len(resolvers) == 0 {
		return false, errors.New("dns-01: no resolvers given to look for the dns-persist-01 record")
	}
	base, wildcard := strings.CutPrefix(strings.ToLower(strings.TrimSuffix(domain, ".")), "*.")
	c := &checker{resolvers: resolvers, query: DefaultQueryTimeout}
	var values []string
	var errs []error
	for _, r := range resolvers {
		v, err := c.txt(ctx, r, dns.Fqdn(persistLabel+"."+base), true)
		if err == nil {
			values, errs = v, nil
			break
		}
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return false, fmt.Errorf("dns-01: look for the dns-persist-01 record of %s: %w", base, errors.Join(errs...))
	}
	return slices.ContainsFunc(values, func(v string) bool {
		return persistMatches(v, issuer, accountURL, wildcard, until)
	}), nil
}

// persistMatches parses value as an RFC 8659 issue-value and reports
// whether it authorizes the request. A wildcard policy covers non-wildcard
// names too.
func persistMatches(value, issuer, accountURL string, wildcard bool, until time.Time) bool {
	fields := strings.Split(value, ";")
	if !strings.EqualFold(strings.TrimSpace(fields[0]), issuer) {
		return false
	}
	var account, policy string
	var persistUntil time.Time
	for _, f := range fields[1:] {
		tag, val, ok := strings.Cut(strings.TrimSpace(f), "=")
		if !ok {
			return false
		}
		switch strings.ToLower(strings.TrimSpace(tag)) {
		case "accounturi":
			account = strings.TrimSpace(val)
		case "policy":
			policy = strings.TrimSpace(val)
		case "persistuntil":
			ts, err := strconv.ParseInt(strings.TrimSpace(val), 10, 64)
			if err != nil {
				return false
			}
			persistUntil = time.Unix(ts, 0).UTC()
		}
	}
	if account != accountURL || !persistUntil.Equal(until.UTC().Truncate(time.Second)) {
		return false
	}
	return !wildcard || strings.EqualFold(policy, "wildcard")
}

// PersistOptions returns lego's dns-persist-01 options for issuer and until
// (both optional) with the propagation check of cfg (Resolvers,
// AuthoritativePort, DisableAuthoritative, RequireAllResolvers, the wait
// and the timeouts; Providers is not used). lego's own resolver for the
// first look-up is process-wide: set dnspersist01.SetDefaultClient too.
func PersistOptions(cfg Config, issuer string, until time.Time) ([]dnspersist01.ChallengeOption, error) {
	if cfg.PropagationTimeout <= 0 {
		cfg.PropagationTimeout = DefaultPropagationTimeout
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.QueryTimeout <= 0 {
		cfg.QueryTimeout = DefaultQueryTimeout
	}
	var opts []dnspersist01.ChallengeOption
	if issuer != "" {
		opts = append(opts, dnspersist01.WithIssuerDomainName(issuer))
	}
	if !until.IsZero() {
		opts = append(opts, dnspersist01.WithPersistUntil(until))
	}
	var ck *checker
	if !cfg.DisableChecks {
		var err error
		if ck, err = newChecker(cfg); err != nil {
			return nil, err
		}
	}
	wait := cfg.PropagationWait
	opts = append(opts, dnspersist01.WrapPreCheck(func(ctx context.Context, _, fqdn string, matcher dnspersist01.RecordMatcher, _ dnspersist01.PreCheckFunc) (bool, error) {
		if wait > 0 {
			if err := sleep(ctx, wait); err != nil {
				return true, fmt.Errorf("dns-01: %s: stopped while waiting: %w", strings.TrimSuffix(fqdn, "."), err)
			}
		}
		if ck == nil {
			return true, nil
		}
		match := func(values []string) bool {
			recs := make([]dnspersist01.TXTRecord, len(values))
			for i, v := range values {
				recs[i] = dnspersist01.TXTRecord{Value: v}
			}
			return matcher(recs)
		}
		return true, ck.wait(ctx, fqdn, match)
	}))
	return opts, nil
}
