package certmgr

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"io/fs"
	"log/slog"
	"time"

	"github.com/go-acme/lego/v5/certcrypto"

	"github.com/zoku/zoku/internal/acmeclient"
	"github.com/zoku/zoku/internal/storage"
)

// This file is the one issuing path of zoku: `zoku run`, deploy targets,
// `zoku obtain` and `zoku renew` all order through issue. It locks the
// certificate's name in storage, reads storage again, orders only if the
// certificate is still due, saves the result under the lock (fenced: a
// holder whose lease expired cannot overwrite a newer certificate) and
// publishes an event.

// Action says what issue did.
type Action string

// Actions of issue.
const (
	// Ordered: a new certificate was ordered and saved.
	Ordered Action = "ordered"
	// KeptStored: another process or node stored a certificate since the
	// caller looked; that one is kept and nothing was ordered.
	KeptStored Action = "kept-stored"
	// NotDue: the stored certificate is not due for renewal.
	NotDue Action = "not-due"
)

// Order describes one certificate to obtain or renew through the issuing
// path.
type Order struct {
	Set Set
	// Seen is the serial (hex) of the certificate the caller decided to
	// replace, "" when it saw none. A stored certificate with another
	// serial that covers the set's names was stored by someone else since:
	// it is kept.
	Seen string
	// KeepNewerThan, when set, keeps a stored certificate that was stored
	// at or after it (a command started then: whatever another process
	// stored since is fresh enough), whatever Seen says.
	KeepNewerThan time.Time
	// Force orders even when the certificate seen is not due.
	Force bool
	// Days, when positive, is lego's --days rule for the re-check.
	Days int
	// NoARI ignores stored renewal information in the re-check.
	NoARI bool
	// Renew renews the stored certificate (same names, "replaces"); when
	// false a new certificate is ordered for Set.Domains.
	Renew bool
	// NoReplaces leaves out the ARI "replaces" field.
	NoReplaces bool
	// CSR, when set, is finalised instead of a key zoku generates;
	// PrivateKey (optional) goes with it and is stored.
	CSR        *x509.CertificateRequest
	PrivateKey crypto.Signer
	// PreferredChain, MustStaple, NotBefore and NotAfter are passed to
	// the CA.
	PreferredChain      string
	MustStaple          bool
	NotBefore, NotAfter time.Time
	// WritePEM also writes <name>.pem (an existing one is always kept in
	// step).
	WritePEM bool
	// Issuer overrides the set's issuers for this order.
	Issuer Issuer
	// Wait makes issue wait for the name's lock; otherwise a name locked
	// by another process fails with storage.ErrLocked at once.
	Wait bool
}

// Result is what issue did.
type Result struct {
	Action Action
	// Bundle is the certificate stored afterwards (the new one, or the
	// one kept).
	Bundle *storage.Bundle
	Leaf   *x509.Certificate
	// Reason says why it was (or was not) due.
	Reason string
	// Issuer is the directory URL of the CA ordered from ("" when nothing
	// was ordered).
	Issuer string
}

// StorageError is a failure of the storage (unreachable etcd, a full
// disk) on the issuing path, before anything was ordered: the scheduler
// tries again soon instead of backing off as after a CA's refusal.
type StorageError struct {
	Op  string
	Err error
}

func (e *StorageError) Error() string { return "certmgr: storage: " + e.Op + ": " + e.Err.Error() }

// Unwrap returns the storage's error.
func (e *StorageError) Unwrap() error { return e.Err }

// lockName is the storage lock of a certificate name.
func lockName(name string) string { return "certificates/" + storage.SanitizedName(name) }

// issue runs the issuing path for o with iss. It returns storage.ErrLocked
// (wrapped) when !o.Wait and another holder has the name.
func (m *Manager) issue(ctx context.Context, o Order, iss Issuer) (Result, error) {
	store := m.opts.Store
	var (
		lease storage.Lease
		err   error
	)
	if o.Wait {
		lease, err = store.Backend().Lock(ctx, lockName(o.Set.Name))
	} else {
		lease, err = store.Backend().TryLock(ctx, lockName(o.Set.Name))
	}
	if err != nil {
		if errors.Is(err, storage.ErrLocked) {
			return Result{}, err
		}
		return Result{}, &StorageError{Op: "lock " + o.Set.Name, Err: err}
	}
	defer func() { _ = lease.Unlock(context.WithoutCancel(ctx)) }()

	cur, err := store.LoadCertificate(ctx, o.Set.Name)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		m.log.Warn("stored certificate unreadable; ordering a new one", "domain", o.Set.Name, "error", err)
		cur = nil
	} else if err != nil {
		cur = nil
	}
	if res, keep := m.recheck(o, cur); keep {
		return res, nil
	}

	c, reason, err := m.place(ctx, o, cur, iss)
	if err != nil {
		return Result{Reason: reason, Issuer: iss.Server()}, err
	}
	b := bundleOf(c, iss.Server(), o)
	b.Meta.StoredAt, b.Meta.StoredBy = m.opts.Now().UTC(), m.opts.Holder
	if cur != nil && o.Renew {
		b.Meta.Origin = firstNonEmpty(cur.Meta.Origin, b.Meta.Origin)
	}
	if err := store.SaveCertificate(storage.WithFence(ctx, lease), b); err != nil {
		// The new certificate is lost with it; a fenced write means
		// another holder took the name over and stored its own.
		return Result{Reason: reason, Issuer: iss.Server()}, &StorageError{Op: "save " + o.Set.Name, Err: err}
	}
	where := store.CertPaths(o.Set.Name).Cert
	if where == "" {
		where = store.Backend().String()
	}
	m.log.Info("certificate saved", "cert_name", o.Set.Name, "path", where)
	return Result{Action: Ordered, Bundle: b, Leaf: c.Leaf, Reason: reason, Issuer: iss.Server()}, nil
}

// recheck decides, holding the lock, whether the stored certificate makes
// the order unnecessary.
func (m *Manager) recheck(o Order, cur *storage.Bundle) (Result, bool) {
	if cur == nil {
		return Result{}, false
	}
	leaf := leafOf(cur)
	if leaf == nil || !leafCovers(leaf, o.Set.Domains) || !m.opts.Now().Before(leaf.NotAfter) {
		return Result{}, false
	}
	if m.opts.Usable != nil && m.opts.Usable(cur) != nil {
		return Result{}, false
	}
	if _, _, err := checkChain(cur); err != nil {
		return Result{}, false
	}
	serial := leaf.SerialNumber.Text(16)
	if serial != o.Seen || (!o.KeepNewerThan.IsZero() && !cur.Meta.StoredAt.Before(o.KeepNewerThan)) {
		return Result{Action: KeptStored, Bundle: cur, Leaf: leaf, Reason: "stored by another process since"}, true
	}
	if o.Force || o.CSR != nil || !o.Renew {
		return Result{}, false
	}
	var ari *storage.RenewalInfo
	if !o.NoARI {
		ari = freshARI(cur.Meta.RenewalInfo, leaf)
	}
	d := Due(leaf, ari, m.opts.Now(), Policy{Days: o.Days, Rand: m.jitterFor(o.Set.Name)})
	if !d.Due {
		return Result{Action: NotDue, Bundle: cur, Leaf: leaf, Reason: d.Reason}, true
	}
	return Result{}, false
}

// jitterFor returns the fixed point inside an ARI window the manager uses
// for name (so the re-check agrees with the scheduler that decided).
func (m *Manager) jitterFor(name string) func(int64) int64 {
	m.mu.Lock()
	j := 0.5
	if st, ok := m.states[name]; ok {
		j = st.jitter
	}
	m.mu.Unlock()
	return func(n int64) int64 { return int64(j * float64(n)) }
}

// place orders from the CA: a renewal when a certificate of the set is
// stored, else a new order.
func (m *Manager) place(ctx context.Context, o Order, cur *storage.Bundle, iss Issuer) (*acmeclient.Certificate, string, error) {
	s := o.Set
	pol := m.pol.Load()
	profile := firstNonEmpty(s.Profile, pol.profile)
	keyType := s.KeyType
	if keyType == "" {
		keyType = pol.keyType
	}
	if o.CSR == nil && cur != nil && covers(cur, s.Domains) && len(cur.PrivateKey) > 0 {
		// "replaces" names a certificate of the CA we order from; a
		// fallback CA never saw the old one.
		noReplaces := o.NoReplaces || (cur.Meta.Server != "" && cur.Meta.Server != iss.Server())
		reuse := s.ReuseKey || pol.reuseKey
		if reuse {
			keyType = ""
		}
		c, err := iss.Renew(ctx, acmeclient.RenewRequest{
			Name: s.Name, Domains: s.Domains, Certificate: cur.Certificate, PrivateKey: cur.PrivateKey,
			KeyType: keyType, ReuseKey: reuse, Profile: firstNonEmpty(profile, cur.Meta.Profile),
			PreferredChain: firstNonEmpty(o.PreferredChain, cur.Meta.PreferredChain), NoReplaces: noReplaces, MustStaple: o.MustStaple,
		})
		return c, "renewal", err
	}
	c, err := iss.Obtain(ctx, acmeclient.ObtainRequest{
		Name: s.Name, Domains: s.Domains, CSR: o.CSR, PrivateKey: o.PrivateKey, KeyType: keyType, Profile: profile,
		PreferredChain: o.PreferredChain, MustStaple: o.MustStaple, NotBefore: o.NotBefore, NotAfter: o.NotAfter,
	})
	return c, "new certificate", err
}

// bundleOf turns what the CA issued into a storage set filed under server.
func bundleOf(c *acmeclient.Certificate, server string, o Order) *storage.Bundle {
	b := &storage.Bundle{
		Meta: storage.CertMeta{
			ID: c.ID, Domains: c.Domains, KeyType: c.KeyType, PreferredChain: c.PreferredChain, Profile: c.Profile,
			CertURL: c.CertURL, CertStableURL: c.CertStableURL, Origin: "command", Server: server,
			RenewalInfo: storedARI(c.RenewalInfo),
		},
		Certificate: c.Certificate, IssuerCertificate: c.IssuerCertificate, PrivateKey: c.PrivateKey,
		WritePEM: o.WritePEM,
	}
	if b.Meta.KeyType == "" && c.Leaf != nil {
		b.Meta.KeyType, _ = certcrypto.GetKeyType(c.Leaf.PublicKey)
	}
	if len(b.PrivateKey) == 0 && o.PrivateKey != nil {
		if pemKey := certcrypto.PEMEncode(o.PrivateKey); len(pemKey) > 0 {
			b.PrivateKey = pemKey
		}
	}
	return b
}

// storedARI converts the protocol's ARI answer into the stored form.
func storedARI(ri *acmeclient.RenewalInfo) *storage.RenewalInfo {
	if ri == nil {
		return nil
	}
	return &storage.RenewalInfo{WindowStart: ri.WindowStart, WindowEnd: ri.WindowEnd, ExplanationURL: ri.ExplanationURL, NextPoll: ri.NextPoll, FetchedAt: ri.FetchedAt}
}

// OrderNow runs the issuing path once, for the command line (`zoku
// obtain`, `zoku renew`, lego's run): it waits for the name's lock, and
// orders from o.Issuer, else the set's first issuer, else the manager's
// first. It does not touch the manager's schedule; the event is published.
func (m *Manager) OrderNow(ctx context.Context, o Order) (Result, error) {
	iss := o.Issuer
	if iss == nil {
		issuers := m.issuersOf(o.Set)
		if len(issuers) == 0 {
			return Result{}, errors.New("certmgr: no CA configured")
		}
		iss = issuers[0]
	}
	o.Wait = true
	res, err := m.issue(ctx, o, iss)
	switch {
	case err != nil:
		m.emit(Event{Kind: EventFailed, Name: o.Set.Name, Err: err, Issuer: iss.Server()})
	case res.Action == Ordered:
		kind := EventObtained
		if o.Seen != "" {
			kind = EventRenewed
		}
		m.logEvent(slog.LevelInfo, "certificate "+string(kind), kind, o.Set.Name, res.Leaf, iss.Server(), nil)
		m.emit(Event{Kind: kind, Name: o.Set.Name, Bundle: res.Bundle, Issuer: iss.Server()})
	}
	return res, err
}

// issuersOf returns the issuers of a set: its own, else the manager's.
func (m *Manager) issuersOf(s Set) []Issuer {
	if len(s.Issuers) > 0 {
		return s.Issuers
	}
	return m.pol.Load().issuers
}

// issuerNamed returns the issuer whose Server is server among issuers,
// else the first.
func issuerNamed(issuers []Issuer, server string) Issuer {
	if len(issuers) == 0 {
		return nil
	}
	for _, iss := range issuers {
		if iss.Server() == server {
			return iss
		}
	}
	return issuers[0]
}
