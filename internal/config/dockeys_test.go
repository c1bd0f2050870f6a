package config

import (
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestDocsNameEveryKey checks that the reference (docs/config.md, and
// docs/targets.md for the targets' keys) names every key of the schema: a
// key added to a struct without a line in the reference fails here with
// its Go path.
func TestDocsNameEveryKey(t *testing.T) {
	var doc []byte
	for _, f := range []string{"../../docs/config.md", "../../docs/targets.md"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		doc = append(doc, b...)
	}
	// A key is named when it appears in code quotes, alone or as a part
	// of a dotted path (`a.b`, `a.b.c`, `a[].b`), or as a key in a YAML
	// example or in quotes (`key: value`).
	named := map[string]bool{}
	for _, m := range regexp.MustCompile("`([A-Za-z0-9_.\\[\\]]+)`").FindAllStringSubmatch(string(doc), -1) {
		for p := range strings.SplitSeq(strings.ReplaceAll(m[1], "[]", ""), ".") {
			named[p] = true
		}
	}
	for _, m := range regexp.MustCompile("(?m)(?:^\\s*(?:- )?|`)([A-Za-z][A-Za-z0-9]*):").FindAllStringSubmatch(string(doc), -1) {
		named[m[1]] = true
	}
	missing := map[string]string{}
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type, path string)
	walk = func(t reflect.Type, path string) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seen[t] {
			return
		}
		seen[t] = true
		for i := range t.NumField() {
			f := t.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if !f.IsExported() || tag == "-" {
				continue
			}
			if tag == "" {
				walk(f.Type, path) // embedded or inline
				continue
			}
			if !named[tag] {
				missing[tag] = path + "." + f.Name
			}
			walk(f.Type, path+"."+f.Name)
		}
	}
	walk(reflect.TypeOf(Config{}), "Config")
	if len(missing) > 0 {
		var lines []string
		for k, p := range missing {
			lines = append(lines, k+" ("+p+")")
		}
		sort.Strings(lines)
		t.Errorf("docs/config.md does not name these keys:\n%s", strings.Join(lines, "\n"))
	}
}
