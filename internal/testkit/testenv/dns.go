package testenv

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/letsencrypt/challtestsrv"
	"github.com/miekg/dns"
)

const (
	// dnsStartAttempts bounds how many ports DNS tries before giving up.
	dnsStartAttempts = 3
	// dnsReadyTimeout bounds the readiness poll of one attempt.
	dnsReadyTimeout = 5 * time.Second
	// dnsReadyInterval is the pause between readiness probes.
	dnsReadyInterval = 10 * time.Millisecond
	// dnsReadyMaxProbes bounds the probe count of one attempt.
	dnsReadyMaxProbes = 500
)

var (
	dnsOnce   sync.Once
	dnsShared *DNSServer
	dnsErr    error
)

// DNSServer is the challtestsrv DNS server shared by all tests of one test
// binary. It answers A for any name with 127.0.0.1, AAAA with nothing (Pebble
// dials the first AAAA answer, and ::1 would break tests that listen on
// 127.0.0.1), TXT from the records set here, and SOA/NS with NOTIMP (so
// lego's authoritative propagation check must be disabled against it).
//
// Tests share its records: each test should use names of its own. Its
// methods are safe for concurrent use.
type DNSServer struct {
	addr string
	srv  *challtestsrv.ChallSrv
	// mu makes the read-modify-write of RemoveTXT atomic with respect to
	// SetTXT and ClearTXT on the same server.
	mu sync.Mutex
}

// DNS returns the one challtestsrv DNS server of this test binary, started on
// first use on 127.0.0.1:<free port> over TCP and UDP. challtestsrv registers
// its handler on miekg/dns's global mux, so a process can only have one; it
// runs until the test binary exits.
func DNS(t testing.TB) *DNSServer {
	t.Helper()
	dnsOnce.Do(func() { dnsShared, dnsErr = startDNS() })
	if dnsErr != nil {
		t.Fatalf("testenv: start challtestsrv DNS server: %v", dnsErr)
	}
	return dnsShared
}

// Addr returns the server's host:port, for Pebble's DNSServer option and
// lego's dns01 resolvers.
func (d *DNSServer) Addr() string { return d.addr }

// Server returns the underlying challtestsrv, for records this type does not
// wrap (A, AAAA, CNAME, CAA, SERVFAIL).
func (d *DNSServer) Server() *challtestsrv.ChallSrv { return d.srv }

// SetTXT adds value to host's TXT records, like challtestsrv's /set-txt;
// values already there stay, and adding a present value does nothing.
func (d *DNSServer) SetTXT(host, value string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if slices.Contains(d.srv.GetDNSTXTRecords(host), value) {
		return
	}
	d.srv.AddDNSTXTRecord(host, value)
}

// RemoveTXT removes one value from host's TXT records and keeps the others.
// challtestsrv can only delete all values of a name, so the rest are re-added.
func (d *DNSServer) RemoveTXT(host, value string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	rest := slices.DeleteFunc(slices.Clone(d.srv.GetDNSTXTRecords(host)),
		func(v string) bool { return v == value })
	d.srv.DeleteDNSTXTRecord(host)
	for _, v := range rest {
		d.srv.AddDNSTXTRecord(host, v)
	}
}

// ClearTXT removes all of host's TXT records.
func (d *DNSServer) ClearTXT(host string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.srv.DeleteDNSTXTRecord(host)
}

// TXT returns a copy of host's current TXT values, read from the server's
// state.
func (d *DNSServer) TXT(host string) []string {
	return slices.Clone(d.srv.GetDNSTXTRecords(host))
}

// startDNS starts challtestsrv on a free port, retrying on another port when
// the chosen one was taken before challtestsrv could bind it.
func startDNS() (*DNSServer, error) {
	var errs []error
	for range dnsStartAttempts {
		d, err := startDNSOnce()
		if err == nil {
			return d, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func startDNSOnce() (*DNSServer, error) {
	addr, err := freeDNSAddr()
	if err != nil {
		return nil, err
	}
	srv, err := challtestsrv.New(challtestsrv.Config{
		DNSAddrs: []string{addr},
		Log:      log.New(io.Discard, "", 0),
	})
	if err != nil {
		return nil, fmt.Errorf("testenv: challtestsrv: %w", err)
	}
	srv.SetDefaultDNSIPv4("127.0.0.1")
	srv.SetDefaultDNSIPv6("")
	srv.Run()

	marker := "ready." + rand.Text() + ".testenv.invalid."
	token := rand.Text()
	srv.AddDNSTXTRecord(marker, token)
	defer srv.DeleteDNSTXTRecord(marker)
	if err := waitDNSReady(addr, marker, token); err != nil {
		srv.Shutdown()
		return nil, err
	}
	return &DNSServer{addr: addr, srv: srv}, nil
}

// freeDNSAddr finds a 127.0.0.1 port free for both TCP and UDP.
func freeDNSAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("testenv: find a free DNS port: %w", err)
	}
	addr := ln.Addr().String()
	pc, err := net.ListenPacket("udp", addr)
	_ = ln.Close()
	if err != nil {
		return "", fmt.Errorf("testenv: find a free DNS port: udp %s: %w", addr, err)
	}
	_ = pc.Close()
	return addr, nil
}

// waitDNSReady polls addr over UDP and TCP with real TXT queries for marker
// until both answer token; challtestsrv's Run gives no ready signal. The loop
// is bounded in probes and time.
func waitDNSReady(addr, marker, token string) error {
	deadline := time.Now().Add(dnsReadyTimeout)
	tick := time.NewTicker(dnsReadyInterval)
	defer tick.Stop()
	var last error
	for range dnsReadyMaxProbes {
		last = probeTXT(addr, marker, token)
		if last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			break
		}
		<-tick.C
	}
	return fmt.Errorf("testenv: challtestsrv on %s not answering: %w", addr, last)
}

func probeTXT(addr, marker, token string) error {
	for _, network := range []string{"udp", "tcp"} {
		c := &dns.Client{Net: network, Timeout: 250 * time.Millisecond}
		m := new(dns.Msg)
		m.SetQuestion(marker, dns.TypeTXT)
		in, _, err := c.Exchange(m, addr)
		if err != nil {
			return fmt.Errorf("%s: %w", network, err)
		}
		var got []string
		for _, rr := range in.Answer {
			if txt, ok := rr.(*dns.TXT); ok {
				got = append(got, strings.Join(txt.Txt, ""))
			}
		}
		if !slices.Contains(got, token) {
			return fmt.Errorf("%s: marker TXT %q not served (another server on the port?)", network, got)
		}
	}
	return nil
}
