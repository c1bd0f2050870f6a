package certmgr

import (
	"context"
	"crypto/x509"
	"errors"
	"sort"
	"strings"
	"time"

	"github.com/zoku/zoku/internal/storage"
)

// Status describes one managed certificate, for the admin API and metrics.
type Status struct {
	Name        string    `json:"name"`
	Domains     []string  `json:"domains"`
	Issuer      string    `json:"issuer,omitempty"`
	CA          string    `json:"ca,omitempty"` // directory URL of the issuing CA
	Serial      string    `json:"serial,omitempty"`
	KeyType     string    `json:"keyType,omitempty"`
	NotBefore   time.Time `json:"notBefore"`
	NotAfter    time.Time `json:"notAfter"`
	ARIStart    time.Time `json:"ariWindowStart"`
	ARIEnd      time.Time `json:"ariWindowEnd"`
	NextRenewal time.Time `json:"nextRenewal"`
	NextReason  string    `json:"nextRenewalReason"`
	OnDemand    bool      `json:"onDemand"`
	Pending     bool      `json:"pending"` // an order or ARI poll is running now
	Failures    int       `json:"failures"`
	RetryAt     time.Time `json:"retryAt"`
	LastErr     string    `json:"lastError,omitempty"`
}

// Statuses returns the managed certificates, sorted by name.
//
// The lock is held only to copy each state's fields: the strings, the
// renewal point and the sort are made after it is released, so that a
// status of 100,000 certificates (the fleet's, every minute) does not
// hold up handshakes and loads that need the lock meanwhile. The copied
// pointers are safe to read unlocked: a state's leaf, bundle, ARI and
// error are replaced, never changed in place.
func (m *Manager) Statuses() []Status {
	type snapshot struct {
		set             Set
		bundle          *storage.Bundle
		leaf            *x509.Certificate
		ari             *storage.RenewalInfo
		jitter          float64
		force, inFlight bool
		onDemand        bool
		failures        int
		retryAt         time.Time
		lastErr         error
	}
	m.mu.Lock()
	snaps := make([]snapshot, 0, len(m.states))
	for _, st := range m.states {
		snaps = append(snaps, snapshot{set: st.set, bundle: st.bundle, leaf: st.leaf, ari: st.ari, jitter: st.jitter,
			force: st.force, inFlight: st.inFlight, onDemand: st.onDemand, failures: st.failures, retryAt: st.retryAt, lastErr: st.lastErr})
	}
	m.mu.Unlock()
	now := m.opts.Now()
	out := make([]Status, len(snaps))
	for i, st := range snaps {
		s := Status{Name: st.set.Name, Domains: st.set.Domains, Failures: st.failures, RetryAt: st.retryAt, Pending: st.inFlight, OnDemand: st.onDemand}
		if st.lastErr != nil {
			s.LastErr = st.lastErr.Error()
		}
		if leaf := st.leaf; leaf != nil {
			s.Issuer, s.Serial, s.CA = leaf.Issuer.CommonName, leaf.SerialNumber.Text(16), st.bundle.Meta.Server
			s.NotBefore, s.NotAfter = leaf.NotBefore, leaf.NotAfter
			s.KeyType = string(st.bundle.Meta.KeyType)
			if st.ari != nil {
				s.ARIStart, s.ARIEnd = st.ari.WindowStart, st.ari.WindowEnd
			}
			j := st.jitter
			d := Due(leaf, st.ari, now, Policy{Force: st.force, Rand: func(n int64) int64 { return int64(j * float64(n)) }})
			s.NextRenewal, s.NextReason = d.At, d.Reason
			if !st.retryAt.IsZero() && st.retryAt.After(s.NextRenewal) {
				s.NextRenewal, s.NextReason = st.retryAt, "retry after failure: "+s.NextReason
			}
		}
		out[i] = s
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// StoredStatus describes a stored certificate the way Statuses describes a
// managed one, for tools that read storage without a running manager
// (`zoku list`): same fields, same renewal point (JitterOf), same words.
func StoredStatus(b *storage.Bundle, now time.Time) (Status, error) {
	s := Status{Name: b.Meta.ID, Domains: b.Meta.Domains, CA: b.Meta.Server, KeyType: string(b.Meta.KeyType), LastErr: b.Meta.LastError}
	leaf, err := b.Leaf()
	if err != nil {
		return s, err
	}
	s.Issuer, s.Serial = leaf.Issuer.CommonName, leaf.SerialNumber.Text(16)
	s.NotBefore, s.NotAfter = leaf.NotBefore, leaf.NotAfter
	ari := freshARI(b.Meta.RenewalInfo, leaf)
	if ari != nil {
		s.ARIStart, s.ARIEnd = ari.WindowStart, ari.WindowEnd
	}
	d := Due(leaf, ari, now, Policy{Rand: AtFraction(JitterOf(leaf))})
	s.NextRenewal, s.NextReason = d.At, d.Reason
	return s, nil
}

// RenewNow renews name at once, whatever its dates (the admin API's
// POST .../renew). It returns ErrNotManaged for an unknown name.
func (m *Manager) RenewNow(name string) error {
	m.mu.Lock()
	st, ok := m.states[name]
	if ok {
		st.force, st.retryAt, st.replaced = true, time.Time{}, ""
		m.wake(st)
	}
	m.mu.Unlock()
	if !ok {
		return ErrNotManaged
	}
	m.Kick()
	return nil
}

// Revoke revokes the served certificate of name with an RFC 5280 reason
// and orders its replacement at once; the revoked one is served until the
// replacement is in.
func (m *Manager) Revoke(ctx context.Context, name string, reason uint) error {
	m.mu.Lock()
	st, ok := m.states[name]
	var b *storage.Bundle
	if ok {
		b = st.bundle
	}
	m.mu.Unlock()
	if !ok {
		return ErrNotManaged
	}
	if b == nil {
		return errors.New("certmgr: " + name + " has no certificate yet")
	}
	m.mu.Lock()
	iss := issuerNamed(m.issuersOf(st.set), b.Meta.Server)
	m.mu.Unlock()
	if iss == nil {
		return errors.New("certmgr: no CA configured")
	}
	if err := iss.Revoke(ctx, name, b.Certificate, &reason); err != nil {
		return err
	}
	m.emit(Event{Kind: EventRevoked, Name: name, Bundle: b, Issuer: b.Meta.Server})
	return m.RenewNow(name)
}

// leafOf parses b's leaf; nil for a nil or broken bundle.
func leafOf(b *storage.Bundle) *x509.Certificate {
	if b == nil {
		return nil
	}
	leaf, err := b.Leaf()
	if err != nil {
		return nil
	}
	return leaf
}

// covers reports whether the stored certificate names every domain.
func covers(b *storage.Bundle, domains []string) bool {
	leaf := leafOf(b)
	return leaf != nil && leafCovers(leaf, domains)
}

// leafCovers reports whether leaf names every domain.
func leafCovers(leaf *x509.Certificate, domains []string) bool {
	have := map[string]bool{}
	for _, n := range append(append([]string(nil), leaf.DNSNames...), ipNames(leaf)...) {
		have[strings.ToLower(n)] = true
	}
	for _, d := range domains {
		if !have[strings.ToLower(d)] {
			return false
		}
	}
	return true
}

func ipNames(leaf *x509.Certificate) []string {
	out := make([]string, 0, len(leaf.IPAddresses))
	for _, ip := range leaf.IPAddresses {
		out = append(out, ip.String())
	}
	return out
}
