package config

import (
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Limits of what the loader reads. They bound the memory and time of one
// load, whatever the file holds: `zoku run --check`, the hot reload and
// POST /api/v1/config/validate all go through Parse.
const (
	// MaxFileBytes is the largest configuration file read (16 MiB, room
	// for about 200,000 routes). A larger file is refused before it is
	// read whole.
	MaxFileBytes = 16 << 20

	// MaxValues caps the values (every scalar, list and table) of a
	// document after its YAML aliases are expanded.
	MaxValues = 2_000_000

	// MaxAliasExpansion caps how many times larger than the document as
	// written aliases may make it: an alias copies its anchor, so a few
	// hundred bytes of nested aliases can stand for billions of values
	// (the "billion laughs"). Documents of up to aliasFloor values are
	// exempt, so small files may reuse anchors freely.
	MaxAliasExpansion = 10
	aliasFloor        = 10_000

	// maxDepth bounds nesting, alias hops included.
	maxDepth = 64

	// maxQuoted is how much of a value an error message quotes; longer
	// values are cut, with their length, so every message stays one short
	// line. clipArgs cuts message arguments longer than maxArg (shorter
	// ones may be parts of the message, such as a list of valid keys).
	maxQuoted = 64
	maxArg    = 256
)

// tooLarge is the one-line reason for a file over MaxFileBytes.
func tooLarge(size int64) string {
	return fmt.Sprintf("the file is %s, over the %s limit for a configuration; check it is the right file (a generated file gone wrong?)", byteSize(size), byteSize(MaxFileBytes))
}

// byteSize writes n bytes the way people read them: "16 MiB", "1.5 MiB",
// "900 bytes".
func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB"
	case n >= 1<<10:
		return strconv.FormatFloat(float64(n)/(1<<10), 'f', 1, 64) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// checkText refuses data that is not UTF-8 text, naming the first bad
// byte's place. Both parsers would otherwise report it without a place (or
// as some other problem).
func checkText(data []byte) *syntaxError {
	if len(data) >= 2 && (data[0] == 0xFF && data[1] == 0xFE || data[0] == 0xFE && data[1] == 0xFF) {
		return &syntaxError{pos: position{1, 1}, reason: "the file is UTF-16 (it starts with a UTF-16 byte order mark); save it as UTF-8"}
	}
	if utf8.Valid(data) {
		return nil
	}
	off := 0
	for off < len(data) {
		r, size := utf8.DecodeRune(data[off:])
		if r == utf8.RuneError && size <= 1 {
			break
		}
		off += size
	}
	return &syntaxError{pos: offsetPos(data, off), reason: fmt.Sprintf("invalid UTF-8 (byte 0x%02X); zoku reads UTF-8 text only: save the file as UTF-8", data[off])}
}

// offsetPos is the line and column (in characters, like the YAML parser's)
// of byte offset off.
func offsetPos(data []byte, off int) position {
	line, start := 1, 0
	for i := 0; i < off && i < len(data); i++ {
		if data[i] == '\n' {
			line++
			start = i + 1
		}
	}
	return position{line, utf8.RuneCount(data[start:min(off, len(data))]) + 1}
}

// clip returns s cut to maxQuoted bytes (on a character boundary) with a
// note of its full length, or s when it is short.
func clip(s string) string {
	if len(s) <= maxQuoted {
		return s
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…(" + byteSize(int64(len(s))) + ")"
}

// clipArgs clips every string argument of an error message that is longer
// than maxArg (values, names and key paths come from the file and may be
// any length).
func clipArgs(args []any) []any {
	out := args
	for i, a := range args {
		s, ok := a.(string)
		if !ok || len(s) <= maxArg {
			continue
		}
		if &out[0] == &args[0] {
			out = append([]any(nil), args...)
		}
		out[i] = clip(s)
	}
	return out
}

// clipArgsStrings clips each name of a list shown in a message.
func clipArgsStrings(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = clip(n)
	}
	return out
}
