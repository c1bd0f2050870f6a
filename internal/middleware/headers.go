package middleware

import (
	"net/http"
	"slices"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/proxy"
)

// headerOps is a compiled config.HeaderOps: canonical names, and values
// as shared slices with no spare capacity (an append by anyone copies).
type headerOps struct {
	remove []string
	set    []headerKV
	add    []headerKV
}

type headerKV struct {
	key  string
	vals []string
}

func compileOps(o *config.HeaderOps) *headerOps {
	if o == nil || len(o.Remove)+len(o.Set)+len(o.Add) == 0 {
		return nil
	}
	ops := &headerOps{}
	for _, k := range o.Remove {
		ops.remove = append(ops.remove, http.CanonicalHeaderKey(k))
	}
	for _, k := range sortedKeys(o.Set) {
		ops.set = append(ops.set, headerKV{http.CanonicalHeaderKey(k), []string{o.Set[k]}})
	}
	for _, k := range sortedKeys(o.Add) {
		ops.add = append(ops.add, headerKV{http.CanonicalHeaderKey(k), []string{o.Add[k]}})
	}
	return ops
}

// apply changes h: remove, then set, then add.
func (o *headerOps) apply(h http.Header) {
	for _, k := range o.remove {
		delete(h, k)
	}
	for _, kv := range o.set {
		h[kv.key] = kv.vals
	}
	for _, kv := range o.add {
		if old := h[kv.key]; len(old) > 0 {
			h[kv.key] = append(slices.Clip(old), kv.vals...)
		} else {
			h[kv.key] = kv.vals
		}
	}
}

// headers is the headers middleware (and, with a preset, securityHeaders).
type headers struct {
	req, resp *headerOps
	before    func(http.Header, int)
}

func newHeaders(c *config.HeadersMiddleware) (*headers, error) {
	h := &headers{req: compileOps(c.Request), resp: compileOps(c.Response)}
	if h.resp != nil {
		h.before = func(hd http.Header, _ int) { h.resp.apply(hd) }
	}
	return h, nil
}

func (h *headers) Wrap(next Next) Next {
	return func(w http.ResponseWriter, r *http.Request, st *proxy.Stats) {
		if h.req != nil {
			h.req.apply(r.Header)
		}
		if h.resp == nil {
			next(w, r, st)
			return
		}
		sw := getStatusWriter(w, h.before)
		next(sw, r, st)
		putStatusWriter(sw)
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
