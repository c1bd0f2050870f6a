package httphead

import (
	"math/rand/v2"
	"net/http"
	"reflect"
	"testing"

	"golang.org/x/net/http/httpguts"
)

// TestAgainstNetHTTP checks each helper against the net/http (or httpguts)
// function it stands for, on chosen and on random inputs.
func TestAgainstNetHTTP(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const alphabet = "aZ-_.!x0 \t,:;\"\x7f\x80cClLoOsSeE"
	inputs := []string{"", "close", "Close", "CLOSE", " close ", "keep-alive, close", "closed", "x-close", "a,,b", "content-length",
		"Content-Length", "X-WEIRD_key", "user-agent", "Host", "hOST", "X-", "-x", "a b", "caf\xc3\xa9"}
	for range 20000 {
		b := make([]byte, r.IntN(12))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		inputs = append(inputs, string(b))
	}
	for _, s := range inputs {
		if got, want := Token([]byte(s)), s != "" && httpguts.ValidHeaderFieldName(s); got != want {
			t.Fatalf("Token(%q) = %v, want %v", s, got, want)
		}
		if Token([]byte(s)) {
			if got, want := CanonicalKey(s), http.CanonicalHeaderKey(s); got != want {
				t.Fatalf("CanonicalKey(%q) = %q, want %q", s, got, want)
			}
		}
		if got, want := HasToken([]byte(s), "close"), httpguts.HeaderValuesContainsToken([]string{s}, "close"); got != want {
			t.Fatalf("HasToken(%q, close) = %v, want %v", s, got, want)
		}
		if Printable([]byte(s)) && !httpguts.ValidHeaderFieldValue(s) {
			t.Fatalf("Printable(%q) but not a valid header value", s)
		}
	}
}

func TestHeader(t *testing.T) {
	lines := "host: a\r\nX-Dup: 1\r\nx-dup:\t2 \r\nX-Empty:\r\nSet-Cookie: a=b; c\r\n"
	want := http.Header{"Host": {"a"}, "X-Dup": {"1", "2"}, "X-Empty": {""}, "Set-Cookie": {"a=b; c"}}
	if got := Header(nil, lines, 5); !reflect.DeepEqual(got, want) {
		t.Errorf("Header = %v, want %v", got, want)
	}
}

func TestTrimAndFold(t *testing.T) {
	for _, tc := range []struct {
		in, trimmed string
	}{{"", ""}, {" \t a b\t ", "a b"}, {"\t", ""}, {"x", "x"}} {
		if got := TrimOWS(tc.in); got != tc.trimmed {
			t.Errorf("TrimOWS(%q) = %q, want %q", tc.in, got, tc.trimmed)
		}
	}
	for _, tc := range []struct {
		b, s string
		want bool
	}{{"Content-Length", "content-length", true}, {"CONTENT-LENGTH", "Content-Length", true}, {"Content_Length", "Content-Length", false},
		{"Content-Lengt", "Content-Length", false}, {"[", "{", false}, {"@", "`", false}} {
		if got := EqualFold([]byte(tc.b), tc.s); got != tc.want {
			t.Errorf("EqualFold(%q, %q) = %v, want %v", tc.b, tc.s, got, tc.want)
		}
	}
}

func TestRecycle(t *testing.T) {
	h := http.Header{"A": {"1"}, "B": {"2"}}
	if got := Recycle(h, 2); got == nil || len(got) != 0 || len(h) != 0 {
		t.Errorf("Recycle of 2 keys, at most 2: %v, want the same map, empty", got)
	}
	h = http.Header{"A": {"1"}, "B": {"2"}, "C": {"3"}}
	if got := Recycle(h, 2); got != nil {
		t.Errorf("Recycle of 3 keys, at most 2: %v, want nil", got)
	}
	if got := Recycle(nil, 2); got != nil {
		t.Errorf("Recycle(nil) = %v, want nil", got)
	}
}
