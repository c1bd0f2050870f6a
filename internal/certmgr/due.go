// Package certmgr decides when certificates are renewed and drives the
// engine to do it. This file holds the renewal rule shared by
// `zoku renew` and the long-running scheduler.
package certmgr

import (
	"crypto/x509"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"time"

	"github.com/zoku/zoku/internal/storage"
)

// Policy overrides the default renewal rule.
type Policy struct {
	// Force renews regardless of dates.
	Force bool
	// Days, when positive, renews when fewer than Days days are left and
	// ignores ARI (lego's --days / --renew-days).
	Days int
	// Rand picks the point inside an ARI window; nil means math/rand/v2.
	Rand func(n int64) int64
}

// Decision is the outcome of Due: whether to renew now, when otherwise,
// and why, in words a sysadmin can read.
type Decision struct {
	Due    bool
	At     time.Time
	Reason string
}

// Due applies the renewal rule to leaf at now:
//   - Force: due now.
//   - Days > 0: due when NotAfter - now < Days.
//   - ARI window (RFC 9773 §4.2): due at a uniformly random point inside the
//     window; when that point has passed, due now.
//   - otherwise due once one third of the lifetime is left (one half for
//     lifetimes under 10 days, such as the 6-day "shortlived" profile).
func Due(leaf *x509.Certificate, info *storage.RenewalInfo, now time.Time, p Policy) Decision {
	due, at, rule := decide(leaf, info, now, p)
	var why string
	switch rule {
	case ruleForced:
		why = "forced"
	case ruleDays:
		why = fmt.Sprintf("--days %d", p.Days)
	case ruleARI:
		why = fmt.Sprintf("ARI window %s to %s", info.WindowStart.UTC().Format(time.RFC3339), info.WindowEnd.UTC().Format(time.RFC3339))
	case ruleHalf:
		why = "lifetime rule: one half of the lifetime left"
	default:
		why = "lifetime rule: one third of the lifetime left"
	}
	return Decision{Due: due, At: at, Reason: why}
}

// The rules decide applies, for Due's reason.
const (
	ruleThird = iota
	ruleHalf
	ruleForced
	ruleDays
	ruleARI
)

// decide is Due without the words: the manager's look at every set uses
// it, and building 100,000 reasons nobody reads is not free.
func decide(leaf *x509.Certificate, info *storage.RenewalInfo, now time.Time, p Policy) (bool, time.Time, int) {
	switch {
	case p.Force:
		return true, now, ruleForced
	case p.Days > 0:
		at := leaf.NotAfter.Add(-time.Duration(p.Days) * 24 * time.Hour)
		return !now.Before(at), at, ruleDays
	case info != nil && info.WindowEnd.After(info.WindowStart):
		at := info.WindowStart
		if span := int64(info.WindowEnd.Sub(info.WindowStart)); span > 0 {
			rnd := p.Rand
			if rnd == nil {
				rnd = rand.Int64N
			}
			at = at.Add(time.Duration(rnd(span)))
		}
		return !now.Before(at), at, ruleARI
	}
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	frac, rule := life/3, ruleThird
	if life < 10*24*time.Hour {
		frac, rule = life/2, ruleHalf
	}
	at := leaf.NotAfter.Add(-frac)
	return !now.Before(at), at, rule
}

// JitterOf is the fraction in [0,1) of a certificate's ARI window at which
// it is renewed: fixed by its serial number, so every process that looks
// at the certificate (the scheduler, `zoku list`, the admin API, the other
// nodes of a cluster) names the same moment, and certificates issued
// together spread over their windows.
func JitterOf(leaf *x509.Certificate) float64 {
	h := fnv.New64a()
	_, _ = h.Write(leaf.SerialNumber.Bytes())
	return float64(h.Sum64()>>11) / float64(uint64(1)<<53)
}

// AtFraction returns a Policy.Rand that picks the point f of a window.
func AtFraction(f float64) func(int64) int64 {
	return func(n int64) int64 { return int64(f * float64(n)) }
}
