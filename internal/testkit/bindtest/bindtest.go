// Package bindtest starts a real BIND9 name server for tests.
//
// Start writes a named.conf, one zone file per zone and one TSIG key per
// zone into t.TempDir(), runs `named -g` as a child process on
// 127.0.0.1:<free port> (UDP and TCP), waits until every zone answers a real
// SOA query over both transports, and stops the process in t.Cleanup. Each
// zone also serves a random marker TXT record that the readiness check
// asks for: named keeps running when it cannot listen, so without it a
// port taken by another server in the meantime would go unnoticed.
//
// Each zone accepts RFC 2136 dynamic updates signed with its own key
// (hmac-sha256) and nothing else, so tests can give two zones to two
// providers with different credentials.
//
// The server is also a resolver for 127.0.0.1, so it can stand in for both
// the zones' name server and the resolver Pebble and lego ask: it follows a
// CNAME from one of its zones into another the way a recursive resolver
// does. It is primary for a private root zone as well, so it never sends a
// query off the machine: names outside its zones get NXDOMAIN.
//
// When named is not installed, Start calls t.Skip with the package to
// install; .ci/run installs it.
package bindtest

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/zoku/zoku/internal/testkit/need"
)

const (
	// startAttempts bounds how many ports Start tries; another process may
	// take the chosen port before named binds it.
	startAttempts = 3
	// readyTimeout bounds the readiness poll of one attempt.
	readyTimeout = 15 * time.Second
	// readyInterval is the pause between readiness probes.
	readyInterval = 20 * time.Millisecond
	// readyMaxProbes bounds the probe count of one attempt.
	readyMaxProbes = 750
	// stopTimeout bounds the wait for named to exit after SIGTERM, before
	// it is killed.
	stopTimeout = 10 * time.Second
	// queryTimeout bounds one query made by the helpers.
	queryTimeout = 2 * time.Second
	// KeyAlgorithm is the TSIG algorithm of every zone key, as lego's
	// DNSUPDATE_TSIG_ALGORITHM takes it.
	KeyAlgorithm = "hmac-sha256."
)

// Zone is one zone the server is primary for.
type Zone struct {
	// Name is the zone's apex, e.g. "example.test" (no trailing dot needed).
	Name string
	// Records are extra zone-file lines, with names relative to the zone or
	// absolute with a trailing dot, e.g. `www A 127.0.0.1` or
	// `_acme-challenge.a CNAME t.other.test.`. The zone always has an SOA,
	// NS ns1.<zone> and ns1 A 127.0.0.1.
	Records []string
}

// Key is a TSIG key that may update one zone.
type Key struct {
	// Name is the key name, e.g. "example.test-key." (canonical, with a dot).
	Name string
	// Algorithm is KeyAlgorithm.
	Algorithm string
	// Secret is the base64 secret.
	Secret string
	// File is a tsig-keygen style key file (0600) usable with
	// DNSUPDATE_TSIG_FILE and nsupdate -k.
	File string
}

// Server is a running named. Its methods are safe for concurrent use.
type Server struct {
	addr string
	dir  string
	keys map[string]Key // by zone name, canonical
	cmd  *exec.Cmd
	done chan struct{}
	log  *lockedBuffer
	// marker is a random TXT value every zone serves at _bindtest-marker,
	// so readiness proves that this named answers, not another process
	// that holds the port (named keeps running when it cannot listen).
	marker string
}

// errNotOurs means another process answers on the chosen port.
var errNotOurs = errors.New("another server answers")

// markerLabel is where each zone serves the server's marker.
const markerLabel = "_bindtest-marker"

// DefaultZones are the zones Start serves when given none: example.test and
// other.test.
func DefaultZones() []Zone {
	return []Zone{{Name: "example.test"}, {Name: "other.test"}}
}

// Start runs named for the test with zones (DefaultZones when empty) and
// stops it in t.Cleanup. It skips the test when named is not installed and
// fails it when named cannot be started.
func Start(t testing.TB, zones ...Zone) *Server {
	t.Helper()
	named := need.Binary(t, "named", "install BIND9 (apt-get install -y bind9)")
	if len(zones) == 0 {
		zones = DefaultZones()
	}
	var errs []error
	for range startAttempts {
		addr, err := freeAddr()
		if err != nil {
			t.Fatalf("bindtest: %v", err)
		}
		s, err := start(named, t.TempDir(), zones, addr)
		if err == nil {
			t.Cleanup(func() {
				if err := s.stop(); err != nil {
					t.Errorf("bindtest: stop named: %v", err)
				}
			})
			return s
		}
		errs = append(errs, err)
	}
	t.Fatalf("bindtest: start named: %v", errors.Join(errs...))
	return nil
}

// Addr returns the server's 127.0.0.1:port, for resolvers, Pebble's DNS
// server and DNSUPDATE_NAMESERVER.
func (s *Server) Addr() string { return s.addr }

// Port returns the server's port.
func (s *Server) Port() int {
	_, p, _ := net.SplitHostPort(s.addr)
	var n int
	_, _ = fmt.Sscanf(p, "%d", &n)
	return n
}

// Key returns the TSIG key that may update zone.
func (s *Server) Key(zone string) Key {
	k, ok := s.keys[dns.CanonicalName(zone)]
	if !ok {
		panic(fmt.Sprintf("bindtest: no zone %q", zone))
	}
	return k
}

// Log returns what named has written to its standard error so far, for
// failure messages.
func (s *Server) Log() string { return s.log.String() }

// TXT asks the server for name's TXT records with a real query and returns
// their values (each record's strings joined). A CNAME at name is followed
// the way the server follows it; only TXT records are returned.
func (s *Server) TXT(name string) ([]string, error) {
	in, err := s.Exchange(name, dns.TypeTXT)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, rr := range in.Answer {
		if txt, ok := rr.(*dns.TXT); ok {
			out = append(out, strings.Join(txt.Txt, ""))
		}
	}
	return out, nil
}

// Exchange sends one query for name and type to the server over UDP,
// retrying over TCP when the answer is truncated.
func (s *Server) Exchange(name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	c := &dns.Client{Timeout: queryTimeout}
	in, _, err := c.Exchange(m, s.addr)
	if err == nil && in.Truncated {
		c.Net = "tcp"
		in, _, err = c.Exchange(m, s.addr)
	}
	if err != nil {
		return nil, fmt.Errorf("bindtest: query %s %s at %s: %w", name, dns.TypeToString[qtype], s.addr, err)
	}
	return in, nil
}

// findNamed returns the path of named; /usr/sbin is often not on a
// non-root user's PATH.
func findNamed() (string, error) { return need.Find("named") }

// start makes one attempt on addr.
func start(named, dir string, zones []Zone, addr string) (*Server, error) {
	s := &Server{addr: addr, dir: dir, keys: map[string]Key{}, done: make(chan struct{}), log: &lockedBuffer{}, marker: rand.Text()}
	conf, err := s.writeConfig(zones)
	if err != nil {
		return nil, err
	}
	// -g: foreground, log to stderr; -4: IPv4 only; -n 1: one worker
	// thread, enough for tests on a shared machine.
	s.cmd = exec.Command(named, "-g", "-4", "-n", "1", "-c", conf)
	s.cmd.Dir = dir
	s.cmd.Stdout = s.log
	s.cmd.Stderr = s.log
	// If the test binary dies without running its cleanups (Ctrl-C, a
	// timeout panic), the kernel kills named with it.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s: %w", named, err)
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.done)
	}()
	if err := s.waitReady(zones); err != nil {
		_ = s.stop()
		return nil, fmt.Errorf("%w; named said: %s", err, lastLines(s.log.String(), 8))
	}
	return s, nil
}

// writeConfig writes named.conf, the zone files and the key files into
// s.dir and returns the path of named.conf.
func (s *Server) writeConfig(zones []Zone) (string, error) {
	host, port, _ := net.SplitHostPort(s.addr)
	var conf strings.Builder
	fmt.Fprintf(&conf, `options {
	directory %q;
	pid-file %q;
	session-keyfile %q;
	managed-keys-directory %q;
	listen-on port %s { %s; };
	listen-on-v6 { none; };
	reuseport no;
	recursion yes;
	allow-recursion { 127.0.0.1; };
	allow-query-cache { 127.0.0.1; };
	dnssec-validation no;
	notify no;
	allow-transfer { none; };
};
controls { };
zone "." {
	type primary;
	file %q;
};
`, s.dir, filepath.Join(s.dir, "named.pid"), filepath.Join(s.dir, "session.key"), s.dir, port, host,
		filepath.Join(s.dir, "root.zone"))
	if err := os.WriteFile(filepath.Join(s.dir, "root.zone"), []byte(zoneText(".", nil, s.marker)), 0o600); err != nil {
		return "", fmt.Errorf("write root zone: %w", err)
	}
	seen := map[string]bool{}
	for _, z := range zones {
		name := dns.CanonicalName(z.Name)
		if name == "." || seen[name] {
			return "", fmt.Errorf("zone %q: empty or given twice", z.Name)
		}
		seen[name] = true
		bare := strings.TrimSuffix(name, ".")
		key, err := newKey(bare + "-key.")
		if err != nil {
			return "", err
		}
		keyText := fmt.Sprintf("key %q {\n\talgorithm %s;\n\tsecret %q;\n};\n",
			strings.TrimSuffix(key.Name, "."), strings.TrimSuffix(key.Algorithm, "."), key.Secret)
		key.File = filepath.Join(s.dir, bare+".key")
		if err := os.WriteFile(key.File, []byte(keyText), 0o600); err != nil {
			return "", fmt.Errorf("write key file: %w", err)
		}
		s.keys[name] = key
		zoneFile := filepath.Join(s.dir, bare+".zone")
		if err := os.WriteFile(zoneFile, []byte(zoneText(name, z.Records, s.marker)), 0o600); err != nil {
			return "", fmt.Errorf("write zone file: %w", err)
		}
		conf.WriteString(keyText)
		fmt.Fprintf(&conf, "zone %q {\n\ttype primary;\n\tfile %q;\n\tallow-update { key %q; };\n};\n",
			bare, zoneFile, strings.TrimSuffix(key.Name, "."))
	}
	path := filepath.Join(s.dir, "named.conf")
	if err := os.WriteFile(path, []byte(conf.String()), 0o600); err != nil {
		return "", fmt.Errorf("write named.conf: %w", err)
	}
	return path, nil
}

// zoneText returns a minimal zone with a short negative TTL, so resolvers
// asking later do not keep an old "no such record" for long.
func zoneText(origin string, records []string, marker string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "$ORIGIN %s\n$TTL 1\n", origin)
	apex := strings.TrimPrefix(origin, ".") // "" for the root zone
	fmt.Fprintf(&b, "@ IN SOA ns1.%s hostmaster.%s 1 3600 600 86400 1\n", apex, apex)
	fmt.Fprintf(&b, "@ IN NS ns1.%s\nns1 IN A 127.0.0.1\n", apex)
	fmt.Fprintf(&b, "%s IN TXT %q\n", markerLabel, marker)
	for _, r := range records {
		b.WriteString(r + "\n")
	}
	return b.String()
}

// newKey returns a key with a random 256-bit secret.
func newKey(name string) (Key, error) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return Key{}, fmt.Errorf("key secret: %w", err)
	}
	return Key{Name: name, Algorithm: KeyAlgorithm, Secret: base64.StdEncoding.EncodeToString(secret)}, nil
}

// waitReady polls with real queries for every zone (its SOA, answered
// authoritatively, and the marker TXT) over UDP and TCP until all answer,
// named exits, or the bounds run out.
func (s *Server) waitReady(zones []Zone) error {
	deadline := time.Now().Add(readyTimeout)
	tick := time.NewTicker(readyInterval)
	defer tick.Stop()
	var last error
	for range readyMaxProbes {
		if last = s.probe(zones); last == nil {
			return nil
		}
		if errors.Is(last, errNotOurs) {
			return last
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-s.done:
			return fmt.Errorf("named on %s exited before it was ready", s.addr)
		case <-tick.C:
		}
	}
	return fmt.Errorf("named on %s not ready: %w", s.addr, last)
}

func (s *Server) probe(zones []Zone) error {
	for _, z := range zones {
		name := dns.CanonicalName(z.Name)
		for _, network := range []string{"udp", "tcp"} {
			c := &dns.Client{Net: network, Timeout: 250 * time.Millisecond}
			m := new(dns.Msg)
			m.SetQuestion(name, dns.TypeSOA)
			in, _, err := c.Exchange(m, s.addr)
			if err != nil {
				return fmt.Errorf("%s SOA %s: %w", network, name, err)
			}
			if in.Rcode != dns.RcodeSuccess || !in.Authoritative || len(in.Answer) == 0 {
				return fmt.Errorf("%s SOA %s: rcode %s, authoritative %v, %d answers",
					network, name, dns.RcodeToString[in.Rcode], in.Authoritative, len(in.Answer))
			}
			m.SetQuestion(markerLabel+"."+name, dns.TypeTXT)
			if in, _, err = c.Exchange(m, s.addr); err != nil {
				return fmt.Errorf("%s TXT %s.%s: %w", network, markerLabel, name, err)
			}
			if txt, ok := firstTXT(in); !ok || txt != s.marker {
				return fmt.Errorf("%s: %w on %s (marker TXT missing)", network, errNotOurs, s.addr)
			}
		}
	}
	return nil
}

// firstTXT returns the first TXT value of in's answer.
func firstTXT(in *dns.Msg) (string, bool) {
	for _, rr := range in.Answer {
		if t, ok := rr.(*dns.TXT); ok {
			return strings.Join(t.Txt, ""), true
		}
	}
	return "", false
}

// stop ends named: SIGTERM, then SIGKILL if it has not exited within
// stopTimeout.
func (s *Server) stop() error {
	if s.cmd == nil || s.cmd.Process == nil {
		return nil
	}
	select {
	case <-s.done:
		return nil
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-s.done:
		return nil
	case <-timer.C:
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	return fmt.Errorf("named on %s did not exit within %s of SIGTERM; killed", s.addr, stopTimeout)
}

// freeAddr finds a 127.0.0.1 port free for both TCP and UDP a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := ln.Addr().String()
	pc, err := net.ListenPacket("udp", addr)
	_ = ln.Close()
	if err != nil {
		return "", fmt.Errorf("find a free port: udp %s: %w", addr, err)
	}
	_ = pc.Close()
	return addr, nil
}

// lastLines returns the last n lines of s on one line, for error messages.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// lockedBuffer is a bytes.Buffer safe for the writer goroutines of
// exec.Cmd and concurrent readers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
