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

// Explain turns an error from lego into zoku's one-line form: a CA problem
// document becomes a *Problem (type, detail, Retry-After); a network failure
// names the CA and suggests checking --server; anything else is prefixed
// with "acme: ". The original error stays reachable with errors.As.
func Explain(err error) error {
	if err == nil {
		return nil
	}
	ctxMsg, _, _ := strings.Cut(err.Error(), ":")
	var pd *acme.ProblemDetails
	if errors.As(err, &pd) {
		p := &Problem{Type: pd.Type, Detail: pd.Detail, Status: pd.HTTPStatus, Context: ctxMsg, err: err}
		for _, sp := range pd.SubProblems {
			p.Detail += fmt.Sprintf("; %s: %s", sp.Identifier.Value, sp.Detail)
		}
		var rl *acme.RateLimitedError
		if errors.As(err, &rl) {
			p.RetryAfter = rl.RetryAfter
		}
		return p
	}
	var (
		ue *url.Error
		ne net.Error
	)
	if errors.As(err, &ue) || errors.As(err, &ne) {
		return fmt.Errorf("acme: %s: the CA is unreachable (%w); check --server and the network", ctxMsg, rootCause(err))
	}
	if strings.HasPrefix(err.Error(), "acme: ") {
		return err
	}
	return fmt.Errorf("acme: %w", err)
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
