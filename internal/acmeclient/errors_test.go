package acmeclient

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-acme/lego/v5/acme"
)

func TestExplain(t *testing.T) {
	rate := &acme.RateLimitedError{
		ProblemDetails: &acme.ProblemDetails{Type: "urn:ietf:params:acme:error:rateLimited", Detail: "too many certificates already issued", HTTPStatus: 429},
		RetryAfter:     90 * time.Minute,
	}
	refused := &url.Error{Op: "Get", URL: "https://ca.example/dir", Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}
	tests := []struct {
		name string
		err  error
		want []string
	}{
		{"rate limit", fmt.Errorf("obtain: %w", rate), []string{"acme: obtain: the CA refused: rateLimited: too many certificates", "retry after 1h30m0s"}},
		{"problem with subproblems", fmt.Errorf("obtain: %w", &acme.ProblemDetails{
			Type: "urn:ietf:params:acme:error:rejectedIdentifier", Detail: "some names are forbidden",
			SubProblems: []acme.SubProblem{{Detail: "blocked", Identifier: acme.Identifier{Value: "bad.example"}}},
		}), []string{"rejectedIdentifier: some names are forbidden; bad.example: blocked"}},
		{"unreachable", fmt.Errorf("cannot reach the CA at https://ca.example/dir: %w", refused), []string{"unreachable", "connection refused", "check --server"}},
		{"plain", errors.New("something else"), []string{"acme: something else"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Explain(tc.err)
			for _, w := range tc.want {
				if !strings.Contains(got.Error(), w) {
					t.Errorf("Explain = %q, want it to contain %q", got, w)
				}
			}
			if strings.Contains(got.Error(), "\n") {
				t.Errorf("Explain gave more than one line: %q", got)
			}
		})
	}
	var p *Problem
	if !errors.As(Explain(fmt.Errorf("obtain: %w", rate)), &p) || p.RetryAfter != 90*time.Minute {
		t.Fatalf("rate limit not kept as a *Problem with RetryAfter: %+v", p)
	}
	var rl *acme.RateLimitedError
	if !errors.As(Explain(fmt.Errorf("obtain: %w", rate)), &rl) {
		t.Fatal("the lego error is not reachable through Unwrap")
	}
}
