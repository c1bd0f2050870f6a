package storage

// Wrapper is a Backend that adds something to another one (encryption at
// rest, package sealed) and keeps its keys. The store looks through
// wrappers for abilities that concern where values live rather than what
// they hold: the folder of a file backend ([Store.Root]) and its file
// paths ([Pather]).
type Wrapper interface {
	// Unwrap returns the backend underneath.
	Unwrap() Backend
}

// maxUnwrap bounds the walk through wrappers (a wrapper that returns
// itself must not hang the store).
const maxUnwrap = 8

// findBackend returns the first backend of b's wrapper chain (b itself
// first) that is a T.
func findBackend[T any](b Backend) (T, bool) {
	for range maxUnwrap {
		if t, ok := b.(T); ok {
			return t, true
		}
		w, ok := b.(Wrapper)
		if !ok {
			break
		}
		if b = w.Unwrap(); b == nil {
			break
		}
	}
	var zero T
	return zero, false
}

// Underlying returns the backend at the bottom of b's wrapper chain: b
// itself when it wraps nothing.
func Underlying(b Backend) Backend {
	for range maxUnwrap {
		w, ok := b.(Wrapper)
		if !ok {
			return b
		}
		next := w.Unwrap()
		if next == nil {
			return b
		}
		b = next
	}
	return b
}
