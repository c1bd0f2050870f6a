package acmeclient

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/go-acme/lego/v5/acme"
)

// Problem is a CA problem document (RFC 8555 §6.7) in a form fit for one
// line of output. It wraps the original error.
type Problem struct {
	// Type is the problem type, e.g. "urn:ietf:params:acme:error:rateLimited".
	Type string
	// Detail is the CA's human-readable explanation.
	Detail string
	// Status is the HTTP status of the reply.
	Status int
	// RetryAfter is when the CA allows another try (rate limits), if given.
	RetryAfter time.Duration
	// Context says what zoku was doing.
	Context string
	err     error
}

func (p *Problem) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "acme: %s: the CA refused: %s", p.Context, strings.TrimPrefix(p.Type, "urn:ietf:params:acme:error:"))
	if p.Detail != "" {
		fmt.Fprintf(&b, ": %s", p.Detail)
	}
	if p.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s, at %s)", p.RetryAfter.Round(time.Second), time.Now().Add(p.RetryAfter).UTC().Format(time.RFC3339))
	}
	return b.String()
}

// Unwrap returns the underlying lego error.
func (p *Problem) Unwrap() error { return p.err }

// Explain turns an error from lego into zoku's one-line form, as
// ExplainFor does, for a CA it does not know.
func Explain(what string, err error) error { return ExplainFor(what, "", err) }

// ExplainFor turns an error from lego, met while doing what (e.g.
// "obtain a.example") against the CA at server, into zoku's one-line form:
// a CA problem document becomes a *Problem (type, detail, Retry-After); a
// network failure towards the CA names the CA and suggests checking
// --server; a network failure towards anything else (a DNS provider's
// API, a webhook) names that host instead; anything else is prefixed with
// "acme: <what>: ". The original error stays reachable with errors.As.
func ExplainFor(what, server string, err error) error {
	if err == nil {
		return nil
	}
	var pd *acme.ProblemDetails
	if errors.As(err, &pd) {
		p := &Problem{Type: pd.Type, Detail: pd.Detail, Status: pd.HTTPStatus, Context: what, err: err}
		for _, sp := range pd.SubProblems {
			p.Detail += fmt.Sprintf("; %s: %s", sp.Identifier.Value, sp.Detail)
		}
		var rl *acme.RateLimitedError
		if errors.As(err, &rl) {
			p.RetryAfter = rl.RetryAfter
		}
		return p
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		host := hostOf(ue.URL)
		if server == "" || host == hostOf(server) {
			return fmt.Errorf("acme: %s: the CA at %s is unreachable (%w); check --server and the network", what, host, rootCause(err))
		}
		return fmt.Errorf("acme: %s: %s is unreachable (%w); this is not the CA: check the challenge provider's settings and the network", what, host, rootCause(err))
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return fmt.Errorf("acme: %s: network error (%w)", what, rootCause(err))
	}
	return fmt.Errorf("acme: %s: %w", what, err)
}

// explain is ExplainFor with this client's CA.
func (c *Client) explain(what string, err error) error { return ExplainFor(what, c.cfg.Server, err) }

// hostOf returns the host (with port) of a URL, or the string itself.
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return raw
	}
	return u.Host
}

// rootCause returns the innermost error, which names the network problem
// (connection refused, no such host) without repeating every wrap.
func rootCause(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}
