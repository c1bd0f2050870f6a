package admin

import (
	"encoding/json"
	"fmt"
	"math"
	"mime"
	"slices"
	"sort"
	"strings"
	"testing"
)

// openAPIDoc is the embedded document, decoded.
func openAPIDoc(t *testing.T) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.") {
		t.Fatalf("openapi = %q, want 3.x", v)
	}
	return doc
}

// deref follows a local $ref ("#/components/...").
func deref(doc map[string]any, v any) map[string]any {
	m, _ := v.(map[string]any)
	for m != nil {
		ref, ok := m["$ref"].(string)
		if !ok {
			return m
		}
		var cur any = doc
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			cur = cur.(map[string]any)[part]
		}
		m, _ = cur.(map[string]any)
	}
	return m
}

// check validates v against the JSON Schema subset the document uses
// (type, required, properties, items, enum) and returns the problems.
func check(doc map[string]any, schema any, v any, at string) []string {
	s := deref(doc, schema)
	if s == nil {
		return []string{at + ": no schema"}
	}
	var errs []string
	if typ, ok := s["type"].(string); ok {
		okType := false
		switch typ {
		case "object":
			_, okType = v.(map[string]any)
		case "array":
			_, okType = v.([]any)
		case "string":
			_, okType = v.(string)
		case "boolean":
			_, okType = v.(bool)
		case "number":
			_, okType = v.(float64)
		case "integer":
			f, isNum := v.(float64)
			okType = isNum && f == math.Trunc(f)
		}
		if !okType {
			return []string{fmt.Sprintf("%s: %v is not of type %s", at, v, typ)}
		}
	}
	if enum, ok := s["enum"].([]any); ok && !slices.Contains(enum, v) {
		errs = append(errs, fmt.Sprintf("%s: %v is not one of %v", at, v, enum))
	}
	if obj, ok := v.(map[string]any); ok {
		req, _ := s["required"].([]any)
		for _, r := range req {
			if _, ok := obj[r.(string)]; !ok {
				errs = append(errs, fmt.Sprintf("%s: required %q missing", at, r))
			}
		}
		props, _ := s["properties"].(map[string]any)
		for k, pv := range obj {
			if ps, ok := props[k]; ok {
				errs = append(errs, check(doc, ps, pv, at+"."+k)...)
			}
		}
	}
	if arr, ok := v.([]any); ok {
		if items, ok := s["items"]; ok {
			for i, e := range arr {
				errs = append(errs, check(doc, items, e, fmt.Sprintf("%s[%d]", at, i))...)
			}
		}
	}
	return errs
}

func TestOpenAPIListsEveryRoute(t *testing.T) {
	doc := openAPIDoc(t)
	paths := doc["paths"].(map[string]any)
	a := New(Options{})
	have := map[string]bool{}
	for _, e := range a.endpoints() {
		key := strings.ToLower(e.method) + " " + e.path
		have[key] = true
		item, ok := paths[e.path].(map[string]any)
		if !ok || item[strings.ToLower(e.method)] == nil {
			t.Errorf("handler %s %s is not in openapi.json", e.method, e.path)
			continue
		}
		op := item[strings.ToLower(e.method)].(map[string]any)
		_, public := op["security"]
		if public == e.auth {
			t.Errorf("%s %s: openapi security says public=%v, handler auth=%v", e.method, e.path, public, e.auth)
		}
	}
	for p, item := range paths {
		for m := range item.(map[string]any) {
			if m == "parameters" {
				continue
			}
			if !have[m+" "+p] {
				t.Errorf("openapi.json documents %s %s, which no handler serves", strings.ToUpper(m), p)
			}
		}
	}
}

// TestOpenAPIConformance calls every documented operation on a running
// admin with real certificates and checks each answer's status is
// documented and its body fits the documented schema.
func TestOpenAPIConformance(t *testing.T) {
	doc := openAPIDoc(t)
	paths := doc["paths"].(map[string]any)
	r := newRig(t, rigOptions{}, "api.example.test", "revoke.example.test")
	const (
		validYAML   = "entryPoints: {web: {address: \"127.0.0.1:0\"}}\nroutes: {a: {host: a.example.test, service: s}}\nservices: {s: {static: {body: x}}}\n"
		invalidYAML = "entryPoints:\n  web: {address: \"127.0.0.1:0\"}\nroutes:\n  a: {host: a.example.test, service: nope}\n"
		validTOML   = "[entryPoints.web]\naddress = \"127.0.0.1:0\"\n"
	)
	tests := []struct {
		method, path, query, body string
		token                     string
		want                      int
	}{
		{"GET", "/api/v1/certificates", "", "", testToken, 200},
		{"GET", "/api/v1/certificates", "", "", "", 401},
		{"GET", "/api/v1/certificates/api.example.test", "", "", testToken, 200},
		{"GET", "/api/v1/certificates/unknown.example.test", "", "", testToken, 404},
		{"POST", "/api/v1/certificates/unknown.example.test/renew", "", "", testToken, 404},
		{"POST", "/api/v1/certificates/revoke.example.test/revoke", "", `{"reason": "nonsense"}`, testToken, 400},
		{"POST", "/api/v1/certificates/revoke.example.test/revoke", "", `not json`, testToken, 400},
		{"POST", "/api/v1/certificates/unknown.example.test/revoke", "", "", testToken, 404},
		{"POST", "/api/v1/certificates/revoke.example.test/revoke", "", `{"reason": "superseded"}`, testToken, 200},
		{"POST", "/api/v1/certificates/api.example.test/renew", "", "", testToken, 202},
		{"GET", "/api/v1/routes", "", "", testToken, 200},
		{"GET", "/api/v1/services", "", "", testToken, 200},
		{"GET", "/api/v1/tcp", "", "", testToken, 200},
		{"GET", "/api/v1/targets", "", "", testToken, 200},
		{"GET", "/api/v1/fleet", "", "", testToken, 200},
		{"GET", "/api/v1/fleet", "?limit=1&locks=false", "", testToken, 200},
		{"GET", "/api/v1/fleet", "?limit=0", "", testToken, 400},
		{"GET", "/api/v1/fleet", "", "", "", 401},
		{"POST", "/api/v1/targets/lb1/deploy", "", "", testToken, 200},
		{"POST", "/api/v1/targets/unknown/deploy", "", "", testToken, 404},
		{"GET", "/api/v1/config", "", "", testToken, 200},
		{"POST", "/api/v1/config/validate", "", validYAML, testToken, 200},
		{"POST", "/api/v1/config/validate", "?format=toml", validTOML, testToken, 200},
		{"POST", "/api/v1/config/validate", "?format=ini", validYAML, testToken, 400},
		{"POST", "/api/v1/config/validate", "", invalidYAML, testToken, 422},
		{"POST", "/api/v1/config/validate", "", validYAML + strings.Repeat("# pad\n", 400_000), testToken, 200},
		{"POST", "/api/v1/config/validate", "", strings.Repeat("#", 16<<20+1), testToken, 413},
		{"GET", "/api/v1/openapi.json", "", "", "", 200},
		{"GET", "/metrics", "", "", testToken, 200},
		{"GET", "/metrics", "", "", "", 401},
		{"GET", "/debug/pprof/profile", "?seconds=1", "", testToken, 200},
		{"GET", "/debug/pprof/profile", "?seconds=0", "", testToken, 400},
		{"GET", "/debug/pprof/profile", "?seconds=" + strings.Repeat("9", 5000), "", testToken, 400},
		{"GET", "/debug/pprof/profile", "", "", "", 401},
		{"GET", "/debug/pprof/trace", "?seconds=1", "", testToken, 200},
		{"GET", "/debug/pprof/trace", "?seconds=301", "", testToken, 400},
		{"GET", "/debug/pprof/heap", "", "", testToken, 200},
		{"GET", "/debug/pprof/goroutine", "?debug=1", "", testToken, 200},
		{"GET", "/debug/pprof/allocs", "?seconds=x", "", testToken, 400},
		{"GET", "/debug/pprof/nope", "", "", testToken, 404},
		{"GET", "/debug/pprof/heap", "", "", "", 401},
	}
	called := map[string]bool{}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s %s%s %d", tc.method, tc.path, tc.query, tc.want), func(t *testing.T) {
			resp, body := call(t, r.url, tc.method, tc.path+tc.query, tc.token, tc.body)
			if resp.StatusCode != tc.want {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tc.want, body)
			}
			var op map[string]any
			for p, item := range paths {
				if pathMatches(p, tc.path) {
					op, _ = item.(map[string]any)[strings.ToLower(tc.method)].(map[string]any)
					called[strings.ToLower(tc.method)+" "+p] = true
				}
			}
			if op == nil {
				t.Fatalf("%s %s is not documented", tc.method, tc.path)
			}
			docResp := deref(doc, op["responses"].(map[string]any)[fmt.Sprint(resp.StatusCode)])
			if docResp == nil {
				t.Fatalf("status %d is not documented for %s %s", resp.StatusCode, tc.method, tc.path)
			}
			ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
			media, ok := docResp["content"].(map[string]any)[ct].(map[string]any)
			if !ok {
				t.Fatalf("content type %q is not documented for status %d", ct, resp.StatusCode)
			}
			if !strings.HasSuffix(ct, "json") {
				return
			}
			var v any
			if err := json.Unmarshal(body, &v); err != nil {
				t.Fatalf("body is not JSON: %v", err)
			}
			if errs := check(doc, media["schema"], v, "body"); len(errs) > 0 {
				t.Errorf("body does not fit the schema:\n  %s\nbody: %s", strings.Join(errs, "\n  "), body)
			}
		})
	}
	var missed []string
	for p, item := range paths {
		for m := range item.(map[string]any) {
			if !called[m+" "+p] {
				missed = append(missed, strings.ToUpper(m)+" "+p)
			}
		}
	}
	sort.Strings(missed)
	if len(missed) > 0 {
		t.Errorf("documented operations never called: %v", missed)
	}
}

func TestConfigRedacted(t *testing.T) {
	r := newRig(t, rigOptions{}, "redact.example.test")
	resp, body := call(t, r.url, "GET", "/api/v1/config", testToken, "")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	for _, secret := range []string{testToken, "c2VjcmV0LWhtYWMtdmFsdWU"} {
		if strings.Contains(string(body), secret) {
			t.Errorf("GET config shows a secret (%d characters)", len(secret))
		}
	}
	var got struct {
		Config struct {
			Admin        struct{ Token string }
			Certificates struct {
				ACME struct {
					EAB struct{ KID, HMAC string }
				}
			}
		}
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	checks := []struct{ name, got, want string }{
		{"admin.token", got.Config.Admin.Token, "REDACTED"},
		{"eab.hmac", got.Config.Certificates.ACME.EAB.HMAC, "REDACTED"},
		{"eab.kid (not secret)", got.Config.Certificates.ACME.EAB.KID, "test-kid"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
}

func TestEndpointShapes(t *testing.T) {
	r := newRig(t, rigOptions{}, "shape.example.test")
	leaf := r.leaf(t, "shape.example.test")
	var certs struct {
		Certificates []Certificate `json:"certificates"`
	}
	resp, body := call(t, r.url, "GET", "/api/v1/certificates", testToken, "")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if err := json.Unmarshal(body, &certs); err != nil || len(certs.Certificates) != 1 {
		t.Fatalf("certificates = %s (%v), want one", body, err)
	}
	c := certs.Certificates[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"name", c.Name, "shape.example.test"},
		{"state", c.State, StateValid},
		{"serial", c.Serial, leaf.SerialNumber.Text(16)},
		{"issuer", c.Issuer, leaf.Issuer.CommonName},
		{"notAfter", c.NotAfter != nil && c.NotAfter.Equal(leaf.NotAfter), true},
		{"next renewal set", c.NextRenewal != nil && c.NextRenewalReason != "", true},
		{"used by route", c.UsedBy.Routes, []string{"r0"}},
		{"used by target", c.UsedBy.Targets, []string{"lb1"}},
		{"failures", c.Failures, 0},
	}
	for _, ck := range checks {
		if fmt.Sprint(ck.got) != fmt.Sprint(ck.want) {
			t.Errorf("%s = %v, want %v", ck.name, ck.got, ck.want)
		}
	}

	var svcs struct {
		Services []struct {
			Name    string
			Static  bool
			Servers []struct {
				URL string
				Up  bool
			}
		}
	}
	_, body = call(t, r.url, "GET", "/api/v1/services", testToken, "")
	if err := json.Unmarshal(body, &svcs); err != nil {
		t.Fatal(err)
	}
	if len(svcs.Services) != 2 || svcs.Services[0].Name != "app" || len(svcs.Services[0].Servers) != 1 || !svcs.Services[0].Servers[0].Up || !svcs.Services[1].Static {
		t.Errorf("services = %s, want app with one server up, and static banner", body)
	}

	resp, body = call(t, r.url, "POST", "/api/v1/targets/lb1/deploy", testToken, "")
	if resp.StatusCode != 200 {
		t.Fatalf("deploy: %d %s", resp.StatusCode, body)
	}
	var tg struct{ Targets []TargetStatus }
	_, body = call(t, r.url, "GET", "/api/v1/targets", testToken, "")
	if err := json.Unmarshal(body, &tg); err != nil {
		t.Fatal(err)
	}
	if len(tg.Targets) != 1 || tg.Targets[0].LastResult != "ok" || tg.Targets[0].ServedSerial != leaf.SerialNumber.Text(16) {
		t.Errorf("targets after deploy = %s, want lb1 ok serving %s", body, leaf.SerialNumber.Text(16))
	}

	resp, body = call(t, r.url, "POST", "/api/v1/config/validate", testToken, "entryPoints:\n  web: {address: \"127.0.0.1:0\"}\nroutes:\n  a: {host: a.example.test, service: nope}\n")
	var p Problem
	if err := json.Unmarshal(body, &p); err != nil || resp.StatusCode != 422 {
		t.Fatalf("validate invalid: %d %s", resp.StatusCode, body)
	}
	if p.Type != ProblemInvalidConfig || p.Line != 4 || p.Path == "" || !strings.Contains(p.Detail, "nope") {
		t.Errorf("problem = %+v, want invalid-config at line 4 naming the unknown service", p)
	}
}
