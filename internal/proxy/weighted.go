package proxy

import (
	"net/http"
	"sync"

	"github.com/zoku/zoku/internal/config"
)

// Weighted spreads requests over child services by weight, with the
// smooth weighted round robin nginx uses (an even interleaving, not
// bursts), skipping children with no server up. With a sticky cookie, a
// client goes back to the child that answered it first while that child
// is up.
type Weighted struct {
	name     string
	children []weightedChild
	sticky   *sticky
	values   []string // children's sticky cookie values

	mu sync.Mutex // guards children's current
}

type weightedChild struct {
	c       Child
	weight  int
	current int
}

// WeightedChild is one child of a Weighted service.
type WeightedChild struct {
	Name   string
	Child  Child
	Weight int
}

// NewWeighted returns the weighted service name; sticky may be nil.
func NewWeighted(name string, children []WeightedChild, sticky *config.Sticky) *Weighted {
	w := &Weighted{name: name}
	for _, c := range children {
		w.children = append(w.children, weightedChild{c: c.Child, weight: max(c.Weight, 1)})
		w.values = append(w.values, stickyValue(name+"\x00"+c.Name))
	}
	if sticky != nil {
		w.sticky = newSticky(sticky.Cookie)
	}
	return w
}

// pick returns the next child by weight among those available, or -1.
func (w *Weighted) pick() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	best, total := -1, 0
	for i := range w.children {
		c := &w.children[i]
		if !available(c.c) {
			continue
		}
		c.current += c.weight
		total += c.weight
		if best < 0 || c.current > w.children[best].current {
			best = i
		}
	}
	if best >= 0 {
		w.children[best].current -= total
	}
	return best
}

// ServeWithStats sends r to a child; with none up it answers 503.
func (w *Weighted) ServeWithStats(rw http.ResponseWriter, r *http.Request, st *Stats) {
	i, had := -1, ""
	if w.sticky != nil {
		i, had = w.sticky.find(r, w.values, func(i int) bool { return available(w.children[i].c) })
	}
	if i < 0 {
		i = w.pick()
	}
	if i < 0 {
		http.Error(rw, "no healthy service for service "+w.name, http.StatusServiceUnavailable)
		return
	}
	if w.sticky != nil {
		var set string
		w.sticky.mark(rw.Header(), had, w.values[i], &set)
	}
	w.children[i].c.ServeWithStats(rw, r, st)
}

// ServeHTTP is ServeWithStats reporting to a Stats in r's context.
func (w *Weighted) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w.ServeWithStats(rw, r, statsFrom(r.Context()))
}

// Available reports whether some child can take a request.
func (w *Weighted) Available() bool {
	for i := range w.children {
		if available(w.children[i].c) {
			return true
		}
	}
	return false
}

// Close does nothing: the children are closed by their owner.
func (w *Weighted) Close() error { return nil }
