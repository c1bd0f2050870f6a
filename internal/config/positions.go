package config

import (
	"strconv"
	"strings"
)

// lookup finds where path ("routes.api.host", "services.s.servers[0].url")
// is in the file, or its nearest parent that is: the position of its key,
// or of the list item. A name may itself hold dots ("routes:
// {a.example: ...}"), so each possible split is tried against the keys
// the table really has.
func (c *Config) lookup(path string) (position, bool) {
	if c.tree == nil {
		return position{}, false
	}
	p, _ := resolve(c.tree, path, c.tree.pos)
	return p, true
}

// resolve walks rest down from n, whose own position is at. It returns the
// position of the deepest value reached and whether all of rest was.
func resolve(n *node, rest string, at position) (position, bool) {
	if rest == "" {
		return at, true
	}
	switch n.kind {
	case listNode:
		if !strings.HasPrefix(rest, "[") {
			return at, false
		}
		end := strings.IndexByte(rest, ']')
		i, err := strconv.Atoi(rest[1:max(end, 1)])
		if end < 0 || err != nil || i < 0 || i >= len(n.items) {
			return at, false
		}
		item := n.items[i]
		return resolve(item, strings.TrimPrefix(rest[end+1:], "."), item.pos)
	case mapNode:
		best, found := at, false
		for i := 0; i <= len(rest); i++ {
			if i < len(rest) && rest[i] != '.' && rest[i] != '[' {
				continue
			}
			e := n.lookup(rest[:i])
			if e == nil {
				continue
			}
			next := rest[i:]
			if strings.HasPrefix(next, ".") {
				next = next[1:]
			}
			p, ok := resolve(e.val, next, e.pos)
			if ok {
				return p, true
			}
			if !found {
				best, found = p, true
			}
		}
		return best, false
	}
	return at, false
}
