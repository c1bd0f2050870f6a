package middleware

import "testing"

func TestPathMiddlewares(t *testing.T) {
	for _, tc := range []struct {
		name, mw, uri       string
		path, raw, fwd, rep string
	}{
		{"strip", "stripPrefix: {prefixes: [/api, /v1]}", "/api/users?x=1", "/users", "/users", "/api", ""},
		{"strip whole", "stripPrefix: {prefixes: [/api]}", "/api", "/", "/", "/api", ""},
		{"strip keeps segment boundary", "stripPrefix: {prefixes: [/api]}", "/apis/x", "/apis/x", "/apis/x", "", ""},
		{"strip keeps encoding", "stripPrefix: {prefixes: [/api]}", "/api/a%2Fb", "/a/b", "/a%2Fb", "/api", ""},
		{"strip regex", `stripPrefixRegex: {regex: "^/users/[a-z]+"}`, "/users/bob/photos", "/photos", "/photos", "/users/bob", ""},
		{"strip regex no match", `stripPrefixRegex: {regex: "^/users/[a-z]+"}`, "/groups/x", "/groups/x", "/groups/x", "", ""},
		{"add", "addPrefix: {prefix: /v2}", "/items", "/v2/items", "/v2/items", "", ""},
		{"replace", "replacePath: {path: /health}", "/anything?x", "/health", "/health", "", "/anything"},
		{"replace regex", `replacePathRegex: {regex: "^/old/(.*)", replacement: "/new/$1"}`, "/old/a/b", "/new/a/b", "/new/a/b", "", "/old/a/b"},
		{"replace regex no match", `replacePathRegex: {regex: "^/old/(.*)", replacement: "/new/$1"}`, "/other", "/other", "/other", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := build(t, "  m: {"+tc.mw+"}\n", Env{})
			var s seen
			req := get(tc.uri, "X-Forwarded-Prefix", "", "X-Replaced-Path", "")
			req.Header.Del("X-Forwarded-Prefix")
			req.Header.Del("X-Replaced-Path")
			do(m.Wrap(terminal(&s, nil)), req)
			got := s.get()
			if got.path != tc.path || got.raw != tc.raw || got.header.Get("X-Forwarded-Prefix") != tc.fwd || got.header.Get("X-Replaced-Path") != tc.rep {
				t.Errorf("service saw path %q raw %q prefix %q replaced %q; want %q %q %q %q",
					got.path, got.raw, got.header.Get("X-Forwarded-Prefix"), got.header.Get("X-Replaced-Path"), tc.path, tc.raw, tc.fwd, tc.rep)
			}
		})
	}
}
