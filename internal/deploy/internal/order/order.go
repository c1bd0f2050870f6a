// Package order carries what a challenge provider may want to know about
// the order it answers for (all its names), through the context that lego
// hands to Present and CleanUp.
package order

import "context"

type key struct{}

// With returns ctx carrying the order's names.
func With(ctx context.Context, domains []string) context.Context {
	return context.WithValue(ctx, key{}, append([]string(nil), domains...))
}

// Domains returns the order's names, or nil when ctx carries none.
func Domains(ctx context.Context) []string {
	d, _ := ctx.Value(key{}).([]string)
	return d
}
