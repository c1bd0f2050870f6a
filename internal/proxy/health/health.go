// Package health tracks whether each backend server can take requests.
//
// The state of one server lives in a *Server, handed out by a Registry keyed
// by the server's URL. The Registry counts references, so a config reload
// that builds the new services before closing the old ones keeps the health
// and the in-flight count of every server that stays; a server that leaves
// the config is forgotten when its last user releases it. The Registry is
// owned by the router instance, never a package global, so two routers in
// one process (or two tests) do not share state.
//
// Two independent mechanisms mark a server down, and a server is up only
// when neither does:
//
//   - Active: a Checker probes every server of a service on a ticker
//     (HTTP GET of a path, with a timeout) and marks it up or down by the
//     result. A server starts up, so a new service serves at once.
//   - Passive: the proxy reports the outcome of real requests
//     (RecordFailure, RecordSuccess). MaxFailures failures in a row, the
//     first and last within Window, take the server out until Cooldown has
//     passed.
//
// A passing probe does not end a passive cooldown, and the end of a cooldown
// does not override a failing probe. Time is always passed in (or injected
// through a Now func), so tests drive cooldowns without sleeping.
//
// When two services name the same URL they share its Server: in-flight
// counts add up (which is what least-requests wants), and the latest check
// or passive verdict from either service applies to both.
package health

import (
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Passive's zero fields.
const (
	DefaultMaxFailures = 3
	DefaultWindow      = 10 * time.Second
	DefaultCooldown    = 30 * time.Second
)

// Passive is a service's passive health policy. Zero fields take the
// defaults above.
type Passive struct {
	// MaxFailures in a row take the server out; 0 means 3.
	MaxFailures int
	// Window bounds the time from the first to the last of those
	// failures; 0 means 10s. A failure after the window starts a new run.
	Window time.Duration
	// Cooldown is how long the server stays out; 0 means 30s.
	Cooldown time.Duration
}

func (p *Passive) limits() (maxFailures int, window, cooldown time.Duration) {
	maxFailures, window, cooldown = p.MaxFailures, p.Window, p.Cooldown
	if maxFailures <= 0 {
		maxFailures = DefaultMaxFailures
	}
	if window <= 0 {
		window = DefaultWindow
	}
	if cooldown <= 0 {
		cooldown = DefaultCooldown
	}
	return maxFailures, window, cooldown
}

// Server is the shared state of one backend server. Its methods are safe
// for concurrent use; the hot-path ones (Available, InFlight, StartRequest,
// EndRequest and RecordSuccess on a healthy server) take no lock.
type Server struct {
	url string

	inFlight   atomic.Int64
	activeDown atomic.Bool  // set by the last probe
	downUntil  atomic.Int64 // passive cooldown end in Unix ns; 0 = none
	failures   atomic.Int64 // current run of passive failures

	mu           sync.Mutex // guards the fields below
	firstFailure time.Time  // start of the current run of failures
	lastError    string
	lastCheck    time.Time

	refs int // guarded by the owning Registry's mu
}

// URL is the server's URL, the key it is registered under.
func (s *Server) URL() string { return s.url }

// Available reports whether the server may take requests at now: the last
// probe (if any) passed and no passive cooldown is running.
func (s *Server) Available(now time.Time) bool {
	if s.activeDown.Load() {
		return false
	}
	until := s.downUntil.Load()
	return until == 0 || now.UnixNano() >= until
}

// InFlight is the number of requests the server is handling now.
func (s *Server) InFlight() int64 { return s.inFlight.Load() }

// StartRequest counts a request sent to the server; pair it with EndRequest.
func (s *Server) StartRequest() { s.inFlight.Add(1) }

// EndRequest counts a request as finished.
func (s *Server) EndRequest() { s.inFlight.Add(-1) }

// RecordFailure reports a failed request at now and remembers err as the
// server's last error. With a nil policy (passive health off) that is all
// it does. Otherwise it reports whether this failure took the server out:
// the run of failures reached MaxFailures within Window, so the server is
// unavailable until now+Cooldown.
func (s *Server) RecordFailure(now time.Time, p *Passive, err error) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.lastError = err.Error()
	}
	if p == nil {
		return false
	}
	maxFailures, window, cooldown := p.limits()
	if s.failures.Load() == 0 || now.Sub(s.firstFailure) > window {
		s.failures.Store(0)
		s.firstFailure = now
	}
	if s.failures.Add(1) < int64(maxFailures) {
		return false
	}
	s.failures.Store(0)
	s.downUntil.Store(now.Add(cooldown).UnixNano())
	return true
}

// RecordSuccess reports a successful request; it ends the current run of
// failures. It does not end a cooldown that is already running.
func (s *Server) RecordSuccess() {
	if s.failures.Load() == 0 {
		return
	}
	s.mu.Lock()
	s.failures.Store(0)
	s.mu.Unlock()
}

// SetActive records the result of a probe made at now: up or down, and the
// error that made it fail. A passing probe clears the last error. It
// reports whether the probe changed the server's active state.
func (s *Server) SetActive(up bool, now time.Time, err error) (changed bool) {
	s.mu.Lock()
	s.lastCheck = now
	switch {
	case up:
		s.lastError = ""
	case err != nil:
		s.lastError = err.Error()
	}
	s.mu.Unlock()
	wasDown := s.activeDown.Swap(!up)
	return wasDown == up
}

// Status is a snapshot of a Server for the admin API.
type Status struct {
	// URL of the server.
	URL string
	// Up is Available at the snapshot time.
	Up bool
	// ActiveUp is the verdict of the last probe (true before the first).
	ActiveUp bool
	// DownUntil is the end of a running passive cooldown; zero if none.
	DownUntil time.Time
	// InFlight requests now.
	InFlight int64
	// LastError is the latest probe or request error; a passing probe
	// clears it.
	LastError string
	// LastCheck is the time of the latest probe; zero if none yet.
	LastCheck time.Time
}

// Status returns a snapshot of the server at now.
func (s *Server) Status(now time.Time) Status {
	st := Status{
		URL:      s.url,
		Up:       s.Available(now),
		ActiveUp: !s.activeDown.Load(),
		InFlight: s.inFlight.Load(),
	}
	if until := s.downUntil.Load(); until != 0 && now.UnixNano() < until {
		st.DownUntil = time.Unix(0, until)
	}
	s.mu.Lock()
	st.LastError, st.LastCheck = s.lastError, s.lastCheck
	s.mu.Unlock()
	return st
}
