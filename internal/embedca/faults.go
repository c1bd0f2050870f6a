package embedca

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
)

// newOrderPath is Pebble's newOrder endpoint.
const newOrderPath = "/order-plz"

// OrderRecord is one newOrder request the CA received.
type OrderRecord struct {
	// Identifiers are the names ordered.
	Identifiers []string
	// Replaces is the RFC 9773 "replaces" field, empty when absent.
	Replaces string
	// Refused is true when a fault knob refused the order.
	Refused bool
	// Status is the HTTP status of the CA's answer (201: the order was
	// created).
	Status int
}

// faults are switches for tests of what clients do when the CA misbehaves,
// and a record of orders so tests can see what clients sent.
type faults struct {
	mu             sync.Mutex
	down           bool          // guarded by mu
	rejectReplaces bool          // guarded by mu
	orders         []OrderRecord // guarded by mu
}

// SetDown makes every ACME request fail with 503 and a serverInternal
// problem (true) or restores service (false): an outage without losing the
// CA's state.
func (c *CA) SetDown(down bool) {
	c.faults.mu.Lock()
	c.faults.down = down
	c.faults.mu.Unlock()
}

// SetRejectReplaces makes newOrder refuse any order carrying "replaces"
// with 403 unauthorized, as some CAs do.
func (c *CA) SetRejectReplaces(reject bool) {
	c.faults.mu.Lock()
	c.faults.rejectReplaces = reject
	c.faults.mu.Unlock()
}

// Orders returns the newOrder requests received so far, in order.
func (c *CA) Orders() []OrderRecord {
	c.faults.mu.Lock()
	defer c.faults.mu.Unlock()
	return append([]OrderRecord(nil), c.faults.orders...)
}

// fault answers r itself when a fault is on, and records orders. It
// returns true when it answered, and the index of the order recorded (-1
// for other requests).
func (c *CA) fault(w http.ResponseWriter, r *http.Request) (bool, int) {
	c.faults.mu.Lock()
	down, reject := c.faults.down, c.faults.rejectReplaces
	c.faults.mu.Unlock()
	if down {
		problem(w, http.StatusServiceUnavailable, "serverInternal", "the CA is down for maintenance (embedded CA fault switch)")
		return true, -1
	}
	if r.Method != http.MethodPost || r.URL.Path != newOrderPath {
		return false, -1
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody))
	if err != nil {
		return false, -1
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec := decodeOrder(body)
	rec.Refused = reject && rec.Replaces != ""
	if rec.Refused {
		rec.Status = http.StatusForbidden
	}
	c.faults.mu.Lock()
	i := len(c.faults.orders)
	c.faults.orders = append(c.faults.orders, rec)
	c.faults.mu.Unlock()
	if rec.Refused {
		problem(w, http.StatusForbidden, "unauthorized", "the replaces field is not accepted for this account (embedded CA fault switch)")
		return true, i
	}
	return false, i
}

// orderAnswered records the status of the CA's answer to order i.
func (c *CA) orderAnswered(i, status int) {
	c.faults.mu.Lock()
	c.faults.orders[i].Status = status
	c.faults.mu.Unlock()
}

// statusWriter notes the status of an answer.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// decodeOrder reads the JWS payload of a newOrder request without
// verifying it (Pebble does that).
func decodeOrder(body []byte) OrderRecord {
	var jws struct {
		Payload string `json:"payload"`
	}
	var rec OrderRecord
	if json.Unmarshal(body, &jws) != nil {
		return rec
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(jws.Payload, "="))
	if err != nil {
		return rec
	}
	var order struct {
		Identifiers []struct {
			Value string `json:"value"`
		} `json:"identifiers"`
		Replaces string `json:"replaces"`
	}
	if json.Unmarshal(raw, &order) != nil {
		return rec
	}
	for _, id := range order.Identifiers {
		rec.Identifiers = append(rec.Identifiers, id.Value)
	}
	rec.Replaces = order.Replaces
	return rec
}

func problem(w http.ResponseWriter, status int, typ, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"type": "urn:ietf:params:acme:error:" + typ, "detail": detail, "status": status})
}
