package dns01

import (
	"github.com/go-acme/lego/v5/challenge"
	"github.com/go-acme/lego/v5/providers/dns/cloudflare"
	"github.com/go-acme/lego/v5/providers/dns/digitalocean"
	"github.com/go-acme/lego/v5/providers/dns/dnsupdate"
	"github.com/go-acme/lego/v5/providers/dns/exec"
	"github.com/go-acme/lego/v5/providers/dns/gcloud"
	"github.com/go-acme/lego/v5/providers/dns/httpreq"
	"github.com/go-acme/lego/v5/providers/dns/iijdpf"
	"github.com/go-acme/lego/v5/providers/dns/ovh"
	"github.com/go-acme/lego/v5/providers/dns/route53"
)

// entry is one provider of the catalogue: what users see, and how to build it.
type entry struct {
	info Info
	// build reads the provider's environment variables and returns it.
	build func() (challenge.Provider, error)
}

// catalogue lists the providers this build of zoku ships. To add one, import
// its lego package and append an entry; every variable name must be one of
// the package's exported Env constants so it cannot drift from lego.
// lego's registry package (providers/dns) is deliberately not used: it links
// every provider lego has.
var catalogue = []entry{
	{
		info: Info{
			Code: "cloudflare", Name: "Cloudflare",
			Required: []string{cloudflare.EnvDNSAPIToken},
			Optional: []string{
				cloudflare.EnvZoneAPIToken, cloudflare.EnvEmail, cloudflare.EnvAPIKey, cloudflare.EnvBaseURL,
				cloudflare.EnvTTL, cloudflare.EnvPropagationTimeout, cloudflare.EnvPollingInterval, cloudflare.EnvHTTPTimeout,
			},
			Note: "instead of " + cloudflare.EnvDNSAPIToken + ", " + cloudflare.EnvEmail + " and " + cloudflare.EnvAPIKey +
				" (global API key) also work; the CF_ names of lego v4 are still read",
		},
		build: provider(cloudflare.NewDNSProvider),
	},
	{
		info: Info{
			Code: "digitalocean", Name: "Digital Ocean",
			Required: []string{digitalocean.EnvAuthToken},
			Optional: []string{
				digitalocean.EnvAPIUrl, digitalocean.EnvTTL, digitalocean.EnvPropagationTimeout,
				digitalocean.EnvPollingInterval, digitalocean.EnvHTTPTimeout,
			},
		},
		build: provider(digitalocean.NewDNSProvider),
	},
	{
		info: Info{
			Code: "dnsupdate", Name: "DNS Update (RFC 2136)", Aliases: []string{"rfc2136"},
			Required: []string{dnsupdate.EnvNameserver},
			Optional: []string{
				dnsupdate.EnvTSIGKey, dnsupdate.EnvTSIGSecret, dnsupdate.EnvTSIGAlgorithm, dnsupdate.EnvTSIGFile,
				dnsupdate.EnvTSIGGSSRealm, dnsupdate.EnvTSIGGSSUsername, dnsupdate.EnvTSIGGSSPassword, dnsupdate.EnvTSIGGSSKeytabFile,
				dnsupdate.EnvZones, dnsupdate.EnvDNSTimeout, dnsupdate.EnvTTL,
				dnsupdate.EnvPropagationTimeout, dnsupdate.EnvPollingInterval, dnsupdate.EnvSequenceInterval,
			},
			Note: "leave the TSIG variables unset to send unsigned updates; the RFC2136_ names of lego v4 are still read; " +
				"names are solved one at a time, " + dnsupdate.EnvSequenceInterval + " apart (default 60 s)",
		},
		build: provider(dnsupdate.NewDNSProvider),
	},
	{
		info: Info{
			Code: "exec", Name: "External program",
			Required: []string{exec.EnvPath},
			Optional: []string{exec.EnvMode, exec.EnvPropagationTimeout, exec.EnvPollingInterval, exec.EnvSequenceInterval},
			Note: "runs the program as 'present|cleanup <fqdn> <value>', or with " + exec.EnvMode +
				"=RAW as 'present|cleanup -- <domain> <token> <key authorization>'; names are solved one at a time, " +
				exec.EnvSequenceInterval + " apart (default 60 s)",
		},
		build: provider(exec.NewDNSProvider),
	},
	{
		info: Info{
			Code: "gcloud", Name: "Google Cloud",
			Required: []string{gcloud.EnvServiceAccount},
			Optional: []string{
				gcloud.EnvProject, gcloud.EnvZoneID, gcloud.EnvAllowPrivateZone, gcloud.EnvImpersonateServiceAccount,
				gcloud.EnvAccessToken, gcloud.EnvTTL, gcloud.EnvPropagationTimeout, gcloud.EnvPollingInterval,
			},
			Note: "instead of a service account key, Application Default Credentials work with " + gcloud.EnvProject +
				" (detected through the metadata server when unset)",
		},
		build: provider(gcloud.NewDNSProvider),
	},
	{
		info: Info{
			Code: "httpreq", Name: "HTTP request",
			Required: []string{httpreq.EnvEndpoint},
			Optional: []string{
				httpreq.EnvMode, httpreq.EnvUsername, httpreq.EnvPassword,
				httpreq.EnvPropagationTimeout, httpreq.EnvPollingInterval, httpreq.EnvHTTPTimeout,
			},
		},
		build: provider(httpreq.NewDNSProvider),
	},
	{
		info: Info{
			Code: "iijdpf", Name: "IIJ DNS Platform Service",
			Required: []string{iijdpf.EnvAPIToken, iijdpf.EnvServiceCode},
			Optional: []string{iijdpf.EnvAPIEndpoint, iijdpf.EnvTTL, iijdpf.EnvPropagationTimeout, iijdpf.EnvPollingInterval},
		},
		build: provider(iijdpf.NewDNSProvider),
	},
	{
		info: Info{
			Code: "ovh", Name: "OVH",
			Required: []string{ovh.EnvApplicationKey, ovh.EnvApplicationSecret, ovh.EnvConsumerKey},
			Optional: []string{
				ovh.EnvEndpoint, ovh.EnvClientID, ovh.EnvClientSecret, ovh.EnvAccessToken,
				ovh.EnvTTL, ovh.EnvPropagationTimeout, ovh.EnvPollingInterval, ovh.EnvHTTPTimeout,
			},
			Note: "instead of an application key, " + ovh.EnvClientID + " and " + ovh.EnvClientSecret +
				" (OAuth2) or " + ovh.EnvAccessToken + " work; use only one way",
		},
		build: provider(ovh.NewDNSProvider),
	},
	{
		info: Info{
			Code: "route53", Name: "Amazon Route 53",
			Required: []string{route53.EnvAccessKeyID, route53.EnvSecretAccessKey, route53.EnvRegion},
			Optional: []string{
				route53.EnvHostedZoneID, route53.EnvAssumeRoleArn, route53.EnvExternalID, route53.EnvPrivateZone,
				route53.EnvMaxRetries, route53.EnvWaitForRecordSetsChanged,
				route53.EnvTTL, route53.EnvPropagationTimeout, route53.EnvPollingInterval,
			},
			Note: "credentials are read by the AWS SDK, so a shared credentials file, a profile or an instance role " +
				"also work, and missing ones are only noticed at the first request; the SDK does not read _FILE variants",
		},
		build: provider(route53.NewDNSProvider),
	},
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

// provider adapts a lego constructor to challenge.Provider. lego returns a
// typed nil pointer with its error; returning it as an interface would make
// a non-nil challenge.Provider, so the error decides and the value is dropped.
func provider[P challenge.Provider](newProvider func() (P, error)) func() (challenge.Provider, error) {
	return func() (challenge.Provider, error) {
		p, err := newProvider()
		if err != nil {
			return nil, err
		}
		return p, nil
	}
}
