package config

import (
	"errors"
	"fmt"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/pelletier/go-toml/v2/unstable"
)

// The loader turns both formats into the same small tree of maps, lists
// and scalars, each with its line and column, and decodes that tree into
// Config itself (decode.go). One decoder for both formats is what makes a
// YAML file and its TOML twin load into equal structs, lets every error
// (unknown key, bad value, missing ${ENV}, unreadable file:) carry the
// exact position, and keeps library messages, which may quote values,
// out of errors about secrets.

// position is a 1-based line and column in the source file.
type position struct{ line, col int }

type nodeKind int

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

// node is one value of the source document.
type node struct {
	kind    nodeKind
	pos     position
	text    string   // scalarNode: the value as text (strings unquoted)
	entries []*entry // mapNode, in document order
	items   []*node  // listNode

	// TOML bookkeeping: a table defined by a [header] or inline, which
	// later headers may not reopen.
	closed bool

	// index maps keys to entries for large maps (a config with thousands
	// of routes); entries are only ever appended, so it catches up
	// incrementally from indexed.
	index   map[string]*node
	indexed int
}

// entry is one key of a map node; pos is the key's own position.
type entry struct {
	key string
	pos position
	val *node
}

func (n *node) get(key string) *node {
	if len(n.entries) < 32 {
		for _, e := range n.entries {
			if e.key == key {
				return e.val
			}
		}
		return nil
	}
	if n.index == nil {
		n.index = make(map[string]*node, len(n.entries))
	}
	for ; n.indexed < len(n.entries); n.indexed++ {
		e := n.entries[n.indexed]
		if _, dup := n.index[e.key]; !dup {
			n.index[e.key] = e.val
		}
	}
	return n.index[key]
}

// syntaxError is a parse failure at a position, before any decoding.
type syntaxError struct {
	pos    position
	reason string
}

func (e *syntaxError) Error() string { return e.reason }

// parseYAML builds the tree of a YAML document.
func parseYAML(data []byte) (*node, error) {
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		var ye yaml.Error
		if errors.As(err, &ye) && ye.GetToken() != nil {
			p := ye.GetToken().Position
			return nil, &syntaxError{pos: position{p.Line, p.Column}, reason: "invalid YAML: " + ye.GetMessage()}
		}
		return nil, &syntaxError{pos: position{1, 1}, reason: "invalid YAML: " + firstLine(err.Error())}
	}
	var body ast.Node
	for _, d := range f.Docs {
		if d == nil || d.Body == nil {
			continue
		}
		if body != nil {
			pos := tokenPos(d.Body)
			if d.Start != nil {
				pos = position{d.Start.Position.Line, d.Start.Position.Column}
			}
			return nil, &syntaxError{pos: pos, reason: "more than one YAML document; keep the whole configuration in one document"}
		}
		body = d.Body
	}
	if body == nil {
		return &node{kind: mapNode, pos: position{1, 1}}, nil
	}
	b := yamlBuilder{anchors: map[string]ast.Node{}}
	return b.build(body, 0)
}

type yamlBuilder struct {
	anchors map[string]ast.Node
}

func tokenPos(n ast.Node) position {
	if n == nil || n.GetToken() == nil {
		return position{1, 1}
	}
	p := n.GetToken().Position
	return position{p.Line, p.Column}
}

func (b *yamlBuilder) build(n ast.Node, depth int) (*node, error) {
	if depth > 64 {
		return nil, &syntaxError{pos: tokenPos(n), reason: "the document is nested too deeply (or an alias refers to itself)"}
	}
	switch x := n.(type) {
	case nil:
		return &node{kind: nullNode, pos: position{1, 1}}, nil
	case *ast.NullNode:
		return &node{kind: nullNode, pos: tokenPos(x)}, nil
	case *ast.StringNode:
		return &node{kind: scalarNode, pos: tokenPos(x), text: x.Value}, nil
	case *ast.LiteralNode:
		return &node{kind: scalarNode, pos: tokenPos(x), text: x.Value.Value}, nil
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		return &node{kind: scalarNode, pos: tokenPos(x), text: x.GetToken().Value}, nil
	case *ast.TagNode:
		return b.build(x.Value, depth+1)
	case *ast.AnchorNode:
		b.anchors[x.Name.GetToken().Value] = x.Value
		return b.build(x.Value, depth+1)
	case *ast.AliasNode:
		name := x.Value.GetToken().Value
		target, ok := b.anchors[name]
		if !ok {
			return nil, &syntaxError{pos: tokenPos(x), reason: fmt.Sprintf("alias *%s refers to no anchor; define &%s before it", name, name)}
		}
		return b.build(target, depth+1)
	case *ast.MappingValueNode:
		m := &node{kind: mapNode, pos: tokenPos(x.Key)}
		return m, b.addEntry(m, x, depth)
	case *ast.MappingNode:
		m := &node{kind: mapNode, pos: tokenPos(x)}
		if len(x.Values) > 0 {
			m.pos = tokenPos(x.Values[0].Key)
		}
		for _, mv := range x.Values {
			if err := b.addEntry(m, mv, depth); err != nil {
				return nil, err
			}
		}
		return m, nil
	case *ast.SequenceNode:
		l := &node{kind: listNode, pos: tokenPos(x)}
		for _, v := range x.Values {
			item, err := b.build(v, depth+1)
			if err != nil {
				return nil, err
			}
			l.items = append(l.items, item)
		}
		return l, nil
	}
	return nil, &syntaxError{pos: tokenPos(n), reason: fmt.Sprintf("unsupported YAML construct (%s)", n.Type())}
}

func (b *yamlBuilder) addEntry(m *node, mv *ast.MappingValueNode, depth int) error {
	if _, ok := mv.Key.(*ast.MergeKeyNode); ok {
		return &syntaxError{pos: tokenPos(mv.Key), reason: "merge keys (<<) are not supported; write the keys out"}
	}
	var key string
	switch k := mv.Key.(type) {
	case *ast.StringNode:
		key = k.Value
	default:
		if mv.Key == nil || mv.Key.GetToken() == nil {
			return &syntaxError{pos: tokenPos(mv), reason: "a key must be a plain name"}
		}
		key = mv.Key.GetToken().Value
	}
	val, err := b.build(mv.Value, depth+1)
	if err != nil {
		return err
	}
	if m.get(key) != nil {
		return &syntaxError{pos: tokenPos(mv.Key), reason: fmt.Sprintf("key %q is given twice; keep one", key)}
	}
	m.entries = append(m.entries, &entry{key: key, pos: tokenPos(mv.Key), val: val})
	return nil
}

// parseTOML builds the tree of a TOML document.
func parseTOML(data []byte) (*node, error) {
	t := tomlBuilder{root: &node{kind: mapNode, pos: position{1, 1}}}
	t.cur = t.root
	t.p.Reset(data)
	for t.p.NextExpression() {
		if err := t.expr(t.p.Expression()); err != nil {
			return nil, err
		}
	}
	if err := t.p.Error(); err != nil {
		var pe *unstable.ParserError
		pos := position{1, 1}
		msg := err.Error()
		if errors.As(err, &pe) {
			msg = pe.Message
			if len(pe.Highlight) > 0 {
				pos = t.shape(t.p.Range(pe.Highlight))
			}
		}
		return nil, &syntaxError{pos: pos, reason: "invalid TOML: " + msg}
	}
	return t.root, nil
}

type tomlBuilder struct {
	p    unstable.Parser
	root *node
	cur  *node
}

func (t *tomlBuilder) shape(r unstable.Range) position {
	s := t.p.Shape(r).Start
	return position{s.Line, s.Column}
}

func (t *tomlBuilder) expr(e *unstable.Node) error {
	switch e.Kind {
	case unstable.KeyValue:
		return t.keyValue(t.cur, e)
	case unstable.Table, unstable.ArrayTable:
		keys, poss := t.keyParts(e.Key())
		parent := t.root
		for i, k := range keys[:len(keys)-1] {
			next, err := t.descend(parent, k, poss[i], true)
			if err != nil {
				return err
			}
			parent = next
		}
		last, lastPos := keys[len(keys)-1], poss[len(poss)-1]
		existing := parent.get(last)
		if e.Kind == unstable.ArrayTable {
			tbl := &node{kind: mapNode, pos: lastPos, closed: true}
			switch {
			case existing == nil:
				parent.entries = append(parent.entries, &entry{key: last, pos: lastPos, val: &node{kind: listNode, pos: lastPos, items: []*node{tbl}}})
			case existing.kind == listNode && !existing.closed:
				existing.items = append(existing.items, tbl)
			default:
				return &syntaxError{pos: lastPos, reason: fmt.Sprintf("[[%s]] conflicts with an earlier definition of %q", strings.Join(keys, "."), last)}
			}
			t.cur = tbl
			return nil
		}
		switch {
		case existing == nil:
			tbl := &node{kind: mapNode, pos: lastPos, closed: true}
			parent.entries = append(parent.entries, &entry{key: last, pos: lastPos, val: tbl})
			t.cur = tbl
		case existing.kind == mapNode && !existing.closed:
			existing.closed = true
			t.cur = existing
		default:
			return &syntaxError{pos: lastPos, reason: fmt.Sprintf("table [%s] is defined twice; merge the two", strings.Join(keys, "."))}
		}
	}
	return nil
}

func (t *tomlBuilder) keyParts(it unstable.Iterator) ([]string, []position) {
	var keys []string
	var poss []position
	for it.Next() {
		k := it.Node()
		keys = append(keys, string(k.Data))
		poss = append(poss, t.shape(k.Raw))
	}
	return keys, poss
}

// descend finds or makes the table key under m for a dotted key or a
// table header; headers step into the last element of an array of tables.
func (t *tomlBuilder) descend(m *node, key string, pos position, header bool) (*node, error) {
	ex := m.get(key)
	switch {
	case ex == nil:
		n := &node{kind: mapNode, pos: pos}
		m.entries = append(m.entries, &entry{key: key, pos: pos, val: n})
		return n, nil
	case ex.kind == mapNode && (header || !ex.closed):
		return ex, nil
	case ex.kind == listNode && header && !ex.closed && len(ex.items) > 0:
		return ex.items[len(ex.items)-1], nil
	}
	return nil, &syntaxError{pos: pos, reason: fmt.Sprintf("key %q is already defined as %s", key, ex.kind)}
}

func (t *tomlBuilder) keyValue(m *node, e *unstable.Node) error {
	keys, poss := t.keyParts(e.Key())
	for i, k := range keys[:len(keys)-1] {
		next, err := t.descend(m, k, poss[i], false)
		if err != nil {
			return err
		}
		m = next
	}
	last, lastPos := keys[len(keys)-1], poss[len(poss)-1]
	if m.get(last) != nil {
		return &syntaxError{pos: lastPos, reason: fmt.Sprintf("key %q is given twice; keep one", last)}
	}
	val, err := t.value(e.Value(), lastPos)
	if err != nil {
		return err
	}
	m.entries = append(m.entries, &entry{key: last, pos: lastPos, val: val})
	return nil
}

// value converts a value node; keyPos stands in for arrays, which the
// parser gives no position.
func (t *tomlBuilder) value(v *unstable.Node, keyPos position) (*node, error) {
	switch v.Kind {
	case unstable.Array:
		l := &node{kind: listNode, pos: keyPos, closed: true}
		it := v.Children()
		for it.Next() {
			item, err := t.value(it.Node(), keyPos)
			if err != nil {
				return nil, err
			}
			l.items = append(l.items, item)
		}
		return l, nil
	case unstable.InlineTable:
		m := &node{kind: mapNode, pos: t.shape(v.Raw)}
		it := v.Children()
		for it.Next() {
			if err := t.keyValue(m, it.Node()); err != nil {
				return nil, err
			}
		}
		closeAll(m)
		return m, nil
	}
	return &node{kind: scalarNode, pos: t.shape(v.Raw), text: string(v.Data)}, nil
}

// closeAll marks an inline table and its dotted sub-tables as complete
// (TOML forbids extending them later).
func closeAll(n *node) {
	n.closed = true
	for _, e := range n.entries {
		if e.val.kind == mapNode {
			closeAll(e.val)
		}
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
