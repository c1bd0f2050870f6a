package cli

import (
	"context"
	"errors"
	"fmt"
	"time"
)

func runRevoke(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet("revoke", "", "Revoke a stored certificate with the account that ordered it, then move its files\ninto <path>/archives/certificates/ (unless --keep).", env)
	var (
		af     accountFlags
		names  listFlag
		reason uint
		keep   bool
	)
	af.register(fs)
	fs.Var(&names, "domains", "name of the certificate to revoke (repeatable)")
	fs.Var(&names, "d", "short for --domains")
	fs.Var(&names, "cert.name", "same as --domains")
	fs.UintVar(&reason, "reason", 0, "RFC 5280 reason code: 0 unspecified, 1 keyCompromise, 3 affiliationChanged, 4 superseded, 5 cessationOfOperation")
	fs.BoolVar(&keep, "keep", false, "keep the files in place instead of archiving them")
	if err := parse(fs, args); err != nil {
		return err
	}
	if len(names) == 0 {
		return errors.New("name the certificate to revoke with -d NAME; 'zoku list' shows them")
	}
	switch reason {
	case 0, 1, 3, 4, 5:
	default:
		return fmt.Errorf("--reason %d is not one a subscriber may use; use 0, 1, 3, 4 or 5", reason)
	}
	s, err := openSession(ctx, env, &af, &challengeFlags{}, false)
	if err != nil {
		return err
	}
	defer s.close()
	all, err := s.store.ListCertificates(ctx)
	if err != nil {
		return err
	}
	todo, err := pick(all, names)
	if err != nil {
		return err
	}
	explicitServer := flagGiven(fs, "server")
	for _, b := range todo {
		iss := s.issuer
		if !explicitServer && b.Meta.Server != "" && b.Meta.Server != s.issuer.Server() {
			iss = s.issuerAt(b.Meta.Server)
		}
		if err := iss.Revoke(ctx, b.Meta.ID, b.Certificate, &reason); err != nil {
			return err
		}
		if keep {
			fmt.Fprintf(env.Stdout, "%s: revoked (files kept)\n", b.Meta.ID)
			continue
		}
		zip, err := s.store.ArchiveCertificate(ctx, b.Meta.ID, time.Now())
		if err != nil {
			return fmt.Errorf("%s was revoked but archiving failed: %w", b.Meta.ID, err)
		}
		fmt.Fprintf(env.Stdout, "%s: revoked, files archived in %s\n", b.Meta.ID, zip)
	}
	return nil
}
