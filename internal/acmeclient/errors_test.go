package acmeclient

import (
	"errors"
	"fmt"
	"net"
	"net/http"
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
	refused := func(u string) error {
		return &url.Error{Op: "Get", URL: u, Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}
	}
	const ca = "https://ca.example:14000/dir"
	tests := []struct {
		name   string
		what   string
		err    error
		want   []string
		absent []string
	}{
		{"rate limit", "obtain a.example", rate, []string{"acme: obtain a.example: the CA refused: rateLimited: too many certificates", "retry after 1h30m0s"}, nil},
		{"problem with subproblems", "obtain a.example", &acme.ProblemDetails{
			Type: "urn:ietf:params:acme:error:rejectedIdentifier", Detail: "some names are forbidden",
			SubProblems: []acme.SubProblem{{Detail: "blocked", Identifier: acme.Identifier{Value: "bad.example"}}},
		}, []string{"rejectedIdentifier: some names are forbidden; bad.example: blocked"}, nil},
		// The CA's URL is never cut at its first colon.
		{"CA unreachable", "cannot reach the CA at " + ca, refused(ca), []string{"cannot reach the CA at https://ca.example:14000/dir", "the CA at ca.example:14000 is unreachable", "connection refused", "check --server"}, nil},
		// A DNS provider's API that is down is not the CA.
		{"provider unreachable", "obtain a.example", fmt.Errorf("presenting token: %w", refused("https://dns-api.example/zones")),
			[]string{"dns-api.example is unreachable", "not the CA"}, []string{"the CA at", "check --server"}},
		{"plain", "obtain a.example", errors.New("something else"), []string{"acme: obtain a.example: something else"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ExplainFor(tc.what, ca, tc.err).Error()
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("ExplainFor = %q, want it to contain %q", got, w)
				}
			}
			for _, a := range tc.absent {
				if strings.Contains(got, a) {
					t.Errorf("ExplainFor = %q, want it without %q", got, a)
				}
			}
			if strings.Contains(got, "\n") {
				t.Errorf("ExplainFor gave more than one line: %q", got)
			}
		})
	}
	var p *Problem
	if !errors.As(Explain("obtain", rate), &p) || p.RetryAfter != 90*time.Minute {
		t.Fatalf("rate limit not kept as a *Problem with RetryAfter: %+v", p)
	}
	var rl *acme.RateLimitedError
	if !errors.As(Explain("obtain", rate), &rl) {
		t.Fatal("the lego error is not reachable through Unwrap")
	}
}

// TestRefusedReplaces: which newOrder refusals make a renewal order again
// without the ARI "replaces" field.
func TestRefusedReplaces(t *testing.T) {
	const urn = "urn:ietf:params:acme:error:"
	for _, tc := range []struct {
		status int
		typ    string
		want   bool
	}{
		{http.StatusConflict, urn + "alreadyReplaced", true},
		{http.StatusForbidden, urn + "unauthorized", true},
		{http.StatusBadRequest, urn + "malformed", true},
		{http.StatusNotFound, urn + "malformed", true},
		// Pebble, when its look-up of the replaced certificate misses.
		{http.StatusInternalServerError, urn + "serverInternal", true},
		{http.StatusTooManyRequests, urn + "rateLimited", false},
		{http.StatusForbidden, urn + "rateLimited", false},
		{http.StatusServiceUnavailable, urn + "serverInternal", false},
		{http.StatusInternalServerError, "about:blank", false},
	} {
		if got := refusedReplaces(&Problem{Status: tc.status, Type: tc.typ}); got != tc.want {
			t.Errorf("%d %s: retry without replaces = %v, want %v", tc.status, tc.typ, got, tc.want)
		}
	}
}
