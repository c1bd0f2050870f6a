package legocli

import (
	"context"
	"fmt"

	"github.com/zoku/zoku/internal/challenge/dns01"
)

// runDNSHelp is `lego dnshelp [-c CODE]`: the DNS providers of this build,
// or the variables one provider reads (each may also be given as
// NAME_FILE). A provider whose SDK this build lacks says so.
func runDNSHelp(_ context.Context, inv *invocation) error {
	code := inv.flags.String("code")
	if code == "" {
		fmt.Fprintln(inv.env.Stdout, "DNS provider credentials are read from environment variables (or NAME_FILE naming a file).")
		fmt.Fprintln(inv.env.Stdout, "'lego dnshelp -c CODE' shows the variables of one provider.")
		fmt.Fprintln(inv.env.Stdout)
	}
	return dns01.PrintProviders(inv.env.Stdout, code)
}
