package router

import (
	"fmt"
	"sort"

	"github.com/zoku/zoku/internal/middleware"
)

// compileMiddlewares builds each middleware that some route of t lists
// (chains expanded) once, and puts each route's list in front of its
// service in rt.serve: the first listed sees the request first. Routes
// without middlewares keep their service's request path as it is.
func (r *Router) compileMiddlewares(t *table, serves map[string]serveFunc) error {
	env := middleware.Env{
		Logger: r.deps.Logger,
		State:  &r.mwState,
		Service: func(name string) middleware.Next {
			if s := serves[name]; s != nil {
				return middleware.Next(s)
			}
			return nil
		},
	}
	for _, rt := range t.routes {
		if len(rt.middlewares) == 0 {
			continue
		}
		names, err := t.cfg.ExpandMiddlewares(rt.middlewares)
		if err != nil {
			return fmt.Errorf("router: route %q: %w", rt.name, err)
		}
		next := middleware.Next(rt.serve)
		for i := len(names) - 1; i >= 0; i-- {
			m, err := t.middleware(names[i], env)
			if err != nil {
				return fmt.Errorf("router: route %q: %w", rt.name, err)
			}
			next = m.Wrap(next)
		}
		rt.serve = serveFunc(next)
	}
	return nil
}

// middleware returns the built middleware name of t, building it on first
// use.
func (t *table) middleware(name string, env middleware.Env) (middleware.Middleware, error) {
	if m, ok := t.mws[name]; ok {
		return m, nil
	}
	m, err := middleware.Build(name, t.cfg.Middlewares[name], env)
	if err != nil {
		return nil, err
	}
	if t.mws == nil {
		t.mws = map[string]middleware.Middleware{}
	}
	t.mws[name] = m
	return m, nil
}

// closeMiddlewares closes the middlewares that hold resources.
func closeMiddlewares(mws map[string]middleware.Middleware) {
	names := make([]string, 0, len(mws))
	for n := range mws {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		middleware.Close(mws[n])
	}
}
