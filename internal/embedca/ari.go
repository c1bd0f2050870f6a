package embedca

import (
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// renewalInfoPathPrefix is Pebble's ARI endpoint (draft-03 path, RFC 9773
// semantics).
const renewalInfoPathPrefix = "/draft-ietf-acme-ari-03/renewalInfo/"

// ari answers renewalInfo itself instead of Pebble, for two reasons:
//   - Pebble's window is two days wide around the two-thirds point and
//     its Retry-After is six hours whatever the lifetime, so a 2-minute
//     certificate would get a window as long as its life and be polled
//     never; here the window and the polling interval scale with the
//     lifetime (identical to Pebble's from 72 hours up);
//   - overrides set by SetRenewalInfo live here under a lock, not in
//     Pebble's certificate records, which its handlers read unlocked.
type ari struct {
	mu        sync.Mutex
	overrides map[string][]byte // guarded by mu; serial (hex) -> JSON
}

// window returns the suggested window and polling interval for a
// certificate valid from nb to na.
func ariWindow(nb, na time.Time) (start, end time.Time, retry time.Duration) {
	life := na.Sub(nb)
	center := na.Add(-life / 3)
	half := min(24*time.Hour, life/20)
	retry = min(max(life/24, time.Second), 6*time.Hour)
	return center.Add(-half), center.Add(half), retry
}

func (c *CA) serveRenewalInfo(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodGet || !strings.HasPrefix(r.URL.Path, renewalInfoPathPrefix) {
		return false
	}
	id := strings.TrimPrefix(r.URL.Path, renewalInfoPathPrefix)
	_, serialB64, ok := strings.Cut(id, ".")
	raw, err := base64.RawURLEncoding.DecodeString(serialB64)
	if !ok || err != nil || len(raw) == 0 {
		return false // let Pebble explain the malformed ID
	}
	serial := new(big.Int).SetBytes(raw)
	cert := c.db.GetCertificateBySerial(serial)
	if cert == nil {
		return false
	}
	start, end, retry := ariWindow(cert.Cert.NotBefore, cert.Cert.NotAfter)
	c.ari.mu.Lock()
	override := c.ari.overrides[serial.Text(16)]
	c.ari.mu.Unlock()
	var body []byte
	switch {
	case override != nil:
		body = override
	case c.db.GetRevokedCertificateBySerial(serial) != nil:
		// Revoked: renew now (a window that has already passed).
		now := time.Now().UTC()
		body = windowJSON(now.Add(-time.Hour), now.Add(-time.Hour+time.Second))
	default:
		body = windowJSON(start, end)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Retry-After", strconv.Itoa(int(retry/time.Second)))
	_, _ = w.Write(body)
	return true
}

func windowJSON(start, end time.Time) []byte {
	type window struct {
		Start time.Time `json:"start"`
		End   time.Time `json:"end"`
	}
	b, _ := json.Marshal(struct {
		SuggestedWindow window `json:"suggestedWindow"`
	}{window{start.UTC().Truncate(time.Millisecond), end.UTC().Truncate(time.Millisecond)}})
	return b
}
