package legocli

import (
	"strings"
)

// lego v4's command line put the options first and the command last,
// with a few options of the command after it:
//
//	lego --dns iij --domains '*.example.com' --email you@example.com run --run-hook ./h.sh
//	lego ... renew --days 30 --renew-hook ./h.sh
//
// fromV4 translates such a line into lego v5's, word for word, and the v5
// command does the work: v4's `run` becomes v5's `run` (which renews only
// when due instead of ordering again at every call), `renew` becomes `run`
// on a stored certificate with --renew-days from --days (30 unless
// --dynamic), `revoke` becomes `certificates revoke` and `list` becomes
// `certificates list` or `accounts list`.

// v4Flag is a flag of lego v4 and the v5 flag it became ("" when v5
// dropped it because its behaviour became the default).
type v4Flag struct {
	def *flagDef
	to  string
}

func v4f(name string, k kind, to string, aliases ...string) v4Flag {
	return v4Flag{def: &flagDef{name: name, aliases: aliases, kind: k}, to: to}
}

func v4Global() []v4Flag {
	same := func(name string, k kind, aliases ...string) v4Flag { return v4f(name, k, name, aliases...) }
	return []v4Flag{
		same("domains", kList, "d"), same("server", kString, "s"), same("accept-tos", kBool, "a"),
		same("email", kString, "m"), same("csr", kString, "c"), same("eab", kBool),
		v4f("kid", kString, "eab.kid"), v4f("hmac", kString, "eab.hmac"),
		same("key-type", kString, "k"), v4f("filename", kString, "cert.name"), same("path", kString),
		same("http", kBool), v4f("http.port", kString, "http.address"), same("http.proxy-header", kString),
		same("http.webroot", kString), same("http.memcached-host", kList), same("http.s3-bucket", kString),
		same("tls", kBool), v4f("tls.port", kString, "tls.address"), same("tls.delay", kDuration),
		same("dns", kString), v4f("dns.disable-cp", kBool, "dns.propagation.disable-ans"),
		v4f("dns.propagation-disable-ans", kBool, "dns.propagation.disable-ans"),
		v4f("dns.propagation-rns", kBool, ""), v4f("dns.propagation-wait", kDuration, "dns.propagation.wait"),
		same("dns.resolvers", kList), same("http-timeout", kInt), v4f("dns-timeout", kInt, "dns.timeout"),
		same("pem", kBool), same("pfx", kBool), v4f("pfx.pass", kString, "pfx.password"), same("pfx.format", kString),
		same("cert.timeout", kInt), same("overall-request-limit", kInt), same("user-agent", kString),
		v4f("disable-cn", kBool, ""), same("ipv4only", kBool, "4"), same("ipv6only", kBool, "6"),
	}
}

func v4Obtain() []v4Flag {
	same := func(name string, k kind) v4Flag { return v4f(name, k, name) }
	return []v4Flag{
		same("no-bundle", kBool), same("must-staple", kBool), same("not-before", kTime), same("not-after", kTime),
		same("preferred-chain", kString), same("profile", kString), same("always-deactivate-authorizations", kBool),
	}
}

func v4Verbs() map[string][]v4Flag {
	same := func(name string, k kind) v4Flag { return v4f(name, k, name) }
	return map[string][]v4Flag{
		"run": append(v4Obtain(), same("private-key", kString),
			v4f("run-hook", kString, "deploy-hook"), v4f("run-hook-timeout", kDuration, "deploy-hook-timeout")),
		"renew": append(v4Obtain(), v4f("days", kInt, "renew-days"), v4f("dynamic", kBool, ""),
			same("ari-disable", kBool), v4f("ari-enable", kBool, ""), same("ari-wait-to-renew-duration", kDuration),
			same("reuse-key", kBool), same("no-random-sleep", kBool), same("force-cert-domains", kBool),
			v4f("renew-hook", kString, "deploy-hook"), v4f("renew-hook-timeout", kDuration, "deploy-hook-timeout")),
		"revoke": {v4f("keep", kBool, "keep", "k"), same("reason", kUint)},
		"list":   {v4f("accounts", kBool, "", "a"), v4f("names", kBool, "", "n")},
	}
}

// v5Root are the words lego v5 accepts before its command.
var v5Root = map[string]bool{"config": true, "log.level": true, "log.format": true}

// isV4 reports whether args are in lego v4's shape: options of v4 before
// the command, or a command only v4 has.
func isV4(args []string) bool {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			return a == "renew" || a == "revoke" || a == "list"
		}
		name := strings.TrimLeft(a, "-")
		name, _, hasVal := strings.Cut(name, "=")
		switch {
		case name == "h" || name == "help" || name == "v" || name == "version":
			return false
		case v5Root[name]:
			if !hasVal {
				i++
			}
		default:
			return true
		}
	}
	return false
}

// fromV4 turns a lego v4 command line into lego v5's.
func fromV4(args []string) ([]string, error) {
	glob := v4Global()
	vals := newValues(defsOf(glob), nil)
	rest, err := vals.parseFlags(args, "lego")
	if err != nil {
		return nil, err
	}
	if len(rest) == 0 {
		return nil, usagef("lego: a command is missing after the options: run, renew, revoke or list")
	}
	verb := rest[0]
	vflags, ok := v4Verbs()[verb]
	if !ok {
		return nil, usagef("lego: unknown command %q after lego v4's options; use run, renew, revoke or list (lego v5's commands come first: 'lego run --domains ...')", verb)
	}
	vv := newValues(defsOf(vflags), nil)
	tail, err := vv.parseFlags(rest[1:], "lego "+verb)
	if err != nil {
		return nil, err
	}
	if len(tail) > 0 {
		return nil, usagef("lego %s: unexpected argument %q", verb, tail[0])
	}
	out := []string{}
	switch verb {
	case "run":
		out = append(out, "run")
	case "renew":
		out = append(out, "run", "--"+renewOnlyFlag)
		if _, set := vv.given["days"]; !set && !vv.Bool("dynamic") {
			vv.given["days"] = []string{"30"} // v4's default
		}
		if vv.Bool("dynamic") {
			delete(vv.given, "days")
		}
	case "revoke":
		out = append(out, "certificates", "revoke")
		// v4 revoked the certificate of the first --domains.
		if d := vals.List("domains"); len(d) > 0 {
			out = append(out, "--cert.name="+d[0])
		}
		delete(vals.given, "domains")
	case "list":
		if vv.Bool("accounts") {
			return []string{"accounts", "list", "--path=" + vals.String("path")}, nil
		}
		return []string{"certificates", "list", "--path=" + vals.String("path")}, nil
	}
	for _, group := range []struct {
		flags []v4Flag
		v     *values
	}{{glob, vals}, {vflags, vv}} {
		for _, f := range group.flags {
			if f.to == "" {
				continue
			}
			if verb == "revoke" && !revokeKeeps[f.to] && group.v == vals {
				continue
			}
			for _, val := range group.v.given[f.def.name] {
				out = append(out, "--"+f.to+"="+val)
			}
		}
	}
	return out, nil
}

// revokeKeeps are the v4 global options v5's revoke still takes.
var revokeKeeps = map[string]bool{
	"server": true, "email": true, "path": true, "key-type": true, "eab": true, "eab.kid": true, "eab.hmac": true,
	"http-timeout": true, "cert.timeout": true, "overall-request-limit": true, "user-agent": true,
}

func defsOf(fs []v4Flag) []*flagDef {
	out := make([]*flagDef, len(fs))
	for i, f := range fs {
		out[i] = f.def
	}
	return out
}
