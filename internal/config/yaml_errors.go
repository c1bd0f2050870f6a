package config

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The YAML parser's messages are libyaml's ("could not find expected ':'",
// "found character that cannot start any token") with a line number that
// is sometimes the place of the enclosing block, sometimes 0-based, and
// never a column. yamlSyntax reads the line the message names and says
// what is wrong there in the user's terms: a tab, a key without ":", a
// quote or bracket never closed, a file that ends half-way.

var yamlErrRE = regexp.MustCompile(`^yaml: (?:line (\d+): )?(.*)$`)

// parserMessages are the messages of libyaml's parser (not its scanner):
// their line is 0-based.
var parserMessages = []string{
	"did not find expected key",
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"did not find expected '-' indicator",
	"did not find expected node content",
	"did not find expected <document start>",
}

const cutShort = "is the file cut short (saved while still being written)?"

// yamlSyntax turns a parse error into a one-line reason at a place.
func yamlSyntax(data []byte, err error) *syntaxError {
	m := yamlErrRE.FindStringSubmatch(firstLine(err.Error()))
	if m == nil {
		return &syntaxError{pos: position{1, 1}, reason: "invalid YAML: " + clip(firstLine(err.Error()))}
	}
	msg := m[2]
	line := 1
	if m[1] != "" {
		line, _ = strconv.Atoi(m[1])
		for _, p := range parserMessages {
			if msg == p {
				line++
				break
			}
		}
	}
	src := newYAMLSource(data)
	line = min(max(line, 1), src.lastLine())
	text := src.line(line)
	at := position{line, indentCol(text)}
	switch {
	case strings.Contains(msg, "tab character") || strings.Contains(msg, "cannot start any token"):
		for _, l := range []int{line, line + 1} {
			if col, ok := leadingTab(src.line(l)); ok {
				return &syntaxError{pos: position{l, col}, reason: "a tab indents this line; YAML indents with spaces only: replace the tab with spaces"}
			}
		}
		if r, col, ok := badStart(text); ok {
			return &syntaxError{pos: position{line, col}, reason: fmt.Sprintf("a value cannot start with %q in YAML; put the value in quotes", r)}
		}
	case msg == "could not find expected ':'":
		key, _, _ := strings.Cut(text, " #")
		key = strings.TrimSpace(key)
		if k, _, ok := strings.Cut(key, ":"); ok && utf8.RuneCountInString(k) > 1024 {
			return &syntaxError{pos: at, reason: "a key longer than 1024 characters, YAML's limit for a key; shorten it"}
		}
		if src.isLast(line) {
			return &syntaxError{pos: at, reason: fmt.Sprintf("%q has no \":\" after it and the file ends there; %s", clip(key), cutShort)}
		}
		return noColon(line, at, key)
	case msg == "found unexpected end of stream":
		if col := strings.IndexAny(text, `"'`); col >= 0 {
			at.col = utf8.RuneCountInString(text[:col]) + 1
			return &syntaxError{pos: at, reason: fmt.Sprintf("the quote opened here is never closed: the file ends inside it; close it with %s, or %s", text[col:col+1], cutShort)}
		}
		return &syntaxError{pos: at, reason: "the file ends in the middle of a value; " + cutShort}
	case strings.HasPrefix(msg, "did not find expected ',' or "):
		closer := msg[len(msg)-2 : len(msg)-1]
		return src.unclosedFlow(line, map[string]byte{"]": '[', "}": '{'}[closer], closer[0])
	case msg == "did not find expected node content":
		for _, oc := range [][2]byte{{'[', ']'}, {'{', '}'}} {
			if _, _, ok := unclosed(text, oc[0], oc[1]); ok {
				return src.unclosedFlow(line, oc[0], oc[1])
			}
		}
		if src.isLast(line) {
			return &syntaxError{pos: at, reason: "the file ends where a value should be; " + cutShort}
		}
		return &syntaxError{pos: at, reason: "a value is missing here (or a \",\" is one too many)"}
	case msg == "did not find expected key":
		return &syntaxError{pos: at, reason: "a line below this one is indented differently from the keys of its table; indent all keys of one table by the same number of spaces"}
	case msg == "did not find expected '-' indicator":
		return &syntaxError{pos: at, reason: "a line below this list is indented like its items but does not start with \"- \"; make it an item or fix its indentation"}
	case msg == "mapping values are not allowed in this context":
		return src.misplacedKey(line, at, text)
	case msg == "block sequence entries are not allowed in this context":
		return &syntaxError{pos: at, reason: "a list item (\"- \") where no list may start: put the list on the lines below its key, indented"}
	case msg == "control characters are not allowed":
		if pos, r, ok := firstControl(data); ok {
			return &syntaxError{pos: pos, reason: fmt.Sprintf("control character U+%04X in the file; remove it (YAML allows only printable characters and tabs)", r)}
		}
	case strings.HasPrefix(msg, "unknown anchor '"):
		name := strings.TrimSuffix(strings.TrimPrefix(msg, "unknown anchor '"), "' referenced")
		return &syntaxError{pos: src.find("*" + name), reason: fmt.Sprintf("alias *%s refers to no anchor; define &%s before it", clip(name), clip(name))}
	case strings.HasPrefix(msg, "exceeded max depth"):
		return &syntaxError{pos: at, reason: fmt.Sprintf("the document is nested more than %d levels deep; flatten it", maxDepth)}
	}
	return &syntaxError{pos: at, reason: "invalid YAML: " + clip(msg)}
}

// noColon is the reason for a line that should be "key: value".
func noColon(line int, at position, key string) *syntaxError {
	return &syntaxError{pos: at, reason: fmt.Sprintf("%q is neither \"key: value\" nor a list item; add \":\" after the key, or fix the indentation", clip(key))}
}

// misplacedKey explains a ": " where no key may start: a value holding
// ": ", a key longer than YAML allows, or a key indented under a line
// that is no table (often a line above that lacks its ":").
func (s yamlSource) misplacedKey(line int, at position, text string) *syntaxError {
	body := strings.TrimSpace(text)
	key, value, _ := strings.Cut(body, ": ")
	if utf8.RuneCountInString(key) > 1024 {
		return &syntaxError{pos: at, reason: "a key longer than 1024 characters, YAML's limit for a key; shorten it"}
	}
	if strings.Contains(value, ": ") && !strings.HasPrefix(value, "{") {
		col := strings.Index(text, ": ") + 2
		return &syntaxError{pos: position{line, utf8.RuneCountInString(text[:col]) + 1}, reason: "this value holds \": \"; put it in quotes"}
	}
	indent := at.col
	for l := line - 1; l >= max(1, line-1000); l-- {
		t := s.line(l)
		content, _, _ := strings.Cut(t, " #")
		content = strings.TrimSpace(content)
		if content == "" || strings.HasPrefix(content, "#") {
			continue
		}
		if !strings.Contains(content, ":") && !strings.HasPrefix(content, "- ") && content != "-" {
			return noColon(l, position{l, indentCol(t)}, content)
		}
		if indentCol(t) < indent {
			if k, v, ok := strings.Cut(content, ":"); ok && strings.TrimSpace(v) != "" {
				return &syntaxError{pos: at, reason: fmt.Sprintf("this key is indented under %q, which already has a value; un-indent it, or remove that value", clip(strings.TrimSpace(k)+":"))}
			}
			break
		}
	}
	return &syntaxError{pos: at, reason: "\": \" where no key may start: quote a value that holds \": \", or fix the indentation"}
}

// unclosedFlow is the reason for a [ or { that the parser found unclosed
// at or above line: it points at the opener.
func (s yamlSource) unclosedFlow(line int, opener, closer byte) *syntaxError {
	at := position{line, indentCol(s.line(line))}
	for l := line; l >= max(1, line-1000); l-- {
		if col, rest, ok := unclosed(s.line(l), opener, closer); ok {
			at = position{l, col}
			if !bytes.ContainsRune(s.data[s.offset(l)+rest:], rune(closer)) {
				return &syntaxError{pos: at, reason: fmt.Sprintf("the %c opened here is never closed: the file ends first; add %c, or %s", opener, closer, cutShort)}
			}
			break
		}
	}
	return &syntaxError{pos: at, reason: fmt.Sprintf("the %c opened here is not closed by %c (or a \",\" is missing between two of its items)", opener, closer)}
}

// unclosed finds the first opener in text that no closer on the same line
// matches (quoted text aside): its column, and the byte offset after it.
func unclosed(text string, opener, closer byte) (col, after int, ok bool) {
	var open []int
	var quote byte
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '#' && (i == 0 || text[i-1] == ' '):
			i = len(text)
		case c == opener:
			open = append(open, i)
		case c == closer && len(open) > 0:
			open = open[:len(open)-1]
		}
	}
	if len(open) == 0 {
		return 0, 0, false
	}
	return utf8.RuneCountInString(text[:open[0]]) + 1, open[0] + 1, true
}

// yamlSource answers questions about the lines of a document that failed
// to parse.
type yamlSource struct {
	data  []byte
	lines lineIndex
}

func newYAMLSource(data []byte) yamlSource {
	return yamlSource{data: data, lines: newLineIndex(data)}
}

// offset returns the byte offset at which line (1-based) starts.
func (s yamlSource) offset(line int) int {
	switch {
	case line <= 1:
		return 0
	case line-2 < len(s.lines):
		return s.lines[line-2]
	}
	return len(s.data)
}

// line returns line n without its line break ("" past the end).
func (s yamlSource) line(n int) string {
	rest := s.data[s.offset(n):]
	if i := bytes.IndexByte(rest, '\n'); i >= 0 {
		rest = rest[:i]
	}
	return strings.TrimSuffix(string(rest), "\r")
}

// lastLine is the number of the last line with more than white space
// (1 for an empty document).
func (s yamlSource) lastLine() int {
	trimmed := bytes.TrimRightFunc(s.data, unicode.IsSpace)
	return bytes.Count(trimmed, []byte("\n")) + 1
}

// isLast reports whether nothing but white space and comments follows
// line.
func (s yamlSource) isLast(line int) bool {
	for _, l := range strings.Split(string(s.data[s.offset(line+1):]), "\n") {
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
			return false
		}
	}
	return true
}

// find returns the place of the first occurrence of needle that is not
// inside a comment, or 1:1.
func (s yamlSource) find(needle string) position {
	for i, text := range strings.Split(string(s.data), "\n") {
		if c := strings.Index(text, "#"); c >= 0 {
			text = text[:c]
		}
		if j := strings.Index(text, needle); j >= 0 {
			return position{i + 1, utf8.RuneCountInString(text[:j]) + 1}
		}
	}
	return position{1, 1}
}

// indentCol is the column of the first character of text that is not a
// space (1 for a blank line).
func indentCol(text string) int {
	for i, r := range text {
		if r != ' ' && r != '\t' {
			return utf8.RuneCountInString(text[:i]) + 1
		}
	}
	return 1
}

// leadingTab finds a tab among the white space that starts text, or right
// after a "- " list marker there.
func leadingTab(text string) (int, bool) {
	for i, r := range text {
		switch r {
		case '\t':
			return i + 1, true
		case ' ', '-':
		default:
			return 0, false
		}
	}
	return 0, false
}

// badStart finds a value starting with a character YAML reserves (@ and
// `).
func badStart(text string) (rune, int, bool) {
	for i, r := range text {
		if (r == '@' || r == '`') && (i == 0 || strings.ContainsRune(" \t[{,:-", rune(text[i-1]))) {
			return r, utf8.RuneCountInString(text[:i]) + 1, true
		}
	}
	return 0, 0, false
}

// firstControl finds the first character YAML does not allow: C0 controls
// other than tab, line feed and carriage return, DEL, and C1 controls
// other than NEL.
func firstControl(data []byte) (position, rune, bool) {
	for off, r := range string(data) {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0x7F || r >= 0x80 && r <= 0x9F && r != 0x85 {
			return offsetPos(data, off), r, true
		}
	}
	return position{}, 0, false
}
