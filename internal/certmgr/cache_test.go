package certmgr

import (
	"crypto/tls"
	"errors"
	"fmt"
	"testing"
)

func TestCacheLookup(t *testing.T) {
	exact, wild, pinned, def := &tls.Certificate{}, &tls.Certificate{}, &tls.Certificate{}, &tls.Certificate{}
	c := NewCache()
	c.Put([]string{"a.example.test", "*.example.test"}, exact)
	c.Put([]string{"*.wild.test"}, wild)
	c.Pin([]string{"pinned.example.test"}, pinned)
	c.Put([]string{"pinned.example.test"}, exact) // a managed one must not win over the user's file
	tests := []struct {
		name string
		want *tls.Certificate
		err  error
	}{
		{"a.example.test", exact, nil},
		{"A.Example.Test.", exact, nil},
		{"b.wild.test", wild, nil},
		{"x.y.wild.test", nil, ErrNoCertificate}, // a wildcard covers one label only
		{"wild.test", nil, ErrNoCertificate},
		{"pinned.example.test", pinned, nil},
		{"", nil, ErrNoCertificate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.Get(tc.name)
			if got != tc.want || !errors.Is(err, tc.err) {
				t.Fatalf("Get(%q) = %p, %v; want %p, %v", tc.name, got, err, tc.want, tc.err)
			}
		})
	}
	c.SetDefault(def)
	if got, _ := c.Get("unknown.test"); got != def {
		t.Fatal("default certificate not served")
	}
	c.Remove([]string{"a.example.test"})
	if got, _ := c.Get("a.example.test"); got != exact { // still covered by *.example.test
		t.Fatal("wildcard fallback lost after removing the exact name")
	}
}

// BenchmarkCacheGet shows SNI lookup cost at 10, 10k and 100k names: it
// must stay flat.
func BenchmarkCacheGet(b *testing.B) {
	for _, n := range []int{10, 10_000, 100_000} {
		c := NewCache()
		crt := &tls.Certificate{}
		for i := 0; i < n; i++ {
			c.Put([]string{fmt.Sprintf("host%d.example.test", i)}, crt)
		}
		c.Put([]string{"*.wild.example.test"}, crt)
		b.Run(fmt.Sprintf("certs=%d/exact", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := c.Get("host7.example.test"); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("certs=%d/wildcard", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := c.Get("x.wild.example.test"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
