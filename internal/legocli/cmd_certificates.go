package legocli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/zoku/zoku/internal/storage"
)

// listedCertificate is one entry of `lego certificates list --json`, with
// lego's field names.
type listedCertificate struct {
	Name           string   `json:"name,omitempty"`
	Domains        []string `json:"domains,omitempty"`
	IPs            []string `json:"ips,omitempty"`
	ExpirationDate string   `json:"expirationDate,omitempty"`
	Expired        bool     `json:"expired"`
	Issuer         string   `json:"issuer,omitempty"`
	Path           string   `json:"path,omitempty"`
}

// runCertificatesList is `lego certificates list`: every stored
// certificate with its names, expiry, issuer and file (v4 and v5 layouts).
func runCertificatesList(ctx context.Context, inv *invocation) error {
	if err := inv.refuseUnavailable(); err != nil {
		return err
	}
	path, err := inv.path()
	if err != nil {
		return err
	}
	st, err := openStore(path)
	if err != nil {
		return err
	}
	all, lerr := st.ListCertificates(ctx)
	out := []listedCertificate{}
	for _, b := range all {
		leaf, err := b.Leaf()
		if err != nil {
			return err
		}
		e := listedCertificate{
			Name: storage.SanitizedName(b.Meta.ID), Domains: leaf.DNSNames,
			ExpirationDate: leaf.NotAfter.String(), Expired: leaf.NotAfter.Before(inv.env.Now()),
			Issuer: leaf.Issuer.String(), Path: st.CertPaths(b.Meta.ID).Cert,
		}
		for _, ip := range leaf.IPAddresses {
			e.IPs = append(e.IPs, ip.String())
		}
		out = append(out, e)
	}
	w := inv.env.Stdout
	if inv.flags.Bool("json") {
		if len(all) == 0 {
			out = nil
		}
		if err := json.NewEncoder(w).Encode(out); err != nil {
			return err
		}
		return lerr
	}
	if len(out) == 0 {
		fmt.Fprintln(w, "No certificates found.")
		return lerr
	}
	fmt.Fprintln(w, "Certificates:")
	for _, e := range out {
		fmt.Fprintln(w, e.Name)
		if e.Expired {
			fmt.Fprintln(w, "├── Status: expired")
		}
		if len(e.Domains) > 0 {
			fmt.Fprintln(w, "├── Domains:", strings.Join(e.Domains, ", "))
		}
		if len(e.IPs) > 0 {
			fmt.Fprintln(w, "├── IPs:", strings.Join(e.IPs, ","))
		}
		fmt.Fprintln(w, "├── Expiration Date:", e.ExpirationDate)
		fmt.Fprintln(w, "├── Issuer:", e.Issuer)
		fmt.Fprintln(w, "└── Certificate Path:", e.Path)
		fmt.Fprintln(w)
	}
	return lerr
}

// runRevoke is `lego certificates revoke` (and v4's `revoke`): revoke each
// named certificate with the stored account, then archive its files
// (archives/certificates/<name>_<unix>.zip) unless --keep.
func runRevoke(ctx context.Context, inv *invocation) error {
	if err := inv.refuseUnavailable(); err != nil {
		return err
	}
	names := inv.flags.List("cert.name")
	if len(names) == 0 {
		return usagef("name the certificates to revoke with --cert.name/-c")
	}
	o, err := inv.sessionOptions()
	if err != nil {
		return err
	}
	o.AccountKeyType = inv.flags.String("key-type")
	sess, err := inv.open.Open(ctx, o)
	if err != nil {
		return err
	}
	defer sess.Close()
	store, iss := sess.Store(), sess.Issuer()
	if _, err := store.LoadAccount(ctx, iss.Server(), iss.AccountID()); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("the account %s is not registered at %s; pass the --email/--account-id and --server of the account that ordered the certificates", iss.AccountID(), iss.Server())
		}
		return err
	}
	reason := uint(inv.flags.Int("reason"))
	for _, id := range names {
		sess.Logger().Info("revoking the certificate", "cert_name", id)
		b, err := store.LoadCertificate(ctx, id)
		if err != nil {
			return fmt.Errorf("read the certificate %s: %w", id, err)
		}
		if err := iss.Revoke(ctx, id, b.Certificate, &reason); err != nil {
			return fmt.Errorf("revoke the certificate %s: %w", id, err)
		}
		sess.Logger().Info("certificate revoked", "cert_name", id)
		if inv.flags.Bool("keep") {
			continue
		}
		zip, err := store.ArchiveCertificate(ctx, id, time.Now())
		if err != nil {
			return fmt.Errorf("%s was revoked but archiving its files failed: %w", id, err)
		}
		sess.Logger().Info("certificate archived", "cert_name", id, "archive", zip)
	}
	return nil
}

// openStore opens a lego folder for the commands that only read it.
func openStore(path string) (*storage.Store, error) {
	st, err := storage.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--path: %w", err)
	}
	return st, nil
}
