package dns01

import (
	"github.com/go-acme/lego/v5/providers/dns/dnsupdate"
	"github.com/go-acme/lego/v5/providers/dns/exec"
	"github.com/go-acme/lego/v5/providers/dns/httpreq"
	"github.com/go-acme/lego/v5/providers/dns/iijdpf"
)

// The built-in providers are linked into every build that uses this
// package, tests included: they need no cloud SDK. Every other provider is
// registered by package catalogue, which only cmd/zoku imports.
func init() {
	Register("dnsupdate", Adapt(dnsupdate.NewDNSProvider))
	Register("exec", Adapt(exec.NewDNSProvider))
	Register("httpreq", Adapt(httpreq.NewDNSProvider))
	Register("iijdpf", Adapt(iijdpf.NewDNSProvider))
}

// notes are zoku's own remarks on providers, shown by PrintProviders.
var notes = map[string]string{
	"dnsupdate": "leave the TSIG variables unset to send unsigned updates; the RFC2136_ names of lego v4 are still read; " +
		"names are solved one at a time, " + dnsupdate.EnvSequenceInterval + " apart (default 60 s)",
	"exec": "runs the program as 'present|cleanup <fqdn> <value>', or with " + exec.EnvMode +
		"=RAW as 'present|cleanup -- <domain> <token> <key authorization>'; names are solved one at a time, " +
		exec.EnvSequenceInterval + " apart (default 60 s)",
	"httpreq": "POSTs {fqdn, value} to <endpoint>/present and /cleanup, or with " + httpreq.EnvMode +
		"=RAW {domain, token, keyAuth}; " + httpreq.EnvMode + " is optional",
	"cloudflare": "one way to authenticate is enough: CLOUDFLARE_DNS_API_TOKEN, or CLOUDFLARE_EMAIL with CLOUDFLARE_API_KEY; " +
		"the CF_ names are lego v4's",
	"route53": "credentials are read by the AWS SDK, so a shared credentials file, a profile or an instance role " +
		"also work, and missing ones are only noticed at the first request; the SDK does not read _FILE variants",
	"gcloud": "a service account key, or Application Default Credentials with GCE_PROJECT (detected through the " +
		"metadata server when unset)",
	"ovh": "one way to authenticate is enough: an application key (OVH_APPLICATION_KEY, _SECRET, OVH_CONSUMER_KEY), " +
		"OAuth2 (OVH_CLIENT_ID, OVH_CLIENT_SECRET) or OVH_ACCESS_TOKEN",
	"manual": "prompts on the terminal; not usable by 'zoku run'",
}

// retired lists codes that lego v4 knew and v5 dropped, with what replaces them.
var retired = map[string]retiredEntry{
	"iij": {
		reason:      "IIJ DNS outsourcing service ended in May 2023 and lego v5 replaced it with \"iijdpf\" (IIJ DNS Platform Service)",
		replacement: "iijdpf",
		optional:    []string{iijdpf.EnvAPIEndpoint},
	},
}

// retiredEntry explains a provider code that no longer exists.
type retiredEntry struct {
	reason      string
	replacement string   // code of the provider to use instead
	optional    []string // optional variables of the replacement worth naming
}
