package config

import (
	"strings"
	"testing"
)

func TestMerge(t *testing.T) {
	file, err := Parse("f.yaml", []byte(`
entryPoints:
  web: {address: "127.0.0.1:0"}
certificates:
  acme:
    server: embedded
    challenges:
      http: {entryPoint: web}
routes:
  mine: {host: a.example.test, service: s}
services:
  s: {static: {body: x}}
`), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	d := &Dynamic{
		Routes: map[string]*Route{
			"mine":  {Host: "clash.example.test", Service: "k"},                          // name clash with the file
			"ok":    {Host: "B.Example.Test", Service: "k"},                              // defaults applied
			"bad":   {Host: "not a host", Service: "k"},                                  // invalid on its own
			"lost":  {Host: "c.example.test", Service: "badsvc"},                         // its service is left out
			"redir": {Host: "d.example.test", Redirect: &RouteRedirect{Scheme: "https"}}, // no service needed
		},
		Services: map[string]*Service{
			"k":      {Servers: []Server{{URL: "http://198.51.100.1:80"}}},
			"badsvc": {Servers: []Server{{URL: "ftp://x"}}},
			"s":      {Static: &Static{}}, // clash
		},
		Domains: []DomainSet{{Main: "b.example.test"}, {Main: "*.wild.example.test"}},
		Owners:  map[string]string{"routes.bad": "ingress ns/bad"},
	}
	got, problems, err := Merge(file, d)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ok", "redir"} {
		if got.Routes[name] == nil {
			t.Errorf("route %s left out", name)
		}
	}
	if r := got.Routes["ok"]; r.Host != "b.example.test" || r.PathPrefix != "/" || len(r.EntryPoints) != 1 {
		t.Errorf("defaults of a dynamic route: %+v", r)
	}
	for _, name := range []string{"bad", "lost"} {
		if got.Routes[name] != nil {
			t.Errorf("route %s kept", name)
		}
	}
	if got.Routes["mine"].Host != "a.example.test" || got.Services["s"].Static.Body != "x" {
		t.Error("the file's route or service was replaced by a clashing one")
	}
	keys := map[string]Problem{}
	for _, p := range problems {
		keys[p.Key] = p
	}
	for _, k := range []string{"routes.mine", "services.s", "routes.bad", "services.badsvc", "routes.lost", "domains.*.wild.example.test"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("no problem reported for %s (got %v)", k, problems)
		}
	}
	if p := keys["routes.bad"]; p.Owner != "ingress ns/bad" || !strings.Contains(p.String(), "ingress ns/bad") {
		t.Errorf("problem owner: %+v", p)
	}
	if len(got.Certificates.Domains) != 1 {
		t.Errorf("domains: %+v", got.Certificates.Domains)
	}
	if len(file.Routes) != 1 || len(file.Services) != 1 || len(file.Certificates.Domains) != 0 {
		t.Error("Merge modified the file's config")
	}
}
