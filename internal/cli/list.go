package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/zoku/zoku/internal/admin"
	"github.com/zoku/zoku/internal/certmgr"
	"github.com/zoku/zoku/internal/embedca"
)

// listEntry is one certificate in `zoku list --json`: the admin API's
// certificate (same keys, same states, same renewal point), plus what only
// storage tells.
type listEntry struct {
	admin.Certificate
	// Path is the certificate file (folder storage only).
	Path string `json:"path,omitempty"`
	// LastAttempt is when a renewal last failed.
	LastAttempt *time.Time `json:"lastAttempt,omitempty"`
	// StoredAt and StoredBy say when, and by which process or node, the
	// certificate was stored (zoku's issuing path; empty for lego's).
	StoredAt *time.Time `json:"storedAt,omitempty"`
	StoredBy string     `json:"storedBy,omitempty"`
	// Error is why the stored set could not be read.
	Error string `json:"error,omitempty"`
	// Untrusted says why the certificate will not be served as it is
	// (a certificate of an embedded CA root that is gone).
	Untrusted string `json:"untrusted,omitempty"`
}

func runList(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet("list", "", "List the certificates in --path: state, expiry, next renewal and the rule behind\nit, issuer, and the last renewal error. --json prints the admin API's fields.", env)
	var (
		path   string
		asJSON bool
	)
	fs.StringVar(&path, "path", ".zoku", "storage: a folder (lego's layout), or etcd://host:2379/prefix")
	fs.BoolVar(&asJSON, "json", false, "print JSON for scripts (the admin API's certificate fields)")
	if err := parse(fs, args); err != nil {
		return err
	}
	store, closer, err := openStoreWith(ctx, path, "--path", nil, env.Getenv) // storage key: ZOKU_STORAGE_KEY_FILE (storage.go)
	if err != nil {
		return err
	}
	defer closer.Close()
	all, err := store.ListCertificates(ctx)
	if err != nil {
		return err
	}
	// Certificates of an embedded CA are checked against the root kept
	// with this storage, when there is one.
	embeddedRoot, _ := embedca.LoadRoot(embedca.StateDirIn(store.Root()))
	now := time.Now()
	entries := make([]listEntry, 0, len(all))
	for _, b := range all {
		st, err := certmgr.StoredStatus(b, now)
		e := listEntry{Certificate: admin.CertificateOf(st, now), Path: store.CertPaths(b.Meta.ID).Cert, StoredBy: b.Meta.StoredBy}
		if !b.Meta.LastAttempt.IsZero() {
			la := b.Meta.LastAttempt.UTC()
			e.LastAttempt = &la
		}
		if !b.Meta.StoredAt.IsZero() {
			sa := b.Meta.StoredAt.UTC()
			e.StoredAt = &sa
		}
		if err != nil {
			e.Error, e.State = err.Error(), "unreadable"
			entries = append(entries, e)
			continue
		}
		if embeddedRoot != nil && embedca.CheckStored(b.Meta.Server, b.Certificate, embeddedRoot) != nil {
			e.Untrusted = "does not chain to the embedded CA's root.pem; zoku run and zoku renew --server embedded order a new one"
			e.State = "untrusted"
			nr := now.UTC()
			e.NextRenewal, e.NextRenewalReason = &nr, "it does not chain to the embedded CA's root"
		}
		entries = append(entries, e)
	}
	if asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(entries)
	}
	if len(entries) == 0 {
		fmt.Fprintf(env.Stdout, "no certificates in %s\n", path)
		return nil
	}
	return listTable(env.Stdout, entries)
}

// listTable prints one line per certificate within 120 columns: long names,
// issuers and errors are shortened with "...", the full text is in --json.
func listTable(w io.Writer, entries []listEntry) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tEXPIRES\tNEXT RENEWAL\tWHY\tISSUER\tLAST ERROR")
	for _, e := range entries {
		expires, next := "-", "-"
		if e.NotAfter != nil {
			expires = e.NotAfter.Format("2006-01-02")
		}
		if e.NextRenewal != nil {
			next = e.NextRenewal.UTC().Format("2006-01-02 15:04")
		}
		lastErr := firstSet(e.Error, e.Untrusted, e.LastError, "-")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", clipTo(e.Name, 28), e.State, expires, next,
			shortReason(e.NextRenewalReason), clipTo(firstSet(e.Issuer, "-"), 18), clipTo(lastErr, 20))
	}
	return tw.Flush()
}

// shortReason names the renewal rule in a word or two.
func shortReason(r string) string {
	switch {
	case r == "":
		return "-"
	case strings.HasPrefix(r, "ARI window"):
		return "ARI"
	case strings.HasPrefix(r, "lifetime rule"):
		return "lifetime"
	case strings.HasPrefix(r, "--days"):
		return r
	case strings.Contains(r, "embedded CA's root"):
		return "untrusted"
	}
	return clipTo(r, 12)
}

// clipTo shortens s to n runes, ending in "...".
func clipTo(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-3]) + "..."
}
