package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/go-acme/lego/v5/certcrypto"

	"github.com/zoku/zoku/internal/acmeclient"
	"github.com/zoku/zoku/internal/certmgr"
	"github.com/zoku/zoku/internal/embedca"
	"github.com/zoku/zoku/internal/hook"
	"github.com/zoku/zoku/internal/storage"
)

func runRenew(ctx context.Context, env Env, args []string) error {
	started := time.Now().UTC()
	fs := newFlagSet("renew", "", "Renew the stored certificates that are due: inside the CA's ARI window when it\noffers one, else when one third of the lifetime is left. A lego folder (v4 or v5)\nworks as --path; renewed certificates are written in lego v5's layout.", env)
	var (
		af        accountFlags
		cf        challengeFlags
		names     listFlag
		days      int
		force     bool
		reuseKey  bool
		keyType   string
		hookCmd   string
		hookTO    time.Duration
		ariOff    bool
		noReplace bool
		out       outputFlags
		cl        clientFlags
	)
	cl.register(fs)
	af.register(fs)
	cf.register(fs)
	fs.Var(&names, "domains", "renew only the certificate with this name (repeatable; default: all)")
	fs.Var(&names, "d", "short for --domains")
	fs.Var(&names, "cert.name", "same as --domains")
	fs.Var(&names, "c", "same as --domains")
	fs.IntVar(&days, "days", 0, "renew when fewer than this many days are left (ignores ARI)")
	fs.IntVar(&days, "renew-days", 0, "same as --days (lego v5's name)")
	fs.BoolVar(&force, "force", false, "renew now, whatever the dates")
	fs.BoolVar(&force, "renew-force", false, "same as --force (lego v5's name)")
	fs.Func("no-random-sleep", "accepted for lego compatibility: zoku renew does not pause at random (zoku lego run does)", func(string) error { return nil })
	out.register(fs, env)
	fs.BoolVar(&reuseKey, "reuse-key", false, "keep the current private key (default: a fresh key)")
	fs.StringVar(&keyType, "key-type", "", "key type of the new key (default: the current one)")
	fs.StringVar(&hookCmd, "deploy-hook", "", "shell command run after each renewal, with lego, certbot and acme.sh variables")
	fs.DurationVar(&hookTO, "deploy-hook-timeout", hook.DefaultTimeout, "time limit of the deploy hook")
	fs.BoolVar(&ariOff, "ari-disable", false, "ignore the CA's renewal information (ARI)")
	fs.BoolVar(&noReplace, "no-replaces", false, "do not send the ARI 'replaces' field")
	if err := parse(fs, args); err != nil {
		return err
	}
	if days < 0 {
		return errors.New("--days must be positive")
	}
	var kt certcrypto.KeyType
	if keyType != "" {
		var err error
		if kt, err = parseKeyType(keyType); err != nil {
			return err
		}
	}

	explicitServer := flagGiven(fs, "server")
	// What to renew is known before any listener is bound or CA asked.
	store, closer, err := openStoreWith(ctx, af.path, "--path", nil, env.Getenv) // storage key: ZOKU_STORAGE_KEY_FILE (storage.go)
	if err != nil {
		return err
	}
	all, err := store.ListCertificates(ctx)
	_ = closer.Close()
	if err != nil {
		return err
	}
	todo, err := pick(all, names)
	if err != nil {
		return err
	}
	if len(todo) == 0 {
		fmt.Fprintf(env.Stdout, "no certificates in %s\n", af.path)
		return nil
	}
	if !explicitServer {
		// A certificate renews at the CA that issued it: the first one's
		// CA is the session's; others get their own issuer below.
		if srv := todo[0].Meta.Server; srv == embedca.StableDirectoryURL {
			af.server = serverEmbedded
		} else if srv != "" {
			af.server = srv
		}
	}
	if cl.webroot != "" {
		if !cf.http {
			return &usageError{msg: "--http.webroot goes with --http; run 'zoku renew --help'"}
		}
		cf.http = false // the web server answers; zoku binds nothing
	}
	s, err := openSession(ctx, env, &af, &cf, cl.webroot == "")
	if err != nil {
		return err
	}
	defer s.close()
	if err := s.applyClient(cl, s.log); err != nil {
		return err
	}
	out.apply(s.store)
	if cf.persist {
		var names []string
		for _, b := range todo {
			names = append(names, b.Meta.Domains...)
		}
		if err := s.enablePersist(ctx, env, &cf, names); err != nil {
			return err
		}
	}
	var failed []string
	for _, b := range todo {
		leaf, err := b.Leaf()
		if err != nil {
			s.log.Error("unreadable certificate", "cert_name", b.Meta.ID, "error", err)
			failed = append(failed, b.Meta.ID)
			continue
		}
		// A certificate renews at the CA that issued it unless --server
		// says otherwise.
		iss := s.issuer
		if !explicitServer && b.Meta.Server != "" && b.Meta.Server != s.issuer.Server() {
			if b.Meta.Server == embedca.StableDirectoryURL {
				s.log.Error("issued by the embedded CA; renew it on its own with --server embedded", "cert_name", b.Meta.ID)
				failed = append(failed, b.Meta.ID)
				continue
			}
			iss = s.issuerAt(b.Meta.Server)
		}
		var info *storage.RenewalInfo
		if !ariOff {
			ri, err := iss.RenewalInfo(ctx, leaf)
			if err != nil && !errors.Is(err, acmeclient.ErrNoARI) {
				s.log.Warn("renewal info unavailable; the lifetime rule applies", "cert_name", b.Meta.ID, "error", err)
			}
			info = storedARI(ri)
		}
		d := certmgr.Due(leaf, info, time.Now(), certmgr.Policy{Force: force, Days: days})
		if s.ca != nil && s.ca.CheckStored(b.Meta.Server, b.Certificate) != nil {
			// Issued under an embedded root that is gone: nobody trusts it.
			d.Due, d.Reason = true, "it does not chain to the embedded CA's root"
		}
		if !d.Due {
			fmt.Fprintf(env.Stdout, "%s: not due until %s (%s)\n", b.Meta.ID, d.At.UTC().Format(time.RFC3339), d.Reason)
			continue
		}
		s.log.Info("renewal due", "cert_name", b.Meta.ID, "reason", d.Reason)
		set := certmgr.Set{Name: b.Meta.ID, Domains: b.Meta.Domains, KeyType: kt, Profile: b.Meta.Profile, ReuseKey: reuseKey}
		ev := hook.Event{Name: set.Name, Domains: set.Domains, KeyType: string(b.Meta.KeyType),
			AccountID: iss.AccountID(), AccountEmail: iss.Email(), Server: iss.Server()}
		if err := s.runHook(ctx, env, "pre", out.preHook, ev, out.preTimeout); err != nil {
			s.log.Error("pre-hook failed; not renewed", "cert_name", b.Meta.ID, "error", err)
			failed = append(failed, b.Meta.ID)
			continue
		}
		res, err := s.mgr.OrderNow(ctx, certmgr.Order{
			Set: set, Seen: leaf.SerialNumber.Text(16), KeepNewerThan: started, Renew: true, Force: true, NoReplaces: noReplace, Issuer: iss,
			WritePEM: out.pem,
		})
		if perr := s.runHook(context.WithoutCancel(ctx), env, "post", out.postHook, ev, out.postTimeout); perr != nil {
			s.log.Error("post-hook failed", "cert_name", b.Meta.ID, "error", perr)
		}
		if err != nil {
			s.log.Error("renewal failed; the current certificate stays", "cert_name", b.Meta.ID, "error", err)
			failed = append(failed, b.Meta.ID)
			continue
		}
		if res.Action == certmgr.KeptStored {
			fmt.Fprintf(env.Stdout, "%s: renewed by another process meanwhile; kept its certificate\n", b.Meta.ID)
			continue
		}
		fmt.Fprintf(env.Stdout, "%s: renewed (%s)\n", res.Bundle.Meta.ID, d.Reason)
		if hookCmd != "" {
			if err := s.runDeployHook(ctx, env, res.Bundle, iss, hookCmd, hookTO); err != nil {
				s.log.Error("deploy hook failed", "cert_name", res.Bundle.Meta.ID, "error", err)
				failed = append(failed, res.Bundle.Meta.ID)
			}
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d certificates failed: %s", len(failed), len(todo), strings.Join(failed, ", "))
	}
	return nil
}

// storedARI converts an ARI answer into the stored form (nil stays nil).
func storedARI(ri *acmeclient.RenewalInfo) *storage.RenewalInfo {
	if ri == nil {
		return nil
	}
	return &storage.RenewalInfo{WindowStart: ri.WindowStart, WindowEnd: ri.WindowEnd, ExplanationURL: ri.ExplanationURL, NextPoll: ri.NextPoll, FetchedAt: ri.FetchedAt}
}

// flagGiven reports whether the flag was set on the command line.
func flagGiven(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			given = true
		}
	})
	return given
}

// runDeployHook writes the certbot-style lineage and runs the hook.
func (s *session) runDeployHook(ctx context.Context, env Env, b *storage.Bundle, iss *certmgr.ACMEIssuer, cmd string, timeout time.Duration) error {
	lineage, err := hook.WriteLineage(s.store.Root(), b)
	if err != nil {
		return err
	}
	ev := hook.Event{
		Name: b.Meta.ID, Domains: b.Meta.Domains, KeyType: string(b.Meta.KeyType),
		Paths: s.store.CertPaths(b.Meta.ID), Lineage: lineage,
		AccountID: iss.AccountID(), AccountEmail: iss.Email(), Server: iss.Server(),
	}
	return hook.Run(ctx, cmd, ev, timeout, env.Stdout, env.Stderr)
}

// runHook runs a pre- or post-hook (kind) through the shell with the
// certificate's variables; an empty command does nothing.
func (s *session) runHook(ctx context.Context, env Env, kind, command string, ev hook.Event, timeout time.Duration) error {
	if command == "" {
		return nil
	}
	return hook.RunAs(ctx, kind+" hook for "+ev.Name, command, ev, timeout, env.Stdout, env.Stderr)
}

// pick selects the certificates named (by id or by any of their domains);
// no names means all. An unknown name is an error.
func pick(all []*storage.Bundle, names []string) ([]*storage.Bundle, error) {
	if len(names) == 0 {
		return all, nil
	}
	var out []*storage.Bundle
	for _, n := range names {
		found := false
		for _, b := range all {
			if b.Meta.ID == n || storage.SanitizedName(b.Meta.ID) == n || contains(b.Meta.Domains, n) {
				out = append(out, b)
				found = true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("no stored certificate named %q; 'zoku list' shows them", n)
		}
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
