package legocli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/go-acme/lego/v5/lego"

	"github.com/zoku/zoku/internal/storage"
)

// runMigrate is `lego migrate`: rewrite a lego v4 folder in v5's layout.
// Certificates are read in the v4 shape and saved in v5's; accounts of a
// CA whose directory URL is known (the lego CA codes) likewise. Every v4
// file replaced is first copied under archives/lego-v4/<unix>/. zoku also
// reads v4 folders as they are, and writes an account in v5's layout at
// its first use, so migrating is optional.
func runMigrate(ctx context.Context, inv *invocation) error {
	path, err := inv.path()
	if err != nil {
		return err
	}
	fmt.Fprintf(inv.env.Stdout, "The lego v4 files of %s will be rewritten in lego v5's layout (the originals are kept under archives/lego-v4/).\n", path)
	if ok, err := inv.confirm("Continue?"); err != nil || !ok {
		return err
	}
	st, err := openStore(path)
	if err != nil {
		return err
	}
	if err := migrateAccounts(ctx, inv, st, path); err != nil {
		return err
	}
	if inv.flags.Bool("account-only") {
		return nil
	}
	all, lerr := st.ListCertificates(ctx)
	n := 0
	for _, b := range all {
		if !b.Meta.Legacy {
			continue
		}
		b.Meta.Origin = "migration"
		if err := st.SaveCertificate(ctx, b); err != nil {
			return fmt.Errorf("migrate the certificate %s: %w", b.Meta.ID, err)
		}
		n++
	}
	fmt.Fprintf(inv.env.Stdout, "%d certificate(s) migrated.\n", n)
	return lerr
}

// knownServers maps account folder hosts to the directory URLs of the CAs
// lego has codes for.
func knownServers() map[string]string {
	out := map[string]string{}
	for _, code := range lego.GetAllCodes() {
		u, err := lego.GetDirectoryURL(code)
		if err != nil {
			continue
		}
		host := strings.NewReplacer(":", "_", "/", "_", "\\", "_").Replace(hostOf(u))
		out[host] = u
	}
	return out
}

func hostOf(u string) string {
	rest := u[strings.Index(u, "://")+3:]
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

func migrateAccounts(ctx context.Context, inv *invocation, st *storage.Store, path string) error {
	files, _ := filepath.Glob(filepath.Join(path, "accounts", "*", "*", "account.json"))
	sort.Strings(files)
	servers := knownServers()
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var probe struct {
			ID *string `json:"id"`
		}
		if json.Unmarshal(raw, &probe) != nil || probe.ID != nil {
			continue // v5 already, or not an account
		}
		id := filepath.Base(filepath.Dir(f))
		host := filepath.Base(filepath.Dir(filepath.Dir(f)))
		server, ok := servers[host]
		if !ok {
			fmt.Fprintf(inv.env.Stdout, "account %s (%s): CA directory unknown; it is rewritten at its first use with --server\n", id, host)
			continue
		}
		a, err := st.LoadAccount(ctx, server, id)
		if err != nil {
			return fmt.Errorf("migrate the account %s: %w", id, err)
		}
		a.Origin = "migration"
		if err := st.SaveAccount(ctx, a); err != nil {
			return fmt.Errorf("migrate the account %s: %w", id, err)
		}
		fmt.Fprintf(inv.env.Stdout, "account %s (%s): migrated\n", id, server)
	}
	return nil
}
