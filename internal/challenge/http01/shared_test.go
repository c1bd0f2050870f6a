package http01

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/zoku/zoku/internal/challenge/shared"
	"github.com/zoku/zoku/internal/storage"
)

// TestSharedTokenAnsweredByAnotherNode: a token presented by one solver is
// served by another on the same storage (the node the CA reaches), and is
// gone for both after CleanUp.
func TestSharedTokenAnsweredByAnotherNode(t *testing.T) {
	b, err := storage.OpenFiles(t.TempDir(), storage.FilesOptions{})
	if err != nil {
		t.Fatal(err)
	}
	presenter, answerer := NewSolver(), NewSolver()
	presenter.Shared = &shared.Answers{Store: b, Prefix: "challenges/http-01"}
	answerer.Shared = &shared.Answers{Store: b, Prefix: "challenges/http-01"}
	const token, keyAuth = "tok_en-1", "tok_en-1.thumb"
	ctx := context.Background()
	if err := presenter.Present(ctx, "a.example", token, keyAuth); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(answerer.Handler(nil))
	defer srv.Close()
	get := func() (int, string) {
		resp, err := http.Get(srv.URL + PathPrefix + token)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get(); code != 200 || body != keyAuth {
		t.Fatalf("another node's token: %d %q, want 200 %q", code, body, keyAuth)
	}
	if err := presenter.CleanUp(ctx, "a.example", token, keyAuth); err != nil {
		t.Fatal(err)
	}
	if code, _ := get(); code != 404 {
		t.Fatalf("after CleanUp: %d, want 404", code)
	}
}
