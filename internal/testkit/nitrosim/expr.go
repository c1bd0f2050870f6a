package nitrosim

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
)

// The simulator understands the small part of the NetScaler default
// (advanced) policy expression language that responder configurations for
// ACME use, and refuses everything else as a syntax error:
//
//	rules:   true, false, HTTP.REQ.IS_VALID, <text>.EQ|STARTSWITH|ENDSWITH|CONTAINS("..."),
//	         !, &&, ||, parentheses
//	text:    HTTP.REQ.URL, HTTP.REQ.URL.PATH, HTTP.REQ.URL.PATH_AND_QUERY,
//	         HTTP.REQ.HOSTNAME, each optionally .SET_TEXT_MODE(IGNORECASE)
//	strings: "..." literals (escapes \r \n \t \" \\) and text sources with
//	         .HTTP_URL_SAFE, joined with +
//
// A string literal is limited to 255 characters, the limit commonly quoted
// for the appliance (the reference marks it uncertain), so a client that
// builds long literals is caught here.

const maxLiteral = 255

type token struct {
	kind string // "ident", "str", "op"
	text string
}

func tokenize(s string) ([]token, error) {
	var out []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			i++
		case c == '"':
			var b strings.Builder
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
					switch s[j] {
					case 'r':
						b.WriteByte('\r')
					case 'n':
						b.WriteByte('\n')
					case 't':
						b.WriteByte('\t')
					default:
						b.WriteByte(s[j])
					}
					continue
				}
				b.WriteByte(s[j])
			}
			if j >= len(s) {
				return nil, errors.New("unterminated string literal")
			}
			if j-i-1 > maxLiteral {
				return nil, fmt.Errorf("string literal longer than %d characters", maxLiteral)
			}
			out = append(out, token{"str", b.String()})
			i = j + 1
		case strings.HasPrefix(s[i:], "&&") || strings.HasPrefix(s[i:], "||"):
			out = append(out, token{"op", s[i : i+2]})
			i += 2
		case c == '(' || c == ')' || c == '+' || c == '!':
			out = append(out, token{"op", string(c)})
			i++
		case c == '.' || c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9':
			j := i
			for j < len(s) && (s[j] == '.' || s[j] == '_' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= '0' && s[j] <= '9') {
				j++
			}
			out = append(out, token{"ident", s[i:j]})
			i = j
		default:
			return nil, fmt.Errorf("unexpected character %q", c)
		}
	}
	return out, nil
}

type parser struct {
	toks []token
	pos  int
}

func (p *parser) peek() token {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return token{}
}

func (p *parser) next() token { t := p.peek(); p.pos++; return t }

func (p *parser) expect(kind, text string) error {
	t := p.next()
	if t.kind != kind || t.text != text {
		return fmt.Errorf("expected %q", text)
	}
	return nil
}

// ruleFunc evaluates a rule against a request.
type ruleFunc func(*http.Request) bool

// textFunc evaluates a text source or string expression.
type textFunc func(*http.Request) string

func compileRule(s string) (ruleFunc, error) {
	toks, err := tokenize(s)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	f, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.pos != len(p.toks) {
		return nil, fmt.Errorf("unexpected %q", p.peek().text)
	}
	return f, nil
}

func (p *parser) or() (ruleFunc, error) {
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.peek().text == "||" {
		p.next()
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		a, b := l, r
		l = func(q *http.Request) bool { return a(q) || b(q) }
	}
	return l, nil
}

func (p *parser) and() (ruleFunc, error) {
	l, err := p.not()
	if err != nil {
		return nil, err
	}
	for p.peek().text == "&&" {
		p.next()
		r, err := p.not()
		if err != nil {
			return nil, err
		}
		a, b := l, r
		l = func(q *http.Request) bool { return a(q) && b(q) }
	}
	return l, nil
}

func (p *parser) not() (ruleFunc, error) {
	switch t := p.peek(); {
	case t.kind == "op" && t.text == "!":
		p.next()
		f, err := p.not()
		if err != nil {
			return nil, err
		}
		return func(q *http.Request) bool { return !f(q) }, nil
	case t.kind == "op" && t.text == "(":
		p.next()
		f, err := p.or()
		if err != nil {
			return nil, err
		}
		return f, p.expect("op", ")")
	case t.kind == "ident":
		return p.atom()
	}
	return nil, fmt.Errorf("unexpected %q", p.peek().text)
}

var textSources = map[string]textFunc{
	"HTTP.REQ.URL":                              func(q *http.Request) string { return q.URL.RequestURI() },
	"HTTP.REQ.URL.PATH_AND_QUERY":               func(q *http.Request) string { return q.URL.RequestURI() },
	"HTTP.REQ.URL.PATH":                         func(q *http.Request) string { return q.URL.Path },
	"HTTP.REQ.HOSTNAME":                         hostname,
	"HTTP.REQ.HOSTNAME.SERVER":                  hostname,
	"HTTP.REQ.URL.HTTP_URL_SAFE":                func(q *http.Request) string { return q.URL.RequestURI() },
	"HTTP.REQ.HOSTNAME.HTTP_URL_SAFE":           hostname,
	"HTTP.REQ.URL.PATH_AND_QUERY.HTTP_URL_SAFE": func(q *http.Request) string { return q.URL.RequestURI() },
}

func hostname(q *http.Request) string {
	if h, _, err := net.SplitHostPort(q.Host); err == nil {
		return h
	}
	return q.Host
}

var textMethods = map[string]func(a, b string) bool{
	"EQ":         func(a, b string) bool { return a == b },
	"STARTSWITH": strings.HasPrefix,
	"ENDSWITH":   strings.HasSuffix,
	"CONTAINS":   strings.Contains,
}

func (p *parser) atom() (ruleFunc, error) {
	id := p.next().text
	switch id {
	case "true":
		return func(*http.Request) bool { return true }, nil
	case "false":
		return func(*http.Request) bool { return false }, nil
	case "HTTP.REQ.IS_VALID":
		return func(*http.Request) bool { return true }, nil
	}
	fold := false
	base, method := splitLast(id)
	if method == "SET_TEXT_MODE" {
		if err := p.expect("op", "("); err != nil {
			return nil, err
		}
		mode := p.next().text
		if mode != "IGNORECASE" && mode != "CASESENSITIVE" {
			return nil, fmt.Errorf("unknown text mode %q", mode)
		}
		if err := p.expect("op", ")"); err != nil {
			return nil, err
		}
		fold = mode == "IGNORECASE"
		t := p.next()
		if t.kind != "ident" || !strings.HasPrefix(t.text, ".") {
			return nil, errors.New("expected a method after SET_TEXT_MODE(...)")
		}
		method = strings.TrimPrefix(t.text, ".")
	}
	src, ok := textSources[base]
	cmp, ok2 := textMethods[method]
	if !ok || !ok2 {
		return nil, fmt.Errorf("unsupported expression %q", id)
	}
	if err := p.expect("op", "("); err != nil {
		return nil, err
	}
	arg := p.next()
	if arg.kind != "str" {
		return nil, fmt.Errorf("%s needs a string literal", method)
	}
	if err := p.expect("op", ")"); err != nil {
		return nil, err
	}
	want := arg.text
	return func(q *http.Request) bool {
		got := src(q)
		if fold {
			return cmp(strings.ToLower(got), strings.ToLower(want))
		}
		return cmp(got, want)
	}, nil
}

func splitLast(id string) (string, string) {
	i := strings.LastIndexByte(id, '.')
	if i < 0 {
		return id, ""
	}
	return id[:i], id[i+1:]
}

// compileText compiles a string expression: literals and text sources
// joined with +.
func compileText(s string) (textFunc, error) {
	toks, err := tokenize(s)
	if err != nil {
		return nil, err
	}
	var parts []textFunc
	for i := 0; i < len(toks); i++ {
		if i > 0 {
			if toks[i].text != "+" {
				return nil, fmt.Errorf("expected + before %q", toks[i].text)
			}
			i++
			if i == len(toks) {
				return nil, errors.New("expression ends with +")
			}
		}
		switch t := toks[i]; t.kind {
		case "str":
			lit := t.text
			parts = append(parts, func(*http.Request) string { return lit })
		case "ident":
			src, ok := textSources[t.text]
			if !ok {
				return nil, fmt.Errorf("unsupported expression %q", t.text)
			}
			parts = append(parts, src)
		default:
			return nil, fmt.Errorf("unexpected %q", t.text)
		}
	}
	if len(parts) == 0 {
		return nil, errors.New("empty expression")
	}
	return func(q *http.Request) string {
		var b strings.Builder
		for _, f := range parts {
			b.WriteString(f(q))
		}
		return b.String()
	}, nil
}
