// Package nitrosim is a NetScaler (Citrix ADC) simulator for tests: the
// NITRO v1 configuration API for the resources a certificate deploy uses,
// and a data plane that serves what that configuration says, on loopback.
//
// No appliance can run in CI, so the simulator follows the vendor's
// documented API (the NITRO reference: resources, verbs, status and error
// codes, see docs/targets.md) as closely as the documents allow, and is
// strict where they are: a body must be {"<resource>": {...}} with known
// attributes, a request must not carry both the session cookie and the
// X-NITRO headers, a file that exists is not overwritten (1642), a bound
// priority is refused (3041), an update that breaks a CA link drops it and
// says so (1587), an expired session gets 444.
//
// The data plane is what makes the tests end to end: every HTTP virtual
// server listens on 127.0.0.1 and evaluates its bound responder policies in
// priority order (first match wins, the respondwith target written raw),
// so Pebble validating HTTP-01 against it proves the challenge policy sits
// above the redirect; every SSL virtual server serves the certkey bound to
// it, with the linked CA chain, so the served serial can be checked.
//
// It is for tests, and for trying a netscaler target without an appliance
// (`zoku dev nitro-sim` serves it on fixed loopback ports); it keeps
// everything in memory.
package nitrosim

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Options configure a simulator.
type Options struct {
	// Username and Password are the only valid credentials.
	Username, Password string
	// APIListener, when set, is where the NITRO API is served (over
	// TLS); nil means a new one on 127.0.0.1 with a free port. Close
	// closes it.
	APIListener net.Listener
	// Certificate is the NSIP's own certificate; nil means a self-signed
	// one of the httptest package.
	Certificate *tls.Certificate
	// VserverAddrs are the host:port virtual servers listen on, by name;
	// a virtual server not named here gets a free port on 127.0.0.1.
	VserverAddrs map[string]string
}

// Sim is a running simulated appliance.
type Sim struct {
	opts Options
	api  *httptest.Server

	mu       sync.Mutex // guards everything below
	sessions map[string]bool
	logins   int
	files    map[string][]byte // full path -> content
	certkeys map[string]*certKey
	vservers map[string]*vserver // by name (lb and cs share the namespace here)
	actions  map[string]*action
	policies map[string]*policy
	features map[string]bool
	saves    int
	saved    *Snapshot
	failSave int
	requests []string
	hook     func(method, resource string, obj map[string]any)
	servers  []*http.Server
	nextTok  int
}

type certKey struct {
	name, cert, key, link string
	leafDER               []byte
	keyPEM                []byte
}

type vserver struct {
	name, kind, serviceType string
	addr                    string
	responders              []respBinding
	certs                   []certBinding
}

type respBinding struct {
	policy   string
	priority int
	gotoExpr string
}

type certBinding struct {
	certkey string
	sni     bool
}

type action struct {
	name, typ, target string
	text              textFunc
}

type policy struct {
	name, rule, action string
	match              ruleFunc
}

// Start starts the NITRO API (HTTPS with a self-signed certificate) on
// 127.0.0.1.
func Start(opts Options) (*Sim, error) {
	if opts.Username == "" || opts.Password == "" {
		return nil, errors.New("nitrosim: Options need Username and Password")
	}
	s := &Sim{
		opts: opts, sessions: map[string]bool{}, files: map[string][]byte{},
		certkeys: map[string]*certKey{}, vservers: map[string]*vserver{},
		actions: map[string]*action{}, policies: map[string]*policy{},
		features: map[string]bool{"responder": true, "ssl": true, "lb": true, "cs": true},
	}
	s.api = httptest.NewUnstartedServer(http.HandlerFunc(s.serveAPI))
	if opts.APIListener != nil {
		_ = s.api.Listener.Close()
		s.api.Listener = opts.APIListener
	}
	if opts.Certificate != nil {
		s.api.TLS = &tls.Config{Certificates: []tls.Certificate{*opts.Certificate}}
	}
	s.api.StartTLS()
	return s, nil
}

// URL is the NSIP's base URL (https://127.0.0.1:port).
func (s *Sim) URL() string { return s.api.URL }

// CACertPEM is the NSIP's own (self-signed) certificate, for a CA file.
func (s *Sim) CACertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.api.Certificate().Raw})
}

// Fingerprint is the SHA-256 of the NSIP's certificate, in hex.
func (s *Sim) Fingerprint() string {
	sum := sha256.Sum256(s.api.Certificate().Raw)
	return hex.EncodeToString(sum[:])
}

// Close stops the API and every virtual server.
func (s *Sim) Close() {
	s.api.Close()
	s.mu.Lock()
	servers := s.servers
	s.servers = nil
	s.mu.Unlock()
	for _, srv := range servers {
		_ = srv.Close()
	}
}

// StopAPI makes the management interface unreachable (connections are
// refused) while the virtual servers keep serving: the appliance is "down"
// for zoku, not for its clients.
func (s *Sim) StopAPI() { s.api.Close() }

// AddVserver creates a virtual server of kind "lb" or "cs" with
// serviceType "HTTP" or "SSL" and starts its listener (on
// Options.VserverAddrs[name], else a free port on 127.0.0.1); it returns
// the listener's host:port.
func (s *Sim) AddVserver(kind, name, serviceType string) (string, error) {
	if kind != "lb" && kind != "cs" {
		return "", fmt.Errorf("nitrosim: kind %q: want lb or cs", kind)
	}
	if serviceType != "HTTP" && serviceType != "SSL" {
		return "", fmt.Errorf("nitrosim: service type %q: want HTTP or SSL", serviceType)
	}
	addr := s.opts.VserverAddrs[name]
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("nitrosim: vserver %s: %w", name, err)
	}
	vs := &vserver{name: name, kind: kind, serviceType: serviceType, addr: ln.Addr().String()}
	srv := &http.Server{Handler: s.dataPlane(vs)}
	if serviceType == "SSL" {
		srv.TLSConfig = &tls.Config{GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) { return s.servedCert(vs.name, h.ServerName) }}
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	s.mu.Lock()
	if _, dup := s.vservers[name]; dup {
		s.mu.Unlock()
		ln.Close()
		return "", fmt.Errorf("nitrosim: vserver %q exists", name)
	}
	s.vservers[name] = vs
	s.servers = append(s.servers, srv)
	s.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
	return vs.addr, nil
}

// dataPlane answers a virtual server's traffic: the first bound responder
// policy (lowest priority number) whose rule matches decides; with none,
// a backend answers 200.
func (s *Sim) dataPlane(vs *vserver) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		var act *action
		if s.features["responder"] {
			bs := slices.Clone(vs.responders)
			sort.Slice(bs, func(i, j int) bool { return bs[i].priority < bs[j].priority })
			for _, b := range bs {
				p := s.policies[b.policy]
				if p != nil && p.match(r) {
					act = s.actions[p.action]
					break
				}
			}
		}
		s.mu.Unlock()
		switch {
		case act == nil:
			fmt.Fprintf(w, "backend of %s\n", vs.name)
		case act.typ == "redirect":
			http.Redirect(w, r, act.text(r), http.StatusFound)
		case act.typ == "respondwith":
			// The target is the whole raw response, written as is.
			hj, ok := w.(http.Hijacker)
			if !ok {
				http.Error(w, "cannot hijack", http.StatusInternalServerError)
				return
			}
			conn, buf, err := hj.Hijack()
			if err != nil {
				return
			}
			_, _ = buf.WriteString(act.text(r))
			_ = buf.Flush()
			_ = conn.Close()
		default: // noop
			fmt.Fprintf(w, "backend of %s\n", vs.name)
		}
	})
}

// servedCert is the certificate an SSL vserver presents: a bound SNI
// certkey matching the name, else the bound server certkey, with its CA
// chain from the links.
func (s *Sim) servedCert(vsName, sni string) (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	vs := s.vservers[vsName]
	if vs == nil {
		return nil, errors.New("no vserver")
	}
	var pick *certKey
	for _, b := range vs.certs {
		ck := s.certkeys[b.certkey]
		if ck == nil || ck.keyPEM == nil {
			continue
		}
		leaf, err := parseCert(ck.leafDER)
		if err != nil {
			continue
		}
		if b.sni && sni != "" && leaf.VerifyHostname(sni) == nil {
			pick = ck
			break
		}
		if !b.sni && pick == nil {
			pick = ck
		}
	}
	if pick == nil {
		return nil, errors.New("no certificate bound")
	}
	crt := tls.Certificate{Certificate: [][]byte{pick.leafDER}}
	for ca, n := s.certkeys[pick.link], 0; ca != nil && n < 4; ca, n = s.certkeys[ca.link], n+1 {
		crt.Certificate = append(crt.Certificate, ca.leafDER)
	}
	key, err := parseKey(pick.keyPEM)
	if err != nil {
		return nil, err
	}
	crt.PrivateKey = key
	return &crt, nil
}

// SetFeature turns an appliance feature on or off ("responder", ...).
// With responder off, responder policies are neither evaluated nor
// bindable (1067).
func (s *Sim) SetFeature(name string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.features[strings.ToLower(name)] = on
}

// ExpireSessions kills every session: the next request with its cookie
// gets 401 with errorcode 444.
func (s *Sim) ExpireSessions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.sessions)
}

// FailSaves makes the next n "save ns config" fail with 1461 (too many
// saves in progress).
func (s *Sim) FailSaves(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failSave = n
}

// SetHook calls fn before each authenticated API request is applied, with
// the request's object (nil without a body). fn may call the simulator.
func (s *Sim) SetHook(fn func(method, resource string, obj map[string]any)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hook = fn
}

// Configure applies one API request as an administrator, bypassing
// authentication: tests set up the appliance (an existing certkey, a
// redirect policy) through the same documented resources zoku uses.
func (s *Sim) Configure(method, resource, name, query string, obj map[string]any) error {
	rep := s.apply(method, resource, name, query, obj)
	if rep.code != 0 {
		return fmt.Errorf("nitrosim: %s %s: errorcode %d: %s", method, resource, rep.code, rep.message)
	}
	return nil
}

// CertKeyInfo describes a certkey.
type CertKeyInfo struct {
	Cert, Key, Link string
	Serial          *big.Int
}

// CertKey returns the named certkey.
func (s *Sim) CertKey(name string) (CertKeyInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ck := s.certkeys[name]
	if ck == nil {
		return CertKeyInfo{}, false
	}
	info := CertKeyInfo{Cert: ck.cert, Key: ck.key, Link: ck.link}
	if c, err := parseCert(ck.leafDER); err == nil {
		info.Serial = c.SerialNumber
	}
	return info, true
}

// Binding is a responder policy bound to a vserver.
type Binding struct {
	Policy   string
	Priority int
}

// Responders returns the responder policies bound to a vserver, by
// priority.
func (s *Sim) Responders(vs string) []Binding {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Binding
	if v := s.vservers[vs]; v != nil {
		for _, b := range v.responders {
			out = append(out, Binding{b.policy, b.priority})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Priority < out[j].Priority })
	return out
}

// Snapshot is the configuration as saved.
type Snapshot struct {
	// CertKeys maps certkey names to their cert file.
	CertKeys map[string]string
	// Actions and Policies are the responder object names.
	Actions, Policies []string
	// Files are the full paths of the files on the appliance.
	Files []string
}

func (s *Sim) snapshotLocked() *Snapshot {
	snap := &Snapshot{CertKeys: map[string]string{}}
	for n, ck := range s.certkeys {
		snap.CertKeys[n] = ck.cert
	}
	for n := range s.actions {
		snap.Actions = append(snap.Actions, n)
	}
	for n := range s.policies {
		snap.Policies = append(snap.Policies, n)
	}
	for f := range s.files {
		snap.Files = append(snap.Files, f)
	}
	slices.Sort(snap.Actions)
	slices.Sort(snap.Policies)
	slices.Sort(snap.Files)
	return snap
}

// Current is the running configuration now.
func (s *Sim) Current() *Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapshotLocked()
}

// Saved returns the last saved configuration and the number of saves.
func (s *Sim) Saved() (*Snapshot, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saved, s.saves
}

// Requests returns the API requests so far ("POST sslcertkey?action=update",
// "DELETE responderpolicy/name", ...), logins included.
func (s *Sim) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Logins counts successful logins.
func (s *Sim) Logins() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logins
}

// Sessions counts open sessions.
func (s *Sim) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Seed is the appliance seed 003's script expects, as SetUpSeed builds it.
type Seed struct {
	// HTTPVserver ("testHTTP") and SSLVserver ("testSSL") and their
	// listeners' host:port.
	HTTPVserver, SSLVserver string
	HTTPAddr, SSLAddr       string
	// RedirectPolicy ("redirect_https") is bound on HTTPVserver at 100.
	RedirectPolicy string
	// CertKey ("example_cert") is the SSL pair, when one was given.
	CertKey string
}

// SetUpSeed builds seed 003's setup through the API: an HTTP vserver whose
// only responder policy redirects every request to HTTPS at priority 100,
// an SSL vserver, and, when certPEM and keyPEM are given, the SSL pair
// example_cert (files example.crt and example.key) bound to it.
func (s *Sim) SetUpSeed(certPEM, keyPEM []byte) (*Seed, error) {
	seed := &Seed{HTTPVserver: "testHTTP", SSLVserver: "testSSL", RedirectPolicy: "redirect_https"}
	var err error
	if seed.HTTPAddr, err = s.AddVserver("lb", seed.HTTPVserver, "HTTP"); err != nil {
		return nil, err
	}
	if seed.SSLAddr, err = s.AddVserver("lb", seed.SSLVserver, "SSL"); err != nil {
		return nil, err
	}
	type step struct {
		method, resource string
		obj              map[string]any
	}
	steps := []step{
		{"POST", "responderaction", map[string]any{"name": "redirect_https_act", "type": "redirect",
			"target": `"https://" + HTTP.REQ.HOSTNAME.HTTP_URL_SAFE + HTTP.REQ.URL.PATH_AND_QUERY.HTTP_URL_SAFE`}},
		{"POST", "responderpolicy", map[string]any{"name": seed.RedirectPolicy, "rule": "HTTP.REQ.IS_VALID", "action": "redirect_https_act"}},
		{"PUT", "lbvserver_responderpolicy_binding", map[string]any{"name": seed.HTTPVserver, "policyname": seed.RedirectPolicy, "priority": 100}},
	}
	if certPEM != nil {
		seed.CertKey = "example_cert"
		steps = append(steps,
			step{"POST", "systemfile", map[string]any{"filename": "example.crt", "filelocation": sslDir, "filecontent": base64.StdEncoding.EncodeToString(certPEM), "fileencoding": "BASE64"}},
			step{"POST", "systemfile", map[string]any{"filename": "example.key", "filelocation": sslDir, "filecontent": base64.StdEncoding.EncodeToString(keyPEM), "fileencoding": "BASE64"}},
			step{"POST", "sslcertkey", map[string]any{"certkey": seed.CertKey, "cert": "example.crt", "key": "example.key"}},
			step{"PUT", "sslvserver_sslcertkey_binding", map[string]any{"vservername": seed.SSLVserver, "certkeyname": seed.CertKey}},
		)
	}
	for _, st := range steps {
		if err := s.Configure(st.method, st.resource, "", "", st.obj); err != nil {
			return nil, err
		}
	}
	return seed, nil
}
