package config

import (
	"crypto/tls"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"

	"github.com/goccy/go-yaml"
)

// tlsVersions are the accepted minVersion/maxVersion values.
var tlsVersions = map[string]uint16{
	"1.0": tls.VersionTLS10,
	"1.1": tls.VersionTLS11,
	"1.2": tls.VersionTLS12,
	"1.3": tls.VersionTLS13,
}

// curves are the accepted curvePreferences names.
var curves = map[string]tls.CurveID{
	"X25519MLKEM768":     tls.X25519MLKEM768,
	"SecP256r1MLKEM768":  tls.SecP256r1MLKEM768,
	"SecP384r1MLKEM1024": tls.SecP384r1MLKEM1024,
	"X25519":             tls.X25519,
	"P256":               tls.CurveP256,
	"P384":               tls.CurveP384,
	"P521":               tls.CurveP521,
}

// tlsErr names the key of a TLS problem so Validate can point at its line.
type tlsErr struct{ key, msg string }

func (e *tlsErr) Error() string { return e.msg }

// tlsBase turns TLS options into a *tls.Config without certificates.
func tlsBase(t *TLS) (*tls.Config, *tlsErr) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS13}
	if t.MinVersion != "" {
		v, ok := tlsVersions[t.MinVersion]
		if !ok {
			return nil, &tlsErr{"minVersion", fmt.Sprintf("minVersion %q is unknown; use \"1.2\" or \"1.3\"", clip(t.MinVersion))}
		}
		tc.MinVersion = v
	}
	if t.MaxVersion != "" {
		v, ok := tlsVersions[t.MaxVersion]
		if !ok {
			return nil, &tlsErr{"maxVersion", fmt.Sprintf("maxVersion %q is unknown; use \"1.2\" or \"1.3\"", clip(t.MaxVersion))}
		}
		tc.MaxVersion = v
	}
	if tc.MinVersion > tc.MaxVersion {
		return nil, &tlsErr{"minVersion", fmt.Sprintf("minVersion %q is above maxVersion %q; lower minVersion or raise maxVersion", t.MinVersion, t.MaxVersion)}
	}
	for i, name := range t.CipherSuites {
		id, err := cipherSuite(name)
		if err != nil {
			return nil, &tlsErr{fmt.Sprintf("cipherSuites[%d]", i), fmt.Sprintf("cipherSuites[%d]: %v", i, err)}
		}
		tc.CipherSuites = append(tc.CipherSuites, id)
	}
	for i, name := range t.CurvePreferences {
		id, ok := curves[name]
		if !ok {
			names := slices.Sorted(maps.Keys(curves))
			return nil, &tlsErr{fmt.Sprintf("curvePreferences[%d]", i), fmt.Sprintf("curvePreferences[%d] %q is unknown; use one of %s", i, clip(name), strings.Join(names, ", "))}
		}
		tc.CurvePreferences = append(tc.CurvePreferences, id)
	}
	for i, p := range t.ALPN {
		if p == "" {
			return nil, &tlsErr{fmt.Sprintf("alpn[%d]", i), fmt.Sprintf("alpn[%d] is empty; remove it", i)}
		}
	}
	tc.NextProtos = slices.Clone(t.ALPN)
	if len(tc.NextProtos) == 0 {
		tc.NextProtos = []string{"h2", "http/1.1"}
	}
	if slices.Contains(tc.NextProtos, "http/1.1") && !slices.Contains(tc.NextProtos, "http/1.0") {
		// A client that offers only http/1.0 (curl --http1.0) is served,
		// as nginx serves it, instead of refused with Go's
		// no_application_protocol alert; last, so no other client gets it.
		tc.NextProtos = append(tc.NextProtos, "http/1.0")
	}
	return tc, nil
}

func cipherSuite(name string) (uint16, error) {
	shown := clip(name)
	var names []string
	for _, cs := range tls.CipherSuites() {
		if cs.Name == name {
			return cs.ID, nil
		}
		names = append(names, cs.Name)
	}
	for _, cs := range tls.InsecureCipherSuites() {
		if cs.Name == name {
			return 0, fmt.Errorf("%q is insecure and not allowed; remove it (Go's default list is safe)", shown)
		}
	}
	if s := closest(name, names); s != "" {
		return 0, fmt.Errorf("%q is unknown (did you mean %q?)", shown, s)
	}
	return 0, fmt.Errorf("%q is unknown; use Go names from crypto/tls, e.g. TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", shown)
}

// TLSConfigBase turns ep's TLS options into a *tls.Config with MinVersion,
// MaxVersion, CipherSuites, CurvePreferences and NextProtos (ALPN) set and
// no certificates; the caller adds GetCertificate. It fails when ep has no
// tls section or the options are invalid (Validate reports the same).
func (c *Config) TLSConfigBase(ep *EntryPoint) (*tls.Config, error) {
	if ep == nil || ep.TLS == nil {
		return nil, fmt.Errorf("config: entry point has no tls section; add tls: {} to it")
	}
	tc, err := tlsBase(ep.TLS)
	if err != nil {
		return nil, fmt.Errorf("config: tls.%w", err)
	}
	return tc, nil
}

// Port returns the port of ep's address, or 0 when it has none (or asks
// the system to choose).
func (ep *EntryPoint) Port() int {
	n, err := splitAddress(ep.Address)
	if err != nil {
		return 0
	}
	return n
}

// RoutedHosts returns the hosts of all routes, and the server names of
// TCP routes on which zoku terminates TLS (it serves their certificates),
// sorted and without duplicates (wildcard hosts as written, e.g.
// "*.example.com").
func (c *Config) RoutedHosts() []string {
	var hosts []string
	for _, r := range c.Routes {
		if r != nil && r.Host != "" {
			hosts = append(hosts, r.Host)
		}
	}
	for _, r := range c.TCPRoutes {
		if r != nil && r.TLS == TLSTerminate && r.SNI != "" && r.SNI != "*" {
			hosts = append(hosts, r.SNI)
		}
	}
	slices.Sort(hosts)
	return slices.Compact(hosts)
}

// RedirectTarget returns where ep redirects to: the scheme (default
// https), the port of the target entry point and the status code (308
// when permanent, the default; 307 otherwise). It returns zero values when
// ep does not redirect or the target does not exist.
func (c *Config) RedirectTarget(ep *EntryPoint) (scheme string, port int, code int) {
	if ep == nil || ep.Redirect == nil {
		return "", 0, 0
	}
	target, ok := c.EntryPoints[ep.Redirect.EntryPoint]
	if !ok || target == nil {
		return "", 0, 0
	}
	scheme = ep.Redirect.Scheme
	if scheme == "" {
		scheme = "https"
	}
	code = http.StatusPermanentRedirect
	if p := ep.Redirect.Permanent; p != nil && !*p {
		code = http.StatusTemporaryRedirect
	}
	return scheme, target.Port(), code
}

// Redacted returns a deep copy of c in which every non-empty Secret is
// "REDACTED"; the admin API shows this copy.
func (c *Config) Redacted() *Config {
	return deepCopy(reflect.ValueOf(c)).Interface().(*Config)
}

// deepCopy copies v, replacing Secret values.
func deepCopy(v reflect.Value) reflect.Value {
	out := reflect.New(v.Type()).Elem()
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			out.Set(deepCopy(v.Elem()).Addr())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if out.Field(i).CanSet() {
				out.Field(i).Set(deepCopy(v.Field(i)))
			}
		}
	case reflect.Map:
		if !v.IsNil() {
			out.Set(reflect.MakeMapWithSize(v.Type(), v.Len()))
			for it := v.MapRange(); it.Next(); {
				out.SetMapIndex(it.Key(), deepCopy(it.Value()))
			}
		}
	case reflect.Interface:
		// A target's section (Target.Settings) is registered by its kind.
		if !v.IsNil() {
			out.Set(deepCopy(v.Elem()))
		}
	case reflect.Slice:
		if !v.IsNil() {
			out.Set(reflect.MakeSlice(v.Type(), v.Len(), v.Len()))
			for i := range v.Len() {
				out.Index(i).Set(deepCopy(v.Index(i)))
			}
		}
	default:
		out.Set(v)
		if v.Type() == secretType && v.String() != "" {
			out.SetString(redacted)
		}
	}
	return out
}

// YAML renders c as YAML with the same keys as the file (empty values left
// out). Secrets are written as they are: render c.Redacted() to show a
// config to anyone.
func (c *Config) YAML() ([]byte, error) {
	b, err := yaml.MarshalWithOptions(c, yaml.OmitEmpty(), yaml.Indent(2), yaml.IndentSequence(true))
	if err != nil {
		return nil, fmt.Errorf("config: render YAML: %w", err)
	}
	return b, nil
}
