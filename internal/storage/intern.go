package storage

import "sync"

// maxShared bounds how many distinct issuer certificates are shared; past
// it, new ones are simply not shared (a storage with that many CAs is
// not the case this is for).
const maxShared = 1024

// issuers shares the bytes of identical issuer certificates (PEM from the
// .issuer.crt files, DER of parsed chains): 100,000 certificates from one
// CA then hold one copy of its intermediate instead of 100,000, about
// 2.5 KB less each.
var issuers = &sharedBytes{m: map[string][]byte{}}

// sharedBytes hands out one copy of each distinct byte string.
type sharedBytes struct {
	mu sync.Mutex
	m  map[string][]byte
}

// share returns the copy of b already handed out, or b itself (made the
// copy for later calls). The result has no spare capacity, so an append
// to it copies instead of writing into bytes that others hold; nobody
// writes into loaded certificates in place.
func (p *sharedBytes) share(b []byte) []byte {
	if len(b) == 0 {
		return b
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if v, ok := p.m[string(b)]; ok {
		return v
	}
	b = b[:len(b):len(b)]
	if len(p.m) < maxShared {
		p.m[string(b)] = b
	}
	return b
}
