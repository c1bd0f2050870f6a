package storage

import (
	"bytes"
	"fmt"
	"testing"
)

// TestSharedBytes: equal contents share one copy, which an append cannot
// write into; the pool stops growing at its bound.
func TestSharedBytes(t *testing.T) {
	p := &sharedBytes{m: map[string][]byte{}}
	a := p.share(append(make([]byte, 0, 64), "issuer"...))
	b := p.share([]byte("issuer"))
	if &a[0] != &b[0] {
		t.Fatal("equal contents were not shared")
	}
	c := append(a, '!')
	if &c[0] == &a[0] || !bytes.Equal(b, []byte("issuer")) {
		t.Fatal("an append wrote into the shared bytes")
	}
	if got := p.share(nil); got != nil {
		t.Errorf("share(nil) = %q", got)
	}
	for i := range 2 * maxShared {
		p.share([]byte(fmt.Sprint("ca-", i)))
	}
	if len(p.m) != maxShared {
		t.Errorf("%d shared, want the bound %d", len(p.m), maxShared)
	}
}
