package health

import "sync"

// Registry hands out one *Server per URL and keeps it while anyone holds a
// reference. The zero value is ready to use; it is safe for concurrent use.
//
// To keep state across a config reload, acquire the servers of the new
// config before releasing those of the old one.
type Registry struct {
	mu      sync.Mutex // guards servers and every Server's refs
	servers map[string]*Server
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry { return &Registry{} }

// Acquire returns the Server for url, creating it (up, idle) if no one holds
// it, and takes a reference; give it back with Release.
func (r *Registry) Acquire(url string) *Server {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.servers == nil {
		r.servers = make(map[string]*Server)
	}
	s, ok := r.servers[url]
	if !ok {
		s = &Server{url: url}
		r.servers[url] = s
	}
	s.refs++
	return s
}

// Release gives back a reference taken by Acquire. When the last one goes,
// the server's state is forgotten and a later Acquire starts afresh.
// Releasing more often than acquiring is a no-op.
func (r *Registry) Release(s *Server) {
	if s == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.refs <= 0 || r.servers[s.url] != s {
		return
	}
	s.refs--
	if s.refs == 0 {
		delete(r.servers, s.url)
	}
}

// Len is the number of servers held.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.servers)
}
