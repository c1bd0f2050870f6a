package nitrosim

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestExpressions(t *testing.T) {
	req := httptest.NewRequest("GET", "http://WWW.Example.test:80/.well-known/acme-challenge/abc?x=1", nil)
	rules := []struct {
		rule string
		want bool
		bad  bool
	}{
		{`true`, true, false},
		{`HTTP.REQ.IS_VALID`, true, false},
		{`HTTP.REQ.URL.EQ("/.well-known/acme-challenge/abc?x=1")`, true, false},
		{`HTTP.REQ.URL.PATH.EQ("/.well-known/acme-challenge/abc")`, true, false},
		{`HTTP.REQ.URL.STARTSWITH("/.well-known/") && !HTTP.REQ.URL.CONTAINS("zzz")`, true, false},
		{`HTTP.REQ.HOSTNAME.SET_TEXT_MODE(IGNORECASE).EQ("www.example.test")`, true, false},
		{`HTTP.REQ.HOSTNAME.EQ("www.example.test")`, false, false},
		{`false || (HTTP.REQ.URL.ENDSWITH("x=1"))`, true, false},
		{`HTTP.REQ.BODY(100).EQ("x")`, false, true},
		{`HTTP.REQ.URL.EQ("unterminated)`, false, true},
		{`HTTP.REQ.URL.EQ("` + strings.Repeat("a", 256) + `")`, false, true},
	}
	for _, tc := range rules {
		f, err := compileRule(tc.rule)
		if (err != nil) != tc.bad {
			t.Errorf("%s: compile error %v, want bad=%v", tc.rule, err, tc.bad)
			continue
		}
		if err == nil && f(req) != tc.want {
			t.Errorf("%s: got %v, want %v", tc.rule, !tc.want, tc.want)
		}
	}
	text, err := compileText(`"HTTP/1.0 200 OK\r\n\r\n" + "k"`)
	if err != nil || text(req) != "HTTP/1.0 200 OK\r\n\r\nk" {
		t.Errorf("respondwith literal: %q, %v", text(req), err)
	}
}

// The API refuses what the reference forbids.
func TestAPIStrictness(t *testing.T) {
	s, err := Start(Options{Username: "u", Password: "p"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	do := func(method, path, body string, hdr map[string]string) (int, int) {
		req, _ := http.NewRequest(method, s.URL()+path, bytes.NewBufferString(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var r struct {
			Code int `json:"errorcode"`
		}
		_ = json.Unmarshal(raw, &r)
		return resp.StatusCode, r.Code
	}
	auth := map[string]string{"X-NITRO-USER": "u", "X-NITRO-PASS": "p"}
	cases := []struct {
		name, method, path, body string
		hdr                      map[string]string
		status, code             int
	}{
		{"no credentials", "GET", "/nitro/v1/config/sslcertkey", "", nil, 401, 1027},
		{"bad credentials", "GET", "/nitro/v1/config/sslcertkey", "", map[string]string{"X-NITRO-USER": "u", "X-NITRO-PASS": "x"}, 401, 354},
		{"cookie and headers", "GET", "/nitro/v1/config/sslcertkey", "", map[string]string{"X-NITRO-USER": "u", "X-NITRO-PASS": "p", "Cookie": "NITRO_AUTH_TOKEN=abc"}, 400, 278},
		{"expired session", "GET", "/nitro/v1/config/sslcertkey", "", map[string]string{"Cookie": "NITRO_AUTH_TOKEN=abc"}, 401, 444},
		{"wrong body key", "POST", "/nitro/v1/config/responderaction", `{"responderpolicy":{}}`, auth, 400, 278},
		{"unknown attribute", "POST", "/nitro/v1/config/responderaction", `{"responderaction":{"name":"a","type":"noop","color":"red"}}`, auth, 400, 278},
		{"login", "POST", "/nitro/v1/config/login", `{"login":{"username":"u","password":"p"}}`, nil, 201, 0},
		{"file", "POST", "/nitro/v1/config/systemfile", `{"systemfile":{"filename":"a.crt","filelocation":"/nsconfig/ssl/","filecontent":"YQ==","fileencoding":"BASE64"}}`, auth, 201, 0},
		{"file exists", "POST", "/nitro/v1/config/systemfile", `{"systemfile":{"filename":"a.crt","filelocation":"/flash/nsconfig/ssl","filecontent":"YQ==","fileencoding":"BASE64"}}`, auth, 409, 1642},
		{"missing file", "DELETE", "/nitro/v1/config/systemfile/b.crt?args=filelocation:%2Fnsconfig%2Fssl", "", auth, 404, 1155},
		{"certkey without file", "POST", "/nitro/v1/config/sslcertkey", `{"sslcertkey":{"certkey":"c","cert":"none.crt"}}`, auth, 599, 1647},
		{"unbind not bound", "DELETE", "/nitro/v1/config/lbvserver_responderpolicy_binding/nope?args=policyname:p", "", auth, 404, 461},
	}
	for _, tc := range cases {
		st, code := do(tc.method, tc.path, tc.body, tc.hdr)
		if st != tc.status || code != tc.code {
			t.Errorf("%s: got HTTP %d errorcode %d, want %d / %d", tc.name, st, code, tc.status, tc.code)
		}
	}
}
