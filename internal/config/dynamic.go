package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
)

// Dynamic is the part of a config that a source other than the file
// derives, such as the Kubernetes source (Ingresses, Gateway API routes,
// Secrets). Merge adds it to the file's config.
type Dynamic struct {
	// Routes and Services by name; names must not clash with the file's.
	Routes   map[string]*Route
	Services map[string]*Service
	// Certificates are served for their names (pinned), like
	// certificates.files; they normally carry CertPEM and KeyPEM.
	Certificates []CertFile
	// Domains are certificates the engine obtains and renews by ACME.
	Domains []DomainSet
	// Owners name the object each route, service, certificate and domain
	// came from ("ingress default/web"), keyed by "routes.<name>",
	// "services.<name>", "certificates.<origin>" and "domains.<main>";
	// problems carry them so the source can report on the object.
	Owners map[string]string
}

// Problem is one part of a Dynamic that Merge left out, and why.
type Problem struct {
	// Key is the part: "routes.<name>", "services.<name>",
	// "certificates.<origin>" or "domains.<main>".
	Key string
	// Owner is the object it came from (Dynamic.Owners), if known.
	Owner string
	// Reason is one line.
	Reason string
}

// String is "<owner>: <key>: <reason>".
func (p Problem) String() string {
	if p.Owner == "" {
		return p.Key + ": " + p.Reason
	}
	return p.Owner + ": " + p.Key + ": " + p.Reason
}

// Merge returns a new config: the file's, plus the routes, services and
// certificates of d. It never modifies file or d's maps. A part of d whose
// name the file uses already is left out and reported (a clash is never
// resolved by guessing), and so is a part that is invalid on its own; a
// route whose service was left out is left out with it. The result is
// validated whole: an error means it must not be applied (the running
// config stays), which only happens when the file itself is invalid.
func Merge(file *Config, d *Dynamic) (*Config, []Problem, error) {
	out := *file
	out.tree, out.hasSum = nil, false
	if d == nil {
		return &out, nil, nil
	}
	var problems []Problem
	report := func(key, format string, args ...any) {
		problems = append(problems, Problem{Key: key, Owner: d.Owners[key], Reason: fmt.Sprintf(format, args...)})
	}

	// Defaults for the dynamic parts alone: the file's objects were
	// defaulted when it was loaded and may be read concurrently.
	tmp := &Config{EntryPoints: file.EntryPoints, Routes: map[string]*Route{}, Services: map[string]*Service{}}
	out.Routes = maps.Clone(file.Routes)
	if out.Routes == nil {
		out.Routes = map[string]*Route{}
	}
	out.Services = maps.Clone(file.Services)
	if out.Services == nil {
		out.Services = map[string]*Service{}
	}
	for _, name := range sortedKeys(d.Services) {
		if _, ok := file.Services[name]; ok {
			report("services."+name, "the file has a service of this name; rename one of them")
			continue
		}
		if d.Services[name] != nil {
			tmp.Services[name] = d.Services[name]
		}
	}
	for _, name := range sortedKeys(d.Routes) {
		if _, ok := file.Routes[name]; ok {
			report("routes."+name, "the file has a route of this name; rename one of them")
			continue
		}
		if d.Routes[name] != nil {
			tmp.Routes[name] = d.Routes[name]
		}
	}
	tmp.applyDefaults()
	maps.Copy(out.Services, tmp.Services)
	maps.Copy(out.Routes, tmp.Routes)
	for _, name := range sortedKeys(tmp.Services) {
		if err := out.validateService(name, tmp.Services[name]); err != nil {
			report("services."+name, "%s", reasonOf(err))
			delete(out.Services, name)
		}
	}
	for _, name := range sortedKeys(tmp.Routes) {
		if err := out.validateRoute(name, tmp.Routes[name]); err != nil {
			report("routes."+name, "%s", reasonOf(err))
			delete(out.Routes, name)
		}
	}

	certs := file.Certificates
	certs.Files = slices.Clone(file.Certificates.Files)
	for _, f := range d.Certificates {
		key := "certificates." + f.Name()
		if _, err := f.Load(); err != nil {
			report(key, "the certificate and key must be PEM and belong together: %v", err)
			continue
		}
		certs.Files = append(certs.Files, f)
	}
	certs.Domains = slices.Clone(file.Certificates.Domains)
	for _, ds := range d.Domains {
		ds.Main = normName(ds.Main)
		for i := range ds.SANs {
			ds.SANs[i] = normName(ds.SANs[i])
		}
		key := "domains." + ds.Main
		if reason := out.domainProblem(ds); reason != "" {
			report(key, "%s", reason)
			continue
		}
		certs.Domains = append(certs.Domains, ds)
	}
	out.Certificates = certs
	if err := out.Validate(); err != nil {
		return nil, problems, err
	}
	return &out, problems, nil
}

// reasonOf is the reason of a validation error, without file and line.
func reasonOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return err.Error()
}

// domainProblem says why the engine cannot obtain ds, or "".
func (c *Config) domainProblem(ds DomainSet) string {
	a := c.Certificates.ACME
	if a.Server == "" {
		return "no certificate can be obtained: certificates.acme.server is not set (give the hosts a TLS Secret, or configure ACME)"
	}
	ch := a.Challenges
	if ch.HTTP == nil && ch.TLSALPN == nil && ch.DNS == nil {
		return "no certificate can be obtained: certificates.acme.challenges configures no challenge"
	}
	for _, name := range append([]string{ds.Main}, ds.SANs...) {
		if net.ParseIP(name) != nil {
			continue
		}
		if !validHostname(name, true) || !strings.Contains(strings.TrimPrefix(name, "*."), ".") {
			return fmt.Sprintf("%q is not a domain name a CA certifies", name)
		}
		if strings.HasPrefix(name, "*.") && ch.DNS == nil {
			return fmt.Sprintf("%q is a wildcard, which only DNS-01 can validate; add certificates.acme.challenges.dns, or give it a TLS Secret", name)
		}
	}
	if ds.Issuer != "" && ds.Issuer != a.Server && !slices.ContainsFunc(c.Certificates.Issuers, func(is Issuer) bool { return is.Server == ds.Issuer }) {
		return fmt.Sprintf("issuer %q is neither certificates.acme.server nor one of certificates.issuers", ds.Issuer)
	}
	return ""
}
