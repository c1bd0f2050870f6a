package proxy

import (
	"net/http"
)

// Child is a service that a failover, mirroring or weighted service sends
// requests to; *Service, *Failover, *Mirroring and *Weighted are Children.
// A Child may also report whether it can take a request now (Available);
// one that does not always can.
type Child interface {
	ServeWithStats(w http.ResponseWriter, r *http.Request, st *Stats)
}

// availability is a Child that knows whether it can take a request now.
type availability interface {
	Available() bool
}

var (
	_ Child        = (*Service)(nil)
	_ availability = (*Service)(nil)
	_ availability = (*Failover)(nil)
	_ availability = (*Weighted)(nil)
	_ availability = (*Mirroring)(nil)
)

// available reports whether c can take a request now.
func available(c Child) bool {
	if a, ok := c.(availability); ok {
		return a.Available()
	}
	return true
}

// Failover sends requests to its primary service while that has a server
// up (active and passive health both count), and to its fallback
// otherwise. It owns neither: the router builds and closes every service.
type Failover struct {
	name              string
	primary, fallback Child
}

// NewFailover returns the failover service name over primary and
// fallback.
func NewFailover(name string, primary, fallback Child) *Failover {
	return &Failover{name: name, primary: primary, fallback: fallback}
}

// ServeWithStats sends r to the primary, or to the fallback when the
// primary has no server up.
func (f *Failover) ServeWithStats(w http.ResponseWriter, r *http.Request, st *Stats) {
	if available(f.primary) {
		f.primary.ServeWithStats(w, r, st)
		return
	}
	f.fallback.ServeWithStats(w, r, st)
}

// ServeHTTP is ServeWithStats reporting to a Stats in r's context.
func (f *Failover) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.ServeWithStats(w, r, statsFrom(r.Context()))
}

// Available reports whether the primary or the fallback can take a
// request.
func (f *Failover) Available() bool { return available(f.primary) || available(f.fallback) }

// Close does nothing: the children are closed by their owner.
func (f *Failover) Close() error { return nil }

// Name is the service's name.
func (f *Failover) Name() string { return f.name }
