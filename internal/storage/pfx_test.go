package storage

import (
	"context"
	"crypto/x509"
	"os"
	"strings"
	"testing"

	"github.com/go-acme/lego/v5/certcrypto"
	"software.sslmate.com/src/go-pkcs12"
)

// readPFX opens the .pfx of id with password and returns its leaf serial
// and the number of issuers in it.
func readPFX(t *testing.T, s *Store, id, password string) (*x509.Certificate, int) {
	t.Helper()
	raw, err := os.ReadFile(s.CertPaths(id).PFX)
	if err != nil {
		t.Fatalf("read .pfx: %v", err)
	}
	_, leaf, cas, err := pkcs12.DecodeChain(raw, password)
	if err != nil {
		t.Fatalf("open .pfx: %v", err)
	}
	return leaf, len(cas)
}

// A .pfx, once there, follows every renewal: same password, same format;
// the caller need not ask for it again (a lego --pfx folder renewed by
// `zoku renew`).
func TestSaveCertificateKeepsPFXInStep(t *testing.T) {
	ctx := context.Background()
	ca := newTestCA(t, "Test Issuer")
	for _, format := range certcrypto.AllPKCS12Formats() {
		t.Run(format, func(t *testing.T) {
			s := openTestStore(t)
			b := ca.bundle(t, "pfx.example.com")
			b.PFX = &PFXOptions{Format: format}
			if err := s.SaveCertificate(ctx, b); err != nil {
				t.Fatalf("SaveCertificate: %v", err)
			}
			first, _ := os.ReadFile(s.CertPaths("pfx.example.com").PFX)
			if got := pfxFormatOf(first); got != format {
				t.Fatalf("written format %s detected as %s", format, got)
			}

			renewed := ca.bundle(t, "pfx.example.com")
			if err := s.SaveCertificate(ctx, renewed); err != nil {
				t.Fatalf("SaveCertificate (renewal): %v", err)
			}
			leaf, issuers := readPFX(t, s, "pfx.example.com", DefaultPFXPassword)
			want, _ := renewed.Leaf()
			if leaf.SerialNumber.Cmp(want.SerialNumber) != 0 {
				t.Errorf(".pfx holds serial %x, want the renewed %x", leaf.SerialNumber, want.SerialNumber)
			}
			if issuers != 1 {
				t.Errorf(".pfx has %d issuers, want 1", issuers)
			}
			again, _ := os.ReadFile(s.CertPaths("pfx.example.com").PFX)
			if got := pfxFormatOf(again); got != format {
				t.Errorf("renewal changed the format from %s to %s", format, got)
			}
		})
	}
}

// A .pfx whose password the store was not given fails the save with a
// line that names the fix and no secret; nothing is written.
func TestSaveCertificatePFXWrongPassword(t *testing.T) {
	ctx := context.Background()
	ca := newTestCA(t, "Test Issuer")
	s := openTestStore(t)
	b := ca.bundle(t, "p.example.com")
	b.PFX = &PFXOptions{Password: "s3cret-pass"}
	if err := s.SaveCertificate(ctx, b); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, s.Root())

	err := s.SaveCertificate(ctx, ca.bundle(t, "p.example.com"))
	if err == nil || !strings.Contains(err.Error(), "LEGO_PFX_PASSWORD") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("err = %v, want the fix named and no password", err)
	}
	if after := snapshot(t, s.Root()); len(after) != len(before) {
		t.Fatalf("files changed after a refused save")
	} else {
		for k, v := range before {
			if after[k] != v {
				t.Fatalf("%s changed after a refused save", k)
			}
		}
	}

	// With its password, the renewal goes through and the .pfx follows.
	s.SetPFX(PFXOptions{Password: "s3cret-pass"}, false)
	renewed := ca.bundle(t, "p.example.com")
	if err := s.SaveCertificate(ctx, renewed); err != nil {
		t.Fatal(err)
	}
	leaf, _ := readPFX(t, s, "p.example.com", "s3cret-pass")
	want, _ := renewed.Leaf()
	if leaf.SerialNumber.Cmp(want.SerialNumber) != 0 {
		t.Errorf(".pfx not renewed")
	}
}

func TestSaveCertificatePFXRefusals(t *testing.T) {
	ctx := context.Background()
	ca := newTestCA(t, "Test Issuer")
	s := openTestStore(t)
	b := ca.bundle(t, "r.example.com")
	b.PFX = &PFXOptions{Format: "ROT13"}
	if err := s.SaveCertificate(ctx, b); err == nil || !strings.Contains(err.Error(), "unknown PFX format") {
		t.Fatalf("err = %v", err)
	}
	b = ca.bundle(t, "r.example.com")
	b.PrivateKey = nil
	b.PFX = &PFXOptions{}
	if err := s.SaveCertificate(ctx, b); err == nil || !strings.Contains(err.Error(), "private key") {
		t.Fatalf("err = %v", err)
	}
	if ok, _ := fileExists(s.CertPaths("r.example.com").JSON); ok {
		t.Fatal("a refused save wrote files")
	}
}
