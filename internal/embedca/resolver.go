package embedca

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// resolverTTL is the TTL of the built-in resolver's A answers.
const resolverTTL = 1

// forwardTimeout bounds one query to the upstream server.
const forwardTimeout = 5 * time.Second

// resolver is the built-in loopback DNS server Pebble's VA uses when
// Options.DNSServer is empty: A for any name is 127.0.0.1, AAAA is empty
// (Pebble dials the first AAAA answer, and zoku's listeners may not be on
// ::1), and everything else is forwarded to upstream when one is set.
type resolver struct {
	addr     string
	upstream string
	log      *slog.Logger
	udp, tcp *dns.Server
	wg       sync.WaitGroup
}

// startResolver listens on 127.0.0.1:<free port> over UDP and TCP (the same
// port) and returns once both servers are serving, or ctx ends.
func startResolver(ctx context.Context, upstream string, logger *slog.Logger) (*resolver, error) {
	var lc net.ListenConfig
	tcpLn, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("embedca: built-in resolver: listen tcp on 127.0.0.1: %w", err)
	}
	addr := tcpLn.Addr().String()
	udpConn, err := lc.ListenPacket(ctx, "udp", addr)
	if err != nil {
		_ = tcpLn.Close()
		return nil, fmt.Errorf("embedca: built-in resolver: listen udp on %s: %w", addr, err)
	}

	r := &resolver{addr: addr, upstream: upstream, log: logger}
	// An own mux, never miekg's global one: challtestsrv registers there,
	// and several CAs may run in one process.
	mux := dns.NewServeMux()
	mux.HandleFunc(".", r.serveDNS)

	started := make(chan struct{}, 2)
	notify := func() { started <- struct{}{} }
	r.udp = &dns.Server{PacketConn: udpConn, Handler: mux, NotifyStartedFunc: notify}
	r.tcp = &dns.Server{Listener: tcpLn, Handler: mux, NotifyStartedFunc: notify,
		ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
	failed := make(chan error, 2)
	for _, srv := range []*dns.Server{r.udp, r.tcp} {
		r.wg.Go(func() {
			if err := srv.ActivateAndServe(); err != nil {
				failed <- err
			}
		})
	}
	// Wait for both servers: shutting one down before it started would
	// leave its goroutine serving forever. The sockets are already bound,
	// so each server starts or fails at once; the timer is a safety net.
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	for range 2 {
		var err error
		select {
		case <-started:
			continue
		case err = <-failed:
		case <-ctx.Done():
			err = ctx.Err()
		case <-timer.C:
			err = errors.New("servers did not start within 10s")
		}
		// Closing the sockets ends both serve loops, started or not.
		_ = tcpLn.Close()
		_ = udpConn.Close()
		r.wg.Wait()
		return nil, fmt.Errorf("embedca: built-in resolver on %s: %w", addr, err)
	}
	return r, nil
}

// shutdown stops whichever servers are running.
func (r *resolver) shutdown() []error {
	var errs []error
	for _, srv := range []*dns.Server{r.udp, r.tcp} {
		if err := srv.Shutdown(); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// close stops both servers and waits for them.
func (r *resolver) close() error {
	errs := r.shutdown()
	r.wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("embedca: close built-in resolver: %w", err)
	}
	return nil
}

// serveDNS answers one query.
func (r *resolver) serveDNS(w dns.ResponseWriter, req *dns.Msg) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("built-in resolver: panic answering a query", "panic", p)
		}
	}()
	reply := r.answer(req, w.RemoteAddr().Network())
	if err := w.WriteMsg(reply); err != nil {
		r.log.Debug("built-in resolver: write reply", "error", err)
	}
}

// answer builds the reply to req, which arrived over network ("udp"/"tcp").
func (r *resolver) answer(req *dns.Msg, network string) *dns.Msg {
	reply := new(dns.Msg)
	if len(req.Question) != 1 {
		reply.SetRcode(req, dns.RcodeFormatError)
		return reply
	}
	q := req.Question[0]
	switch {
	case q.Qtype == dns.TypeA && q.Qclass == dns.ClassINET:
		reply.SetReply(req)
		reply.Authoritative = true
		reply.Answer = []dns.RR{&dns.A{
			Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: resolverTTL},
			A:   net.IPv4(127, 0, 0, 1).To4(),
		}}
		return reply
	case q.Qtype == dns.TypeAAAA, r.upstream == "":
		reply.SetReply(req)
		reply.Authoritative = true
		return reply
	}

	up, err := r.forward(req, network)
	if err != nil {
		r.log.Debug("built-in resolver: forward failed", "upstream", r.upstream,
			"name", q.Name, "type", dns.TypeToString[q.Qtype], "error", err)
		reply.SetRcode(req, dns.RcodeServerFailure)
		return reply
	}
	up.Id = req.Id
	return up
}

// forward sends req to the upstream server, over UDP then TCP when the UDP
// answer is truncated, or over TCP directly when req came over TCP.
func (r *resolver) forward(req *dns.Msg, network string) (*dns.Msg, error) {
	q := req.Copy()
	q.Id = dns.Id()
	if network != "tcp" {
		c := &dns.Client{Net: "udp", Timeout: forwardTimeout}
		in, _, err := c.Exchange(q, r.upstream)
		if err != nil {
			return nil, err
		}
		if !in.Truncated {
			return in, nil
		}
	}
	c := &dns.Client{Net: "tcp", Timeout: forwardTimeout}
	in, _, err := c.Exchange(q, r.upstream)
	return in, err
}
