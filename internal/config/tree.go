package config

import (
	"strings"
)

// The loader turns both formats into the same small tree of maps, lists
// and scalars, each with its line and column, and decodes that tree into
// Config itself (decode.go). One decoder for both formats is what makes a
// YAML file and its TOML twin load into equal structs, lets every error
// (unknown key, bad value, missing ${ENV}, unreadable file:) carry the
// exact position, and keeps library messages, which may quote values,
// out of errors about secrets. yaml.go and toml.go build the tree; both
// run in time linear in the file.

// position is a 1-based line and column in the source file.
type position struct{ line, col int }

type nodeKind uint8

const (
	nullNode nodeKind = iota
	scalarNode
	mapNode
	listNode
)

func (k nodeKind) String() string {
	switch k {
	case scalarNode:
		return "a single value"
	case mapNode:
		return "a table of keys"
	case listNode:
		return "a list"
	}
	return "nothing"
}

// node is one value of the source document. A YAML alias shares the node
// of its anchor, so the tree may be a DAG; nothing changes a node once it
// is built, except get's index.
type node struct {
	kind nodeKind
	// closed is TOML bookkeeping: a table defined by a [header] or inline,
	// which later headers may not reopen.
	closed  bool
	pos     position
	text    string   // scalarNode: the value as text (strings unquoted)
	entries []*entry // mapNode, in document order
	items   []*node  // listNode

	// index maps keys to entries for large maps (a config with thousands
	// of routes); entries are only ever appended, so it catches up
	// incrementally from indexed.
	index   map[string]*entry
	indexed int
}

// entry is one key of a map node; pos is the key's own position.
type entry struct {
	key string
	pos position
	val *node
}

// lookup returns the entry of key, or nil.
func (n *node) lookup(key string) *entry {
	if len(n.entries) < 32 {
		for _, e := range n.entries {
			if e.key == key {
				return e
			}
		}
		return nil
	}
	if n.index == nil {
		n.index = make(map[string]*entry, len(n.entries))
	}
	for ; n.indexed < len(n.entries); n.indexed++ {
		e := n.entries[n.indexed]
		if _, dup := n.index[e.key]; !dup {
			n.index[e.key] = e
		}
	}
	return n.index[key]
}

// get returns the value of key, or nil.
func (n *node) get(key string) *node {
	if e := n.lookup(key); e != nil {
		return e.val
	}
	return nil
}

// arena hands out nodes and entries from slabs: a large file has millions
// of them, and one allocation per slab instead of per node halves the
// time spent building the tree.
type arena struct {
	nodes   []node
	entries []entry
}

const slab = 1024

func (a *arena) node(kind nodeKind, pos position) *node {
	if len(a.nodes) == 0 {
		a.nodes = make([]node, slab)
	}
	n := &a.nodes[0]
	a.nodes = a.nodes[1:]
	n.kind, n.pos = kind, pos
	return n
}

func (a *arena) entry(key string, pos position, val *node) *entry {
	if len(a.entries) == 0 {
		a.entries = make([]entry, slab)
	}
	e := &a.entries[0]
	a.entries = a.entries[1:]
	e.key, e.pos, e.val = key, pos, val
	return e
}

// syntaxError is a parse failure at a position, before any decoding.
type syntaxError struct {
	pos    position
	reason string
}

func (e *syntaxError) Error() string { return e.reason }

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
