package netscaler

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/deploy/internal/probe"
	"github.com/zoku/zoku/internal/deploy/kind"
)

// Defaults of the netscaler section (docs/targets.md lists them).
const (
	DefaultPriority = 90
	DefaultTimeout  = 60 * time.Second
)

// Settings is the netscaler: section of a target: a Citrix ADC /
// NetScaler driven through NITRO.
type Settings struct {
	// URL of the NSIP, https://192.0.2.10.
	URL string `yaml:"url" toml:"url" json:"url"`
	// Username and Password of a NITRO user (${ENV} or file: for the
	// password).
	Username string        `yaml:"username" toml:"username" json:"username"`
	Password config.Secret `yaml:"password" toml:"password" json:"password"`
	// Auth: session (login, cookie; default) or header (X-NITRO-USER/PASS
	// on every request).
	Auth string `yaml:"auth" toml:"auth" json:"auth,omitempty"`
	// CAFile verifies the NSIP's certificate against these CAs.
	CAFile string `yaml:"caFile" toml:"caFile" json:"caFile,omitempty"`
	// Fingerprint pins the NSIP's certificate by its SHA-256 (hex).
	Fingerprint string `yaml:"fingerprint" toml:"fingerprint" json:"fingerprint,omitempty"`
	// ServerName is the name the NSIP's certificate is checked against
	// (it is usually dialled by IP).
	ServerName string `yaml:"serverName" toml:"serverName" json:"serverName,omitempty"`
	// Insecure skips verifying the NSIP's certificate (explicit opt-in).
	Insecure bool `yaml:"insecure" toml:"insecure" json:"insecure,omitempty"`
	// HTTPVserver is the HTTP virtual server the CA reaches on port 80;
	// the responder policy is bound there.
	HTTPVserver string `yaml:"httpVserver" toml:"httpVserver" json:"httpVserver,omitempty"`
	// HTTPVserverType: lb (default) or cs.
	HTTPVserverType string `yaml:"httpVserverType" toml:"httpVserverType" json:"httpVserverType,omitempty"`
	// SSLVserver is the SSL virtual server the certificate is bound to.
	SSLVserver string `yaml:"sslVserver" toml:"sslVserver" json:"sslVserver"`
	// CertKey is the sslcertkey name (the seed's "SSL pair"); default: the
	// certificate's main name made NetScaler-safe (ObjectName).
	CertKey string `yaml:"certKey" toml:"certKey" json:"certKey,omitempty"`
	// SNI binds the certkey as an SNI certificate.
	SNI bool `yaml:"sni" toml:"sni" json:"sni,omitempty"`
	// RedirectPolicy is the HTTP-to-HTTPS responder policy on
	// httpVserver; the challenge policy is bound at a lower number.
	RedirectPolicy string `yaml:"redirectPolicy" toml:"redirectPolicy" json:"redirectPolicy,omitempty"`
	// Priority is where the search for a free priority starts; default 90.
	Priority int `yaml:"priority" toml:"priority" json:"priority,omitempty"`
	// Save runs "save ns config" after a deploy; default true.
	Save *bool `yaml:"save" toml:"save" json:"save,omitempty"`
	// Timeout of each NITRO request; default 60s.
	Timeout config.Duration `yaml:"timeout" toml:"timeout" json:"timeout"`
}

func init() {
	kind.Register(kind.Kind[Settings]{
		Name:      "netscaler",
		Responder: true,
		Required:  "add url, username, password, sslVserver (and httpVserver for the responder)",
		Defaults:  defaults,
		Validate:  validate,
		New:       build,
	})
}

func defaults(t *config.Target, n *Settings) {
	if n.Auth == "" {
		n.Auth = "session"
	}
	if n.HTTPVserverType == "" {
		n.HTTPVserverType = "lb"
	}
	if n.Priority == 0 {
		n.Priority = DefaultPriority
	}
	if n.Save == nil {
		n.Save = new(true)
	}
	if n.Timeout == 0 {
		n.Timeout = config.Duration(DefaultTimeout)
	}
	if n.CertKey == "" && len(t.Certificates) > 0 {
		n.CertKey = ObjectName(t.Certificates[0].Main)
	}
}

func validate(k *config.TargetCheck, t *config.Target, n *Settings) error {
	p, np := k.Path, k.Section
	if len(t.Certificates) > 1 {
		return k.Errorf(p+".certificates", "%s has %d certificates; a netscaler target updates one certkey, so add one target per certificate", p, len(t.Certificates))
	}
	u, err := url.Parse(n.URL)
	switch {
	case n.URL == "":
		return k.Errorf(np, "%s has no url; set it to the NSIP, e.g. https://192.0.2.10", np)
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return k.Errorf(np+".url", "%s.url %q is not a URL; write https://<NSIP>", np, n.URL)
	case u.Scheme == "http" && !n.Insecure:
		return k.Errorf(np+".url", "%s.url uses http://, which sends the password in clear; use https:// (or set insecure: true for a lab)", np)
	case u.Path != "" && u.Path != "/":
		return k.Errorf(np+".url", "%s.url must not have a path; zoku adds /nitro/v1/...", np)
	}
	if n.Username == "" || n.Password == "" {
		return k.Errorf(np, "%s needs username and password (write the password as ${ENV} or file:/path)", np)
	}
	if n.Auth != "session" && n.Auth != "header" {
		return k.Errorf(np+".auth", "%s.auth %q is unknown; use session or header", np, n.Auth)
	}
	if n.Insecure && (n.CAFile != "" || n.Fingerprint != "") {
		return k.Errorf(np+".insecure", "%s.insecure turns verification off, but caFile or fingerprint is set; remove insecure", np)
	}
	if n.CAFile != "" {
		b, err := os.ReadFile(n.CAFile)
		if err != nil {
			return k.Errorf(np+".caFile", "%s.caFile: %v; check the path", np, k.FileProblem(err))
		}
		if !x509.NewCertPool().AppendCertsFromPEM(b) {
			return k.Errorf(np+".caFile", "%s.caFile %s holds no PEM certificate", np, n.CAFile)
		}
	}
	if f := n.Fingerprint; f != "" {
		if _, err := parseFingerprint(f); err != nil {
			return k.Errorf(np+".fingerprint", "%s.fingerprint: %v", np, err)
		}
	}
	if n.ServerName != "" && net.ParseIP(n.ServerName) == nil && !k.Hostname(n.ServerName) {
		return k.Errorf(np+".serverName", "%s.serverName %q is not a host name", np, n.ServerName)
	}
	if t.Challenge.Responder && n.HTTPVserver == "" {
		return k.Errorf(np, "%s has no httpVserver; name the HTTP virtual server the CA reaches on port 80 (the responder policy is bound there)", np)
	}
	if n.HTTPVserverType != "lb" && n.HTTPVserverType != "cs" {
		return k.Errorf(np+".httpVserverType", "%s.httpVserverType %q is unknown; use lb or cs", np, n.HTTPVserverType)
	}
	if n.SSLVserver == "" {
		return k.Errorf(np, "%s has no sslVserver; name the SSL virtual server the certificate is bound to", np)
	}
	for _, f := range []struct{ key, val string }{{"httpVserver", n.HTTPVserver}, {"sslVserver", n.SSLVserver}, {"certKey", n.CertKey}, {"redirectPolicy", n.RedirectPolicy}} {
		if f.val != "" && !validName(f.val) {
			return k.Errorf(np+"."+f.key, "%s.%s %q may hold only letters, digits, '_', '.' and '-'", np, f.key, f.val)
		}
	}
	if len(n.CertKey) > 31 {
		return k.Errorf(np+".certKey", "%s.certKey %q is longer than 31 characters, NetScaler's limit", np, n.CertKey)
	}
	if n.Priority < 2 || n.Priority > 2147483647 {
		return k.Errorf(np+".priority", "%s.priority %d is out of range; use 2 to 2147483647 (default 90)", np, n.Priority)
	}
	return nil
}

func build(env kind.Env, n *Settings) (kind.Target, error) {
	var fp []byte
	if n.Fingerprint != "" {
		var err error
		if fp, err = parseFingerprint(n.Fingerprint); err != nil {
			return nil, err
		}
	}
	vName := env.Verify.ServerName
	if vName == "" && len(env.Certificates) > 0 {
		vName = probe.ServerName(env.Certificates[0])
	}
	return New(Options{
		Name: env.Name, URL: n.URL, Username: n.Username, Password: string(n.Password), HeaderAuth: n.Auth == "header",
		CAFile: n.CAFile, Fingerprint: fp, ServerName: n.ServerName, Insecure: n.Insecure,
		HTTPVserver: n.HTTPVserver, HTTPVserverType: n.HTTPVserverType, SSLVserver: n.SSLVserver,
		CertKey: n.CertKey, SNI: n.SNI, RedirectPolicy: n.RedirectPolicy, Priority: n.Priority, Save: n.Save == nil || *n.Save,
		Timeout: n.Timeout.D(), VerifyAddress: env.Verify.Address, VerifyServerName: vName, VerifyTimeout: env.Verify.Timeout,
		Logger: env.Logger,
	})
}

// ObjectName makes s a NetScaler object name: letters, digits, '_', '.',
// '-', at most 31 characters (longer names keep a hash of the rest).
func ObjectName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !nameChar(c) {
			b[i] = '_'
		}
	}
	if len(b) <= 31 {
		return string(b)
	}
	sum := sha256.Sum256([]byte(s))
	return string(b[:22]) + "-" + hex.EncodeToString(sum[:4])
}

func nameChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
}

func validName(s string) bool {
	if s == "" || len(s) > 127 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !nameChar(s[i]) {
			return false
		}
	}
	return true
}

// parseFingerprint reads a SHA-256 fingerprint written as 64 hex digits,
// with or without ':' or spaces between bytes.
func parseFingerprint(s string) ([]byte, error) {
	clean := strings.NewReplacer(":", "", " ", "").Replace(strings.TrimSpace(s))
	b, err := hex.DecodeString(clean)
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("%q is not a SHA-256 fingerprint; write 64 hex digits (openssl x509 -noout -fingerprint -sha256)", s)
	}
	return b, nil
}
