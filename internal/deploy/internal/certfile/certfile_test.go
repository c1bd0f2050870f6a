package certfile_test

import (
	"bytes"
	"math/big"
	"os"
	"path/filepath"
	"testing"

	"github.com/zoku/zoku/internal/deploy/internal/certfile"
	"github.com/zoku/zoku/internal/testkit/deploytest"
)

func TestParseSerial(t *testing.T) {
	cases := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"04D3", 0x4d3, true},
		{"04:d3", 0x4d3, true},
		{" 4d3 ", 0x4d3, true},
		{"", 0, false},
		{"xyz", 0, false},
	}
	for _, tc := range cases {
		got, ok := certfile.ParseSerial(tc.in)
		if ok != tc.ok || (ok && got.Cmp(big.NewInt(tc.want)) != 0) {
			t.Errorf("ParseSerial(%q) = %v, %v; want %x, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	if got := certfile.SerialHex(big.NewInt(0x4d3)); got != "4D3" {
		t.Errorf("SerialHex = %q, want 4D3", got)
	}
}

func TestSplit(t *testing.T) {
	b := deploytest.Bundle(t, "a.example.test", false)
	leafPEM := b.Certificate
	b.Certificate = append(append([]byte(nil), leafPEM...), leafPEM...) // leaf + a stand-in issuer
	p, err := certfile.Split(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p.LeafPEM, leafPEM) || !bytes.Equal(p.ChainPEM, leafPEM) || len(p.Chain) != 1 {
		t.Errorf("split: leaf %d bytes, chain %d bytes (%d certs)", len(p.LeafPEM), len(p.ChainPEM), len(p.Chain))
	}
	b.PrivateKey = nil
	if _, err := certfile.Split(b); err == nil {
		t.Error("a set without a key must be refused")
	}
}

func TestBackupRestore(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name    string
		initial []byte
	}{
		{"existing file", []byte("old")},
		{"no file", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name)
			if tc.initial != nil {
				if err := os.WriteFile(p, tc.initial, 0o640); err != nil {
					t.Fatal(err)
				}
			}
			b, err := certfile.Save(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := certfile.WriteAtomic(p, []byte("new"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := b.Restore(); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(p)
			if tc.initial == nil {
				if !os.IsNotExist(err) {
					t.Errorf("restore of a missing file left %q", got)
				}
				return
			}
			fi, _ := os.Stat(p)
			if !bytes.Equal(got, tc.initial) || fi.Mode().Perm() != 0o640 {
				t.Errorf("restored %q mode %v, want %q mode 0640", got, fi.Mode().Perm(), tc.initial)
			}
		})
	}
}
