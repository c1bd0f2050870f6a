package certmgr

import (
	"crypto/tls"
	"errors"
	"strings"
	"sync"
)

// ErrNoCertificate is returned by Cache.Get when no certificate covers the
// name yet (for example while its first order is running). A TLS server
// that returns it from GetCertificate fails the handshake at once with an
// alert instead of hanging.
var ErrNoCertificate = errors.New("certmgr: no certificate for this name yet")

// Cache is the in-memory set of certificates served by SNI. Lookups take a
// read lock and two map probes (exact name, then the wildcard one label up),
// so their cost does not grow with the number of certificates. Put replaces
// an entry atomically: a handshake sees the old certificate or the new one,
// never neither. Certificates from user files (Pin) win over managed ones
// for their names.
type Cache struct {
	mu      sync.RWMutex
	managed map[string]*tls.Certificate // guarded by mu; name or "*.domain" -> cert
	pinned  map[string]*tls.Certificate // guarded by mu; user-provided files
	def     *tls.Certificate            // guarded by mu; served when nothing matches
}

// NewCache returns an empty cache.
func NewCache() *Cache {
	return &Cache{managed: map[string]*tls.Certificate{}, pinned: map[string]*tls.Certificate{}}
}

// Put serves cert for each of names (as listed in the certificate,
// wildcards included), replacing what was there.
func (c *Cache) Put(names []string, cert *tls.Certificate) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range names {
		c.managed[strings.ToLower(n)] = cert
	}
}

// Pin serves a user-provided certificate for names; pinned entries win over
// managed ones. Pin with a nil cert removes them.
func (c *Cache) Pin(names []string, cert *tls.Certificate) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range names {
		if cert == nil {
			delete(c.pinned, strings.ToLower(n))
			continue
		}
		c.pinned[strings.ToLower(n)] = cert
	}
}

// SetDefault sets the certificate served when no name matches (or the
// client sent no SNI); nil means fail such handshakes.
func (c *Cache) SetDefault(cert *tls.Certificate) {
	c.mu.Lock()
	c.def = cert
	c.mu.Unlock()
}

// Remove stops serving names from the managed set.
func (c *Cache) Remove(names []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range names {
		delete(c.managed, strings.ToLower(n))
	}
}

// Len returns the number of names served (managed and pinned).
func (c *Cache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.managed) + len(c.pinned)
}

// Get returns the certificate for an SNI name: exact match, then the
// wildcard of the parent domain, then the default. Pinned certificates are
// tried before managed ones at each step.
func (c *Cache) Get(name string) (*tls.Certificate, error) {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	c.mu.RLock()
	defer c.mu.RUnlock()
	if name != "" {
		if crt := c.lookup(name); crt != nil {
			return crt, nil
		}
		if i := strings.IndexByte(name, '.'); i > 0 {
			if crt := c.lookup("*" + name[i:]); crt != nil {
				return crt, nil
			}
		}
	}
	if c.def != nil {
		return c.def, nil
	}
	return nil, ErrNoCertificate
}

func (c *Cache) lookup(key string) *tls.Certificate {
	if crt, ok := c.pinned[key]; ok {
		return crt
	}
	return c.managed[key]
}

// GetCertificate adapts Get to tls.Config.GetCertificate.
func (c *Cache) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.Get(hello.ServerName)
}
