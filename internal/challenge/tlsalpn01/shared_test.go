package tlsalpn01

import (
	"context"
	"crypto/tls"
	"testing"

	"github.com/zoku/zoku/internal/challenge/shared"
	"github.com/zoku/zoku/internal/storage"
)

// TestSharedAnswerAnsweredByAnotherNode: a challenge presented by one
// solver is answered by another on the same storage, for a DNS name and an
// IP identifier.
func TestSharedAnswerAnsweredByAnotherNode(t *testing.T) {
	b, err := storage.OpenFiles(t.TempDir(), storage.FilesOptions{})
	if err != nil {
		t.Fatal(err)
	}
	presenter, answerer := NewSolver(), NewSolver()
	presenter.Shared = &shared.Answers{Store: b, Prefix: "challenges/tls-alpn-01"}
	answerer.Shared = &shared.Answers{Store: b, Prefix: "challenges/tls-alpn-01"}
	ctx := context.Background()
	for _, tc := range []struct{ domain, sni string }{{"a.example", "a.example"}, {"192.0.2.7", "7.2.0.192.in-addr.arpa"}} {
		keyAuth := "token." + tc.domain
		if err := presenter.Present(ctx, tc.domain, "token", keyAuth); err != nil {
			t.Fatal(err)
		}
		hello := &tls.ClientHelloInfo{ServerName: tc.sni, SupportedProtos: []string{ALPNProto}}
		crt, err := answerer.GetCertificate(hello)
		if err != nil {
			t.Fatalf("%s: another node's challenge: %v", tc.domain, err)
		}
		if crt.Leaf == nil && len(crt.Certificate) == 0 {
			t.Fatalf("%s: empty certificate", tc.domain)
		}
		if err := presenter.CleanUp(ctx, tc.domain, "token", keyAuth); err != nil {
			t.Fatal(err)
		}
		if _, err := answerer.GetCertificate(hello); err == nil {
			t.Fatalf("%s: answered after CleanUp", tc.domain)
		}
	}
}
