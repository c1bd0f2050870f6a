package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/zoku/zoku/internal/challenge/dns01"
)

// enablePersist prepares DNS-PERSIST-01 for domains: every name must
// already have its _validation-persist record naming this account at this
// CA. When one is missing, the records to publish are printed (once, to
// stdout) and the command stops without ordering; after publishing them,
// every later order and renewal validates without DNS credentials.
func (s *session) enablePersist(ctx context.Context, env Env, cf *challengeFlags, domains []string) error {
	client, err := s.issuer.Client(ctx)
	if err != nil {
		return err
	}
	issuer := cf.persistIss
	if issuer == "" {
		if issuer, err = dns01.PersistIssuer(client.CAAIdentities()); err != nil {
			return fmt.Errorf("dns-persist-01: %w; pass --dns-persist.issuer", err)
		}
	}
	acct := client.Account()
	if acct.Registration == nil || acct.Registration.Location == "" {
		return fmt.Errorf("dns-persist-01: the account has no URL yet")
	}
	accountURL := acct.Registration.Location
	var missing []string
	for _, d := range domains {
		ok, err := dns01.HasPersistRecord(ctx, cf.resolvers, d, issuer, accountURL, time.Time{})
		if err != nil {
			return fmt.Errorf("dns-persist-01: look up the record of %s: %w", d, err)
		}
		if !ok {
			missing = append(missing, d)
		}
	}
	if len(missing) > 0 {
		fmt.Fprintf(env.Stdout, "Publish these DNS records once (they stay; renewals then need no DNS access):\n\n%s\n\n",
			strings.Join(dns01.PersistRecords(missing, issuer, accountURL, time.Time{}), "\n"))
		return fmt.Errorf("dns-persist-01: %d record(s) to publish first (printed above); publish them, then run the same command again", len(missing))
	}
	opts, err := dns01.PersistOptions(dns01.Config{Resolvers: cf.resolvers, QueryTimeout: cf.dnsTimeout, AuthoritativePort: cf.nsPort, DisableAuthoritative: cf.disableANS}, issuer, time.Time{})
	if err != nil {
		return err
	}
	return client.UseDNSPersist01(opts...)
}
