package certmgr

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/storage"
)

func TestDue(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	cert := func(age, life time.Duration) *x509.Certificate {
		return &x509.Certificate{NotBefore: now.Add(-age), NotAfter: now.Add(-age + life)}
	}
	day := 24 * time.Hour
	window := func(from, to time.Duration) *storage.RenewalInfo {
		return &storage.RenewalInfo{WindowStart: now.Add(from), WindowEnd: now.Add(to)}
	}
	mid := func(n int64) int64 { return n / 2 }
	tests := []struct {
		name    string
		leaf    *x509.Certificate
		info    *storage.RenewalInfo
		policy  Policy
		wantDue bool
		wantAt  time.Time
		reason  string
	}{
		{"fresh 90 days", cert(day, 90*day), nil, Policy{}, false, now.Add(-day + 60*day), "one third"},
		{"61 of 90 days used", cert(61*day, 90*day), nil, Policy{}, true, now.Add(-61*day + 60*day), "one third"},
		{"6-day certificate, 2 days in", cert(2*day, 6*day), nil, Policy{}, false, now.Add(-2*day + 3*day), "one half"},
		{"6-day certificate, 4 days in", cert(4*day, 6*day), nil, Policy{}, true, now.Add(-4*day + 3*day), "one half"},
		{"ARI window ahead", cert(day, 90*day), window(10*day, 12*day), Policy{Rand: mid}, false, now.Add(11 * day), "ARI window"},
		{"ARI window passed", cert(day, 90*day), window(-2*day, -day), Policy{Rand: mid}, true, now.Add(-36 * time.Hour), "ARI window"},
		{"ARI early renewal (revocation)", cert(day, 90*day), window(-time.Hour, -time.Hour+time.Second), Policy{Rand: mid}, true, now.Add(-time.Hour + 500*time.Millisecond), "ARI window"},
		{"invalid ARI window falls back", cert(day, 90*day), window(2*day, day), Policy{}, false, now.Add(59 * day), "lifetime rule"},
		{"force", cert(day, 90*day), nil, Policy{Force: true}, true, now, "forced"},
		{"days not reached", cert(day, 90*day), window(-day, 0), Policy{Days: 30}, false, now.Add(-day + 60*day), "--days 30"},
		{"days reached", cert(day, 90*day), nil, Policy{Days: 100}, true, now.Add(-day + 90*day - 100*day), "--days 100"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := Due(tc.leaf, tc.info, now, tc.policy)
			if d.Due != tc.wantDue || !d.At.Equal(tc.wantAt) || !strings.Contains(d.Reason, tc.reason) {
				t.Fatalf("Due = {%v %s %q}, want {%v %s ~%q}", d.Due, d.At, d.Reason, tc.wantDue, tc.wantAt, tc.reason)
			}
		})
	}
}
