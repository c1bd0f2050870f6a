package dns01

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// resolvConf is where the system's resolvers are read when none are given.
const resolvConf = "/etc/resolv.conf"

// checker polls DNS servers until a TXT record shows. lego's own check asks
// authoritative servers on port 53 only and gives up with a generic
// timeout; this one takes the port and names the server that lacked the
// record.
type checker struct {
	resolvers  []string
	port       string
	noAuth     bool
	requireAll bool
	timeout    time.Duration
	interval   time.Duration
	query      time.Duration
}

func newChecker(cfg Config) (*checker, error) {
	resolvers := cfg.Resolvers
	if len(resolvers) == 0 {
		conf, err := dns.ClientConfigFromFile(resolvConf)
		if err != nil || len(conf.Servers) == 0 {
			return nil, fmt.Errorf("dns-01: no resolvers given and none found in %s (%v); give the resolvers (host:port) to check propagation with", resolvConf, err)
		}
		for _, s := range conf.Servers {
			resolvers = append(resolvers, net.JoinHostPort(s, conf.Port))
		}
	}
	for _, r := range resolvers {
		if err := validResolver(r); err != nil {
			return nil, err
		}
	}
	port := 53
	if cfg.AuthoritativePort > 0 {
		port = cfg.AuthoritativePort
	}
	return &checker{
		resolvers:  resolvers,
		port:       strconv.Itoa(port),
		noAuth:     cfg.DisableAuthoritative,
		requireAll: cfg.RequireAllResolvers,
		timeout:    cfg.PropagationTimeout,
		interval:   cfg.PollInterval,
		query:      cfg.QueryTimeout,
	}, nil
}

// notVisible says where a record was missing, and why when a query failed.
type notVisible struct {
	server string
	err    error // nil when the server answered without the record
}

// wait checks fqdn until match accepts the TXT values every required server
// returns, the timeout passes, or ctx ends. The loop is bounded by the
// timeout and by a probe count.
func (c *checker) wait(ctx context.Context, fqdn string, match func([]string) bool) error {
	name := strings.TrimSuffix(fqdn, ".")
	deadline := time.Now().Add(c.timeout)
	maxProbes := int(c.timeout/c.interval) + 2
	var last *notVisible
	for range maxProbes {
		last = c.once(ctx, dns.Fqdn(fqdn), match)
		if last == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("dns-01: %s: propagation check stopped: %w", name, context.Cause(ctx))
		}
		if !time.Now().Add(c.interval).Before(deadline) {
			break
		}
		if err := sleep(ctx, c.interval); err != nil {
			return fmt.Errorf("dns-01: %s: propagation check stopped: %w", name, err)
		}
	}
	msg := fmt.Sprintf("dns-01: %s: TXT not visible at %s after %s", name, last.server, c.timeout)
	if last.err != nil {
		return fmt.Errorf("%s; last error: %w", msg, last.err)
	}
	return errors.New(msg)
}

// once checks the authoritative servers, then the resolvers; it returns
// nil when the record is visible where required.
func (c *checker) once(ctx context.Context, fqdn string, match func([]string) bool) *notVisible {
	if !c.noAuth {
		servers, err := c.authoritative(ctx, fqdn)
		if err != nil {
			return &notVisible{server: "the authoritative name servers of " + strings.TrimSuffix(fqdn, "."), err: err}
		}
		for _, srv := range servers {
			values, err := c.txt(ctx, srv, fqdn, false)
			if err != nil || !match(values) {
				return &notVisible{server: srv, err: err}
			}
		}
	}
	var missing []string
	var lastErr error
	for _, r := range c.resolvers {
		values, err := c.txt(ctx, r, fqdn, true)
		if err == nil && match(values) {
			if !c.requireAll {
				return nil
			}
			continue
		}
		if c.requireAll {
			return &notVisible{server: r, err: err}
		}
		missing = append(missing, r)
		if err != nil {
			lastErr = err
		}
	}
	if c.requireAll || len(missing) == 0 {
		return nil
	}
	server := missing[0]
	if len(missing) > 1 {
		server = "any of " + strings.Join(missing, ", ")
	}
	return &notVisible{server: server, err: lastErr}
}

// txt returns the TXT values at fqdn from server; NXDOMAIN and an empty
// answer are no values, not errors.
func (c *checker) txt(ctx context.Context, server, fqdn string, recursive bool) ([]string, error) {
	in, err := c.exchange(ctx, server, fqdn, dns.TypeTXT, recursive)
	if err != nil {
		return nil, err
	}
	if in.Rcode != dns.RcodeSuccess && in.Rcode != dns.RcodeNameError {
		return nil, fmt.Errorf("%s answered %s for %s TXT", server, dns.RcodeToString[in.Rcode], fqdn)
	}
	var values []string
	for _, rr := range in.Answer {
		if t, ok := rr.(*dns.TXT); ok && strings.EqualFold(t.Hdr.Name, fqdn) {
			values = append(values, strings.Join(t.Txt, ""))
		}
	}
	return values, nil
}

// authoritative returns host:port of every authoritative server of the
// zone holding fqdn, found through the resolvers: the zone from an SOA
// query, its NS names, their addresses.
func (c *checker) authoritative(ctx context.Context, fqdn string) ([]string, error) {
	zone, err := c.zoneOf(ctx, fqdn)
	if err != nil {
		return nil, err
	}
	in, err := c.ask(ctx, zone, dns.TypeNS)
	if err != nil {
		return nil, err
	}
	var servers []string
	for _, rr := range in.Answer {
		ns, ok := rr.(*dns.NS)
		if !ok {
			continue
		}
		addrs, err := c.addrs(ctx, ns.Ns, in)
		if err != nil {
			return nil, err
		}
		for _, a := range addrs {
			servers = append(servers, net.JoinHostPort(a, c.port))
		}
	}
	if len(servers) == 0 {
		return nil, fmt.Errorf("no name server addresses found for zone %s", zone)
	}
	return servers, nil
}

// zoneOf finds the zone apex of fqdn: the owner of the SOA record in the
// answer or authority section of an SOA query, walking up one label at a
// time when neither has one.
func (c *checker) zoneOf(ctx context.Context, fqdn string) (string, error) {
	name := dns.Fqdn(fqdn)
	for range dns.CountLabel(name) + 1 {
		in, err := c.ask(ctx, name, dns.TypeSOA)
		if err != nil {
			return "", err
		}
		for _, rr := range slices.Concat(in.Answer, in.Ns) {
			if soa, ok := rr.(*dns.SOA); ok {
				return soa.Hdr.Name, nil
			}
		}
		if name == "." {
			break
		}
		i, _ := dns.NextLabel(name, 0)
		name = name[i:]
		if name == "" {
			name = "."
		}
	}
	return "", fmt.Errorf("no SOA record found above %s", fqdn)
}

// addrs returns the IP addresses of name server host, from the glue of
// reply when present, else through the resolvers.
func (c *checker) addrs(ctx context.Context, host string, reply *dns.Msg) ([]string, error) {
	var out []string
	collect := func(rrs []dns.RR) {
		for _, rr := range rrs {
			switch a := rr.(type) {
			case *dns.A:
				if strings.EqualFold(a.Hdr.Name, host) {
					out = append(out, a.A.String())
				}
			case *dns.AAAA:
				if strings.EqualFold(a.Hdr.Name, host) {
					out = append(out, a.AAAA.String())
				}
			}
		}
	}
	collect(reply.Extra)
	if len(out) > 0 {
		return out, nil
	}
	for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
		in, err := c.ask(ctx, host, qt)
		if err != nil {
			return nil, err
		}
		collect(in.Answer)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("name server %s has no address", strings.TrimSuffix(host, "."))
	}
	return out, nil
}

// ask sends a recursive query to the resolvers in turn and returns the
// first answer with a usable rcode.
func (c *checker) ask(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	var errs []error
	for _, r := range c.resolvers {
		in, err := c.exchange(ctx, r, name, qtype, true)
		if err == nil && (in.Rcode == dns.RcodeSuccess || in.Rcode == dns.RcodeNameError) {
			return in, nil
		}
		if err == nil {
			err = fmt.Errorf("%s answered %s for %s %s", r, dns.RcodeToString[in.Rcode], name, dns.TypeToString[qtype])
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// exchange sends one query over UDP, and again over TCP when the answer is
// truncated.
func (c *checker) exchange(ctx context.Context, server, name string, qtype uint16, recursive bool) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = recursive
	m.SetEdns0(4096, false)
	cl := &dns.Client{Timeout: c.query}
	in, _, err := cl.ExchangeContext(ctx, m, server)
	if err == nil && in.Truncated {
		cl.Net = "tcp"
		in, _, err = cl.ExchangeContext(ctx, m, server)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s at %s: %w", name, dns.TypeToString[qtype], server, err)
	}
	return in, nil
}
