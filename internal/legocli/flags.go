package legocli

import (
	"strings"

	"github.com/go-acme/lego/v5/certcrypto"
)

// This file lists lego v5's flags, command by command, with lego's names,
// short aliases, LEGO_* variables and defaults (the usage lines are
// zoku's). The parity test reads lego's own definitions and fails when a
// flag, alias or variable of lego is missing here.

// flag defines a flag whose variable follows lego's rule.
func flag(name string, k kind, def, usage string, aliases ...string) *flagDef {
	return &flagDef{name: name, aliases: aliases, kind: k, env: envName(name), def: def, usage: usage}
}

// noEnv drops the variable of d (lego has none for it).
func noEnv(d *flagDef) *flagDef { d.env = ""; return d }

// local makes d apply to its own command only.
func local(d *flagDef) *flagDef { d.local = true; return d }

// noted attaches how zoku differs from lego for d.
func noted(d *flagDef, note string) *flagDef { d.note = note; return d }

func concat(groups ...[]*flagDef) []*flagDef {
	var out []*flagDef
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

// renewOnlyFlag makes `run` renew a stored certificate only, never obtain
// one: lego v4's `renew`, translated.
const renewOnlyFlag = "zoku-v4-renew"

const keyTypes = "EC256, EC384, RSA2048, RSA3072, RSA4096, RSA8192"

func configFlag() *flagDef {
	return local(flag("config", kString, "", "lego's configuration file (not supported by zoku; see docs/lego.md)"))
}

func rootFlags() []*flagDef {
	return []*flagDef{
		configFlag(),
		flag("log.level", kString, "info", "log level: debug, info, warn or error"),
		flag("log.format", kString, "colored", "log format: colored (plain lines here), text or json"),
	}
}

func pathFlag() *flagDef {
	return flag("path", kString, "", "folder of accounts and certificates (default: ./.lego)")
}

func keyTypeFlag(what string) *flagDef {
	return flag("key-type", kString, string(certcrypto.EC256), what+": "+keyTypes, "k")
}

func acmeClientFlags() []*flagDef {
	return []*flagDef{
		flag("server", kString, "https://acme-v02.api.letsencrypt.org/directory", "CA directory URL or lego CA code (letsencrypt, letsencrypt-staging, zerossl, ...)", "s"),
		noted(flag("enable-cn", kBool, "", "put the first domain in the certificate's common name"),
			"zoku leaves the common name out, as lego does by default"),
		flag("http-timeout", kInt, "", "time limit of each request to the CA, in seconds"),
		flag("tls-skip-verify", kBool, "", "do not verify the CA's TLS certificate (tests only)"),
		flag("cert.timeout", kInt, "30", "how long to wait for the CA to issue after finalize, in seconds"),
		flag("overall-request-limit", kInt, "18", "requests per second to the CA at most"),
		flag("user-agent", kString, "", "text added to the user agent sent to the CA"),
	}
}

func accountFlags() []*flagDef {
	return []*flagDef{
		flag("email", kString, "", "account contact email", "m"),
		flag("account-id", kString, "", "account folder name (default: the email)"),
		flag("eab", kBool, "", "register with external account binding (needs --eab.kid and --eab.hmac)"),
		flag("eab.kid", kString, "", "EAB key identifier"),
		flag("eab.hmac", kString, "", "EAB MAC key, base64url; prefer LEGO_EAB_HMAC: argv is visible to every user"),
	}
}

func challengeFlags() []*flagDef {
	return []*flagDef{
		flag("env-file", kString, "", "dotenv file read into the environment first (DNS provider credentials)"),

		flag("http", kBool, "", "solve HTTP-01"),
		flag("http.address", kString, ":80", "address the HTTP-01 server listens on (interface:port or :port)"),
		flag("http.delay", kDuration, "0s", "wait this long after the HTTP-01 server starts before validation"),
		noted(flag("http.proxy-header", kString, "Host", "header that carries the host behind a reverse proxy"),
			"zoku answers a token whatever the host, so the header is not needed"),
		flag("http.webroot", kString, "", "write HTTP-01 answers under this folder's .well-known/acme-challenge/ instead of listening"),
		flag("http.memcached-host", kList, "", "write HTTP-01 answers to these memcached hosts"),
		flag("http.s3-bucket", kString, "", "write HTTP-01 answers to this S3 bucket"),

		flag("tls", kBool, "", "solve TLS-ALPN-01"),
		flag("tls.address", kString, ":443", "address the TLS-ALPN-01 server listens on (interface:port or :port)"),
		flag("tls.delay", kDuration, "0s", "wait this long after the TLS-ALPN-01 server starts before validation"),

		flag("dns", kString, "", "solve DNS-01 with this lego DNS provider ('lego dnshelp' lists them)"),
		flag("dns.resolvers", kList, "", "resolvers (host:port) for CNAME lookups and the propagation check; repeatable"),
		flag("dns.timeout", kInt, "10", "time limit of each DNS query, in seconds"),
		flag("dns.propagation.disable-ans", kBool, "", "do not wait for the zone's authoritative servers to see the record"),
		noted(flag("dns.propagation.disable-rns", kBool, "", "do not wait for the resolvers to see the record"),
			"zoku still asks the resolvers once the authoritative servers have the record, unless both checks are disabled"),
		flag("dns.propagation.wait", kDuration, "", "wait this long instead of checking propagation"),

		flag("dns-persist", kBool, "", "solve DNS-PERSIST-01 (a TXT record published once)"),
		flag("dns-persist.issuer-domain-name", kString, "", "issuer domain name of the DNS-PERSIST-01 record"),
		noted(flag("dns-persist.persist-until", kTime, "", "persistUntil of the DNS-PERSIST-01 record (RFC 3339)"),
			"zoku's DNS-PERSIST-01 records carry no persistUntil"),
		flag("dns-persist.resolvers", kList, "", "resolvers (host:port) for DNS-PERSIST-01 lookups"),
		noted(flag("dns-persist.timeout", kInt, "", "time limit of each DNS-PERSIST-01 query, in seconds"),
			"zoku uses --dns.timeout for these queries"),
		noted(flag("dns-persist.propagation.disable-ans", kBool, "", "DNS-PERSIST-01: skip the authoritative check"),
			"zoku uses --dns.propagation.disable-ans for DNS-PERSIST-01 too"),
		noted(flag("dns-persist.propagation.disable-rns", kBool, "", "DNS-PERSIST-01: skip the resolver check"),
			"zoku checks the record through the resolvers before ordering"),
		noted(flag("dns-persist.propagation.wait", kDuration, "", "DNS-PERSIST-01: wait this long instead of checking"),
			"zoku looks the record up before ordering instead of waiting"),

		flag("ipv4only", kBool, "", "listen and resolve on IPv4 only", "4"),
		flag("ipv6only", kBool, "", "listen and resolve on IPv6 only", "6"),
	}
}

func storageFlags() []*flagDef {
	return []*flagDef{
		pathFlag(),
		flag("pem", kBool, "", "also write <name>.pem: certificate then key"),
		flag("pfx", kBool, "", "also write <name>.pfx: key, certificate and issuers in PKCS#12"),
		flag("pfx.password", kString, "changeit", "password of the .pfx; prefer LEGO_PFX_PASSWORD: argv is visible to every user"),
		flag("pfx.format", kString, certcrypto.PKCS12LegacyRC2, "encryption of the .pfx: "+strings.Join(certcrypto.AllPKCS12Formats(), ", ")),
	}
}

func obtainFlags() []*flagDef {
	return []*flagDef{
		flag("csr", kString, "", "order for this CSR file (PEM or DER) instead of --domains"),
		noted(flag("no-bundle", kBool, "", "write the leaf alone in <name>.crt"),
			"zoku always writes the leaf then its issuers in <name>.crt (the leaf is its first block; <name>.issuer.crt has the rest)"),
		flag("must-staple", kBool, "", "ask for the OCSP must-staple extension"),
		flag("not-before", kTime, "", "ask for this notBefore (RFC 3339)"),
		flag("not-after", kTime, "", "ask for this notAfter (RFC 3339)"),
		flag("preferred-chain", kString, "", "prefer the chain whose root has this common name"),
		flag("profile", kString, "", "ACME profile the CA offers (classic, tlsserver, shortlived, ...)"),
		noted(flag("always-deactivate-authorizations", kBool, "", "give up the authorizations even after a success"),
			"zoku leaves valid authorizations to expire at the CA"),
	}
}

func hookFlags() []*flagDef {
	return []*flagDef{
		flag("pre-hook", kString, "", "command run before a certificate is obtained or renewed"),
		flag("pre-hook-timeout", kDuration, "2m0s", "time limit of the pre-hook"),
		flag("deploy-hook", kString, "", "command run after a certificate was obtained or renewed"),
		flag("deploy-hook-timeout", kDuration, "2m0s", "time limit of the deploy hook"),
		flag("post-hook", kString, "", "command run after an attempt to obtain or renew, failed or not"),
		flag("post-hook-timeout", kDuration, "2m0s", "time limit of the post-hook"),
	}
}

func renewFlags() []*flagDef {
	return []*flagDef{
		flag("renew-days", kInt, "", "renew when fewer than this many days are left (default: one third of the lifetime, one half under 10 days)"),
		flag("renew-force", kBool, "", "renew now, whatever the dates"),
		flag("ari-disable", kBool, "", "do not ask the CA's renewal information (ARI, RFC 9773)"),
		flag("ari-wait-to-renew-duration", kDuration, "", "wait up to this long for a renewal time ARI gives"),
		flag("reuse-key", kBool, "", "keep the certificate's private key"),
		flag("no-random-sleep", kBool, "", "renew at once instead of after a random pause of up to 8 minutes (the pause is skipped on a terminal)"),
		flag("force-cert-domains", kBool, "", "order exactly --domains, dropping names the current certificate has"),
	}
}

func runFlags() []*flagDef {
	return concat(
		[]*flagDef{
			flag("domains", kList, "", "a name for the certificate; repeatable or comma-separated", "d"),
			flag("cert.name", kString, "", "name the certificate is stored under (default: the first domain)", "c"),
			flag("accept-tos", kBool, "", "accept the CA's terms of service", "a"),
			keyTypeFlag("key type of new keys"),
		},
		accountFlags(), acmeClientFlags(), storageFlags(), challengeFlags(), obtainFlags(),
		hookFlags(), renewFlags(),
		[]*flagDef{
			flag("private-key", kString, "", "PEM private key for the certificate (default: a new key)"),
			{name: renewOnlyFlag, kind: kBool, hidden: true, usage: "renew a stored certificate only (lego v4's renew)"},
		},
	)
}

func revokeFlags() []*flagDef {
	return concat(
		[]*flagDef{
			configFlag(),
			pathFlag(),
			flag("cert.name", kList, "", "names of the certificates to revoke; repeatable or comma-separated", "c"),
			keyTypeFlag("key type of the account key"),
			flag("keep", kBool, "", "keep the files instead of archiving them"),
			flag("reason", kUint, "0", "RFC 5280 reason code (0 unspecified, 1 keyCompromise, 3 affiliationChanged, 4 superseded, 5 cessationOfOperation, ...)"),
		},
		accountFlags(), acmeClientFlags(),
	)
}

func registerFlags() []*flagDef {
	return concat(
		[]*flagDef{pathFlag(), flag("accept-tos", kBool, "", "accept the CA's terms of service", "a"), keyTypeFlag("key type of the account key")},
		acmeClientFlags(), accountFlags(),
	)
}

func recoverFlags() []*flagDef {
	return concat(
		[]*flagDef{pathFlag(), keyTypeFlag("key type of the account key"),
			flag("private-key", kString, "", "the account's PEM private key (required)")},
		acmeClientFlags(), accountFlags(),
	)
}

func keyRolloverFlags() []*flagDef {
	return concat(
		[]*flagDef{pathFlag(), flag("private-key", kString, "", "the new PEM account key (default: a new key of --key-type)"),
			keyTypeFlag("key type of the new account key")},
		acmeClientFlags(), accountFlags(),
	)
}

func listFlags() []*flagDef {
	return []*flagDef{configFlag(), pathFlag(), noEnv(flag("json", kBool, "", "print JSON"))}
}

func archivesFlags() []*flagDef { return []*flagDef{configFlag(), pathFlag()} }

func migrateFlags() []*flagDef {
	return []*flagDef{pathFlag(), flag("account-only", kBool, "", "migrate the accounts only")}
}

func dnshelpFlags() []*flagDef {
	return []*flagDef{noEnv(flag("code", kString, "", "the provider's code", "c"))}
}
