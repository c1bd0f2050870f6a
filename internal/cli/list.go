package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/zoku/zoku/internal/certmgr"
	"github.com/zoku/zoku/internal/embedca"
)

// listEntry is one certificate in `zoku list --json`.
type listEntry struct {
	Name        string     `json:"name"`
	Domains     []string   `json:"domains"`
	Issuer      string     `json:"issuer"`
	Serial      string     `json:"serial"`
	KeyType     string     `json:"keyType"`
	NotBefore   time.Time  `json:"notBefore"`
	NotAfter    time.Time  `json:"notAfter"`
	ARIStart    *time.Time `json:"ariWindowStart,omitempty"`
	ARIEnd      *time.Time `json:"ariWindowEnd,omitempty"`
	NextRenewal time.Time  `json:"nextRenewal"`
	Why         string     `json:"nextRenewalReason"`
	Path        string     `json:"path"`
	LastError   string     `json:"lastError,omitempty"`
	LastAttempt *time.Time `json:"lastAttempt,omitempty"`
	Error       string     `json:"error,omitempty"`
	// Untrusted says why the certificate will not be served as it is
	// (a certificate of an embedded CA root that is gone).
	Untrusted string `json:"untrusted,omitempty"`
}

func runList(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet("list", "", "List the certificates in --path: names, issuer, expiry, ARI window, key type,\nnext renewal and the rule behind it, and the last renewal error.", env)
	var (
		path   string
		asJSON bool
	)
	fs.StringVar(&path, "path", ".zoku", "storage: a folder (lego's layout), or etcd://host:2379/prefix")
	fs.BoolVar(&asJSON, "json", false, "print JSON for scripts")
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
		e := listEntry{Name: b.Meta.ID, Domains: b.Meta.Domains, KeyType: string(b.Meta.KeyType), Path: store.CertPaths(b.Meta.ID).Cert, LastError: b.Meta.LastError}
		if !b.Meta.LastAttempt.IsZero() {
			la := b.Meta.LastAttempt.UTC()
			e.LastAttempt = &la
		}
		leaf, err := b.Leaf()
		if err != nil {
			e.Error = err.Error()
			entries = append(entries, e)
			continue
		}
		e.Issuer, e.Serial = leaf.Issuer.CommonName, leaf.SerialNumber.Text(16)
		e.NotBefore, e.NotAfter = leaf.NotBefore.UTC(), leaf.NotAfter.UTC()
		if ri := b.Meta.RenewalInfo; ri != nil {
			s, en := ri.WindowStart.UTC(), ri.WindowEnd.UTC()
			e.ARIStart, e.ARIEnd = &s, &en
		}
		// The window start is shown, not a random point inside it.
		d := certmgr.Due(leaf, b.Meta.RenewalInfo, now, certmgr.Policy{Rand: func(int64) int64 { return 0 }})
		e.NextRenewal, e.Why = d.At.UTC(), d.Reason
		if embeddedRoot != nil && embedca.CheckStored(b.Meta.Server, b.Certificate, embeddedRoot) != nil {
			e.Untrusted = "does not chain to the embedded CA's root.pem; zoku run and zoku renew --server embedded order a new one"
			e.NextRenewal, e.Why = now.UTC(), "it does not chain to the embedded CA's root"
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
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tDOMAINS\tISSUER\tKEY\tEXPIRES\tARI WINDOW\tNEXT RENEWAL\tLAST ERROR")
	for _, e := range entries {
		if e.Error != "" {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\terror: %s\n", e.Name, e.Error)
			continue
		}
		win := "-"
		if e.ARIStart != nil {
			win = e.ARIStart.Format(time.RFC3339) + " to " + e.ARIEnd.Format(time.RFC3339)
		}
		lastErr := "-"
		switch {
		case e.Untrusted != "":
			lastErr = "untrusted: " + e.Untrusted
		case e.LastError != "":
			lastErr = e.LastError
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s (%s)\t%s\n", e.Name, strings.Join(e.Domains, ","), e.Issuer, e.KeyType,
			e.NotAfter.Format(time.RFC3339), win, e.NextRenewal.Format(time.RFC3339), e.Why, lastErr)
	}
	return tw.Flush()
}
