package config

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// parseTOML builds the tree of a TOML document.
func parseTOML(data []byte) (*node, error) {
	t := tomlBuilder{root: &node{kind: mapNode, pos: position{1, 1}}, lines: newLineIndex(data)}
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
		reason := "invalid TOML: " + msg
		if t.lines.atEnd(data, pos.line) && (strings.Contains(msg, "incomplete") || strings.Contains(msg, "end of input") || strings.Contains(msg, "unterminated")) {
			reason += "; the file ends there: is it cut short (saved while still being written)?"
		}
		return nil, &syntaxError{pos: pos, reason: reason}
	}
	return t.root, nil
}

type tomlBuilder struct {
	p      unstable.Parser
	root   *node
	cur    *node
	lines  lineIndex
	values int // nodes made, against MaxValues
	arena  arena
}

// lineIndex finds the line and column of a byte offset in O(log lines).
// (unstable.Parser.Shape counts lines from the start of the input on every
// call, which made loading quadratic in the file's size.)
type lineIndex []int // offsets at which lines 2, 3, ... start

func newLineIndex(data []byte) lineIndex {
	var idx lineIndex
	for i, b := range data {
		if b == '\n' {
			idx = append(idx, i+1)
		}
	}
	return idx
}

// pos returns the 1-based line and byte column of offset off.
func (l lineIndex) pos(off int) position {
	i := sort.SearchInts(l, off+1) // lines starting at or before off
	start := 0
	if i > 0 {
		start = l[i-1]
	}
	return position{i + 1, off - start + 1}
}

// atEnd reports whether line is the last line of data holding more than
// white space.
func (l lineIndex) atEnd(data []byte, line int) bool {
	if line-1 >= len(l) {
		return true
	}
	return strings.TrimSpace(string(data[l[line-1]:])) == ""
}

func (t *tomlBuilder) shape(r unstable.Range) position {
	return t.lines.pos(int(r.Offset))
}

// newNode makes a node, counting it against MaxValues.
func (t *tomlBuilder) newNode(kind nodeKind, pos position) (*node, error) {
	t.values++
	if t.values > MaxValues {
		return nil, &syntaxError{pos: pos, reason: fmt.Sprintf("the document holds more than %d values, the limit; check it is the right file", MaxValues)}
	}
	return t.arena.node(kind, pos), nil
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
		if existing != nil && existing.kind == mapNode && !existing.closed && e.Kind == unstable.Table {
			existing.closed = true
			t.cur = existing
			return nil
		}
		tbl, err := t.newNode(mapNode, lastPos)
		if err != nil {
			return err
		}
		tbl.closed = true
		if e.Kind == unstable.ArrayTable {
			switch {
			case existing == nil:
				l, err := t.newNode(listNode, lastPos)
				if err != nil {
					return err
				}
				l.items = []*node{tbl}
				parent.entries = append(parent.entries, t.arena.entry(last, lastPos, l))
			case existing.kind == listNode && !existing.closed:
				existing.items = append(existing.items, tbl)
			default:
				return &syntaxError{pos: lastPos, reason: fmt.Sprintf("[[%s]] conflicts with an earlier definition of %q", clip(strings.Join(keys, ".")), clip(last))}
			}
			t.cur = tbl
			return nil
		}
		if existing != nil {
			return &syntaxError{pos: lastPos, reason: fmt.Sprintf("table [%s] is defined twice; merge the two", clip(strings.Join(keys, ".")))}
		}
		parent.entries = append(parent.entries, t.arena.entry(last, lastPos, tbl))
		t.cur = tbl
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
		n, err := t.newNode(mapNode, pos)
		if err != nil {
			return nil, err
		}
		m.entries = append(m.entries, t.arena.entry(key, pos, n))
		return n, nil
	case ex.kind == mapNode && (header || !ex.closed):
		return ex, nil
	case ex.kind == listNode && header && !ex.closed && len(ex.items) > 0:
		return ex.items[len(ex.items)-1], nil
	}
	return nil, &syntaxError{pos: pos, reason: fmt.Sprintf("key %q is already defined as %s", clip(key), ex.kind)}
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
	if prev := m.lookup(last); prev != nil {
		return &syntaxError{pos: lastPos, reason: fmt.Sprintf("key %q is given twice (first on line %d); keep one", clip(last), prev.pos.line)}
	}
	val, err := t.value(e.Value(), lastPos)
	if err != nil {
		return err
	}
	m.entries = append(m.entries, t.arena.entry(last, lastPos, val))
	return nil
}

// value converts a value node; keyPos stands in for arrays, which the
// parser gives no position.
func (t *tomlBuilder) value(v *unstable.Node, keyPos position) (*node, error) {
	switch v.Kind {
	case unstable.Array:
		l, err := t.newNode(listNode, keyPos)
		if err != nil {
			return nil, err
		}
		l.closed = true
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
		m, err := t.newNode(mapNode, t.shape(v.Raw))
		if err != nil {
			return nil, err
		}
		it := v.Children()
		for it.Next() {
			if err := t.keyValue(m, it.Node()); err != nil {
				return nil, err
			}
		}
		closeAll(m)
		return m, nil
	}
	n, err := t.newNode(scalarNode, t.shape(v.Raw))
	if err != nil {
		return nil, err
	}
	n.text = string(v.Data)
	return n, nil
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
