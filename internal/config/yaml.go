package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"go.yaml.in/yaml/v3"
)

// YAML is read with go.yaml.in/yaml/v3's node API, which runs in time
// linear in the file and never expands aliases itself: an alias stays a
// pointer to its anchor. Expansion happens here, and only after measure
// has counted what it would produce, so an alias bomb is refused before
// any memory is spent on it.

// parseYAML builds the tree of a YAML document.
func parseYAML(data []byte) (*node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var body *yaml.Node
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, yamlSyntax(data, err)
		}
		if len(doc.Content) == 0 || isEmptyYAML(doc.Content[0]) {
			continue
		}
		if body != nil {
			return nil, &syntaxError{pos: position{doc.Line, doc.Column}, reason: "more than one YAML document; keep the whole configuration in one document"}
		}
		body = doc.Content[0]
	}
	if body == nil {
		return &node{kind: mapNode, pos: position{1, 1}}, nil
	}
	b := yamlBuilder{sizes: map[*yaml.Node]*yamlSize{}, built: map[*yaml.Node]*node{}}
	expanded, _, err := b.measure(body, 0)
	if err != nil {
		return nil, err
	}
	if err := b.checkSize(expanded, body); err != nil {
		return nil, err
	}
	return b.build(body)
}

// isEmptyYAML reports whether n is a document body with nothing in it
// (a lone "---").
func isEmptyYAML(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Value == "" && n.ShortTag() == "!!null" && n.Anchor == ""
}

type yamlBuilder struct {
	// sizes holds what measure found for every anchored node.
	sizes map[*yaml.Node]*yamlSize
	// written counts the nodes of the document as written (an alias is
	// one); measure sets it.
	written int
	// biggest is the alias that stands for the most values.
	biggest      *yaml.Node
	biggestCount int
	// built holds the tree of every anchored node, shared by its aliases.
	built map[*yaml.Node]*node
	arena arena
}

// yamlSize is an anchored node's expanded value count and height.
type yamlSize struct {
	values, height int
	busy           bool // being measured: an alias to it is a cycle
}

func yamlPos(n *yaml.Node) position {
	if n == nil || n.Line == 0 {
		return position{1, 1}
	}
	return position{n.Line, n.Column}
}

// measure returns how many values n stands for with every alias expanded
// (saturating just above MaxValues, so it cannot overflow) and the height
// of its deepest value, in time linear in the document: an anchor is
// measured once. It refuses cycles and nesting deeper than maxDepth.
func (b *yamlBuilder) measure(n *yaml.Node, depth int) (values, height int, err error) {
	if depth > maxDepth {
		return 0, 0, &syntaxError{pos: yamlPos(n), reason: fmt.Sprintf("the document is nested more than %d levels deep (aliases included); flatten it", maxDepth)}
	}
	if n.Kind == yaml.AliasNode {
		b.written++
		target := n.Alias
		s, ok := b.sizes[target]
		if ok && s.busy {
			return 0, 0, &syntaxError{pos: yamlPos(n), reason: fmt.Sprintf("alias *%s is inside its own anchor &%s, so it never ends; remove it", clip(n.Value), clip(n.Value))}
		}
		if !ok {
			// An anchor comes before its aliases in document order, so
			// measure has seen it; the parser guarantees it.
			return 0, 0, &syntaxError{pos: yamlPos(n), reason: fmt.Sprintf("alias *%s refers to no anchor; define &%s before it", clip(n.Value), clip(n.Value))}
		}
		if depth+1+s.height > maxDepth {
			return 0, 0, &syntaxError{pos: yamlPos(n), reason: fmt.Sprintf("alias *%s nests the document more than %d levels deep; flatten it", clip(n.Value), maxDepth)}
		}
		if s.values > b.biggestCount {
			b.biggest, b.biggestCount = n, s.values
		}
		return s.values, s.height + 1, nil
	}
	var s *yamlSize
	if n.Anchor != "" {
		s = &yamlSize{busy: true}
		b.sizes[n] = s
	}
	b.written++
	values = 1
	for _, c := range n.Content {
		v, h, err := b.measure(c, depth+1)
		if err != nil {
			return 0, 0, err
		}
		values = min(values+v, MaxValues+1)
		height = max(height, h+1)
	}
	if s != nil {
		s.values, s.height, s.busy = values, height, false
	}
	return values, height, nil
}

// checkSize refuses a document whose expansion is over the limits: more
// than MaxValues values, or aliases multiplying it more than
// MaxAliasExpansion times (beyond aliasFloor values).
func (b *yamlBuilder) checkSize(expanded int, body *yaml.Node) error {
	limit := min(MaxValues, max(aliasFloor, MaxAliasExpansion*b.written))
	if expanded <= limit {
		return nil
	}
	if b.biggest == nil {
		return &syntaxError{pos: yamlPos(body), reason: fmt.Sprintf("the document holds more than %d values, the limit; check it is the right file", MaxValues)}
	}
	alias := "*" + clip(b.biggest.Value)
	if expanded > MaxValues {
		return &syntaxError{pos: yamlPos(b.biggest), reason: fmt.Sprintf("aliases expand the document to more than %d values, the limit (%s alone stands for %s); write the values out or use fewer aliases", MaxValues, alias, countValues(b.biggestCount))}
	}
	return &syntaxError{pos: yamlPos(b.biggest), reason: fmt.Sprintf("aliases expand the document %d times (%d values written, %d expanded), over the %d-fold limit (%s alone stands for %s); write the values out or use fewer aliases", expanded/b.written, b.written, expanded, MaxAliasExpansion, alias, countValues(b.biggestCount))}
}

func countValues(n int) string {
	if n > MaxValues {
		return fmt.Sprintf("more than %d values", MaxValues)
	}
	if n == 1 {
		return "1 value"
	}
	return fmt.Sprintf("%d values", n)
}

// build converts n; measure has already refused cycles and excess.
func (b *yamlBuilder) build(n *yaml.Node) (*node, error) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if t, ok := b.built[n]; ok {
		return t, nil
	}
	var t *node
	switch n.Kind {
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			t = b.arena.node(nullNode, yamlPos(n))
		} else {
			t = b.arena.node(scalarNode, yamlPos(n))
			t.text = n.Value
		}
	case yaml.SequenceNode:
		t = b.arena.node(listNode, yamlPos(n))
		t.items = make([]*node, 0, len(n.Content))
		for _, c := range n.Content {
			item, err := b.build(c)
			if err != nil {
				return nil, err
			}
			t.items = append(t.items, item)
		}
	case yaml.MappingNode:
		t = b.arena.node(mapNode, yamlPos(n))
		t.entries = make([]*entry, 0, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := b.addEntry(t, n.Content[i], n.Content[i+1]); err != nil {
				return nil, err
			}
		}
	default:
		return nil, &syntaxError{pos: yamlPos(n), reason: "unsupported YAML construct"}
	}
	if n.Anchor != "" {
		b.built[n] = t
	}
	return t, nil
}

func (b *yamlBuilder) addEntry(m *node, k, v *yaml.Node) error {
	pos := yamlPos(k)
	if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
		return &syntaxError{pos: pos, reason: "merge keys (<<) are not supported; write the keys out"}
	}
	if k.Kind == yaml.AliasNode {
		k = k.Alias
	}
	if k.Kind != yaml.ScalarNode {
		return &syntaxError{pos: pos, reason: "a key must be a plain name, not " + yamlKind(k)}
	}
	key := k.Value
	if prev := m.lookup(key); prev != nil {
		return &syntaxError{pos: pos, reason: fmt.Sprintf("key %q is already defined on line %d; keep one", clip(key), prev.pos.line)}
	}
	val, err := b.build(v)
	if err != nil {
		return err
	}
	m.entries = append(m.entries, b.arena.entry(key, pos, val))
	return nil
}

func yamlKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a table"
	case yaml.SequenceNode:
		return "a list"
	}
	return "this"
}
