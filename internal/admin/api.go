package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/zoku/zoku/internal/certmgr"
	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/proxy"
	"github.com/zoku/zoku/internal/router"
)

// Certificate states, worst first; the dashboard colours them.
const (
	StateExpired  = "expired"  // NotAfter has passed
	StateExpiring = "expiring" // less than ExpiringWithin (or a third of its lifetime) left
	StateMissing  = "missing"  // no certificate and the order keeps failing
	StateFailing  = "failing"  // served and valid, but renewal keeps failing
	StatePending  = "pending"  // first order under way
	StateValid    = "valid"
)

// ExpiringWithin is how close to NotAfter a certificate turns "expiring"
// (red), unless its lifetime is so short that a third of it is less: a
// 6-day certificate always has fewer than 7 days left and must not look
// like it is failing (traefik#12946).
const ExpiringWithin = 7 * 24 * time.Hour

// Window is an ARI suggested renewal window (RFC 9773 §4.2).
type Window struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// UsedBy names what uses a certificate.
type UsedBy struct {
	// Routes whose host the certificate covers.
	Routes []string `json:"routes"`
	// Targets that deploy it.
	Targets []string `json:"targets"`
}

// Certificate is one managed certificate in the API; docs/admin.md and
// openapi.json describe each field. Times are UTC; nil means unknown.
type Certificate struct {
	Name              string     `json:"name"`
	Domains           []string   `json:"domains"`
	State             string     `json:"state"`
	Issuer            string     `json:"issuer,omitempty"`
	CA                string     `json:"ca,omitempty"`
	OnDemand          bool       `json:"onDemand"`
	Serial            string     `json:"serial,omitempty"`
	KeyType           string     `json:"keyType,omitempty"`
	NotBefore         *time.Time `json:"notBefore,omitempty"`
	NotAfter          *time.Time `json:"notAfter,omitempty"`
	ExpiresInSeconds  *int64     `json:"expiresInSeconds,omitempty"`
	RenewalWindow     *Window    `json:"renewalWindow,omitempty"`
	NextRenewal       *time.Time `json:"nextRenewal,omitempty"`
	NextRenewalReason string     `json:"nextRenewalReason,omitempty"`
	Pending           bool       `json:"pending"`
	Failures          int        `json:"failures"`
	RetryAt           *time.Time `json:"retryAt,omitempty"`
	LastError         string     `json:"lastError,omitempty"`
	UsedBy            UsedBy     `json:"usedBy"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// CertificateOf is the API's view of a certificate status at now; `zoku
// list --json` prints the same (one model, one vocabulary). UsedBy is left
// empty.
func CertificateOf(s certmgr.Status, now time.Time) Certificate {
	c := Certificate{
		Name: s.Name, Domains: s.Domains, State: certState(s, now), Issuer: s.Issuer, CA: s.CA, OnDemand: s.OnDemand, Serial: s.Serial,
		KeyType: s.KeyType, NotBefore: timePtr(s.NotBefore), NotAfter: timePtr(s.NotAfter),
		NextRenewal: timePtr(s.NextRenewal), NextRenewalReason: s.NextReason, Pending: s.Pending,
		Failures: s.Failures, LastError: s.LastErr,
		UsedBy: UsedBy{Routes: []string{}, Targets: []string{}},
	}
	if c.Domains == nil {
		c.Domains = []string{}
	}
	if s.Failures > 0 {
		c.RetryAt = timePtr(s.RetryAt)
	}
	if !s.NotAfter.IsZero() {
		left := int64(s.NotAfter.Sub(now) / time.Second)
		c.ExpiresInSeconds = &left
	}
	if !s.ARIStart.IsZero() && s.ARIEnd.After(s.ARIStart) {
		c.RenewalWindow = &Window{Start: s.ARIStart.UTC(), End: s.ARIEnd.UTC()}
	}
	return c
}

// certState classifies s at now.
func certState(s certmgr.Status, now time.Time) string {
	if s.NotAfter.IsZero() {
		if s.Failures > 0 {
			return StateMissing
		}
		return StatePending
	}
	left := s.NotAfter.Sub(now)
	switch {
	case left <= 0:
		return StateExpired
	case left < min(ExpiringWithin, s.NotAfter.Sub(s.NotBefore)/3):
		return StateExpiring
	case s.Failures > 0:
		return StateFailing
	}
	return StateValid
}

// certificates returns the API view of every managed certificate.
func (a *Admin) certificates(src Sources, now time.Time) []Certificate {
	if src.Certs == nil {
		return []Certificate{}
	}
	var ix routeIndex
	if src.Routes != nil {
		routes, _ := src.Routes.Snapshot()
		ix = indexRoutes(routes)
	}
	targets := a.targets(src)
	sts := src.Certs.Statuses()
	out := make([]Certificate, 0, len(sts))
	for _, s := range sts {
		c := CertificateOf(s, now)
		c.UsedBy.Routes = ix.covered(s.Domains)
		for _, t := range targets {
			if slices.Contains(t.Certificates, s.Name) {
				c.UsedBy.Targets = append(c.UsedBy.Targets, t.Name)
			}
		}
		out = append(out, c)
	}
	return out
}

// routeIndex finds the routes whose host a certificate covers without
// comparing every certificate with every route (10k of each is usual with
// onHostRule).
type routeIndex struct {
	byHost   map[string][]string // host -> route names
	byParent map[string][]string // "example.test" -> routes of one-label hosts under it
}

func indexRoutes(routes []router.RouteInfo) routeIndex {
	ix := routeIndex{byHost: map[string][]string{}, byParent: map[string][]string{}}
	for _, r := range routes {
		h := strings.ToLower(r.Host)
		if h == "" {
			continue
		}
		ix.byHost[h] = append(ix.byHost[h], r.Name)
		if i := strings.IndexByte(h, '.'); i > 0 && !strings.HasPrefix(h, "*.") {
			ix.byParent[h[i+1:]] = append(ix.byParent[h[i+1:]], r.Name)
		}
	}
	return ix
}

// covered returns the names of the routes whose host one of domains
// names: exactly, or through a wildcard's single label. Sorted, unique.
func (ix routeIndex) covered(domains []string) []string {
	out := []string{}
	for _, d := range domains {
		d = strings.ToLower(d)
		out = append(out, ix.byHost[d]...)
		if rest, ok := strings.CutPrefix(d, "*."); ok {
			out = append(out, ix.byParent[rest]...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (a *Admin) listCertificates(w http.ResponseWriter, r *http.Request) {
	now := a.opts.Now()
	writeJSON(w, http.StatusOK, map[string]any{"now": now.UTC(), "certificates": a.certificates(a.sources(), now)})
}

func (a *Admin) getCertificate(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	for _, c := range a.certificates(a.sources(), a.opts.Now()) {
		if c.Name == name {
			writeJSON(w, http.StatusOK, c)
			return
		}
	}
	notManaged(w, r, name)
}

func notManaged(w http.ResponseWriter, r *http.Request, name string) {
	writeProblem(w, r, Problem{Type: ProblemNotFound, Status: http.StatusNotFound,
		Detail: fmt.Sprintf("no managed certificate %q; GET /api/v1/certificates lists them", name)})
}

func noCertificates(w http.ResponseWriter, r *http.Request) {
	writeProblem(w, r, Problem{Type: ProblemUnavailable, Status: http.StatusServiceUnavailable,
		Detail: "the certificate manager is not running in this process"})
}

func (a *Admin) renewCertificate(w http.ResponseWriter, r *http.Request) {
	certs := a.sources().Certs
	if certs == nil {
		noCertificates(w, r)
		return
	}
	name := r.PathValue("name")
	if err := certs.RenewNow(name); err != nil {
		if errors.Is(err, certmgr.ErrNotManaged) {
			notManaged(w, r, name)
			return
		}
		writeProblem(w, r, Problem{Type: ProblemConflict, Status: http.StatusConflict, Detail: err.Error()})
		return
	}
	a.log.Info("renewal requested through the API", "domain", name)
	writeJSON(w, http.StatusAccepted, map[string]string{"name": name, "status": "renewal started; GET /api/v1/certificates/" + name + " shows the outcome"})
}

// revokeReasons are the RFC 5280 §5.3.1 reason codes a CA accepts from a
// subscriber (Let's Encrypt takes these five).
var revokeReasons = map[string]uint{
	"unspecified": 0, "keyCompromise": 1, "superseded": 4, "affiliationChanged": 3, "cessationOfOperation": 5,
}

// revokeTimeout bounds a revocation, which waits for the CA.
const revokeTimeout = time.Minute

func (a *Admin) revokeCertificate(w http.ResponseWriter, r *http.Request) {
	certs := a.sources().Certs
	if certs == nil {
		noCertificates(w, r)
		return
	}
	name := r.PathValue("name")
	var body struct {
		Reason string `json:"reason"`
	}
	if err := decodeOptional(r, &body); err != nil {
		writeProblem(w, r, Problem{Type: ProblemBadRequest, Status: http.StatusBadRequest,
			Detail: "the body must be JSON like {\"reason\": \"keyCompromise\"}: " + err.Error()})
		return
	}
	if body.Reason == "" {
		body.Reason = "unspecified"
	}
	code, ok := revokeReasons[body.Reason]
	if !ok {
		names := make([]string, 0, len(revokeReasons))
		for n := range revokeReasons {
			names = append(names, n)
		}
		slices.Sort(names)
		writeProblem(w, r, Problem{Type: ProblemBadRequest, Status: http.StatusBadRequest,
			Detail: fmt.Sprintf("unknown revocation reason %q; use one of %s", body.Reason, strings.Join(names, ", "))})
		return
	}
	var serial string
	for _, s := range certs.Statuses() {
		if s.Name == name {
			serial = s.Serial
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), revokeTimeout)
	defer cancel()
	if err := certs.Revoke(ctx, name, code); err != nil {
		switch {
		case errors.Is(err, certmgr.ErrNotManaged):
			notManaged(w, r, name)
		case serial == "":
			writeProblem(w, r, Problem{Type: ProblemConflict, Status: http.StatusConflict, Detail: err.Error()})
		default:
			writeProblem(w, r, Problem{Type: ProblemUpstream, Status: http.StatusBadGateway, Detail: err.Error()})
		}
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"name": name, "serial": serial, "reason": body.Reason,
		"status": "revoked; a replacement is being ordered"})
}

// decodeOptional reads an optional small JSON body into v.
func decodeOptional(r *http.Request, v any) error {
	data, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		return err
	}
	if strings.TrimSpace(string(data)) == "" {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func (a *Admin) listRoutes(w http.ResponseWriter, r *http.Request) {
	routes := []router.RouteInfo{}
	if rt := a.sources().Routes; rt != nil {
		if got, _ := rt.Snapshot(); got != nil {
			routes = got
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"routes": routes})
}

func (a *Admin) listServices(w http.ResponseWriter, r *http.Request) {
	services := []router.ServiceInfo{}
	if rt := a.sources().Routes; rt != nil {
		if _, got := rt.Snapshot(); got != nil {
			services = got
		}
		for i := range services {
			if services[i].Servers == nil {
				services[i].Servers = []proxy.ServerStatus{}
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"services": services})
}

// listTCP shows the TCP routes and services (none when the router has
// no TCP routing).
func (a *Admin) listTCP(w http.ResponseWriter, r *http.Request) {
	routes, services := []router.TCPRouteInfo{}, []router.TCPServiceInfo{}
	if tr, ok := a.sources().Routes.(TCPRoutes); ok {
		routes, services = tr.TCPSnapshot()
	}
	writeJSON(w, http.StatusOK, map[string]any{"routes": routes, "services": services})
}

// targets returns the targets with their deploy state; without a deploy
// engine, the configured targets with no state.
func (a *Admin) targets(src Sources) []TargetStatus {
	if src.Targets != nil {
		if ts := src.Targets.Targets(); ts != nil {
			return ts
		}
		return []TargetStatus{}
	}
	out := []TargetStatus{}
	if src.Routes == nil {
		return out
	}
	cfg := src.Routes.Config()
	if cfg == nil {
		return out
	}
	for name, t := range cfg.Targets {
		if t == nil {
			continue
		}
		certs := make([]string, 0, len(t.Certificates))
		for _, ds := range t.Certificates {
			certs = append(certs, ds.Main)
		}
		out = append(out, TargetStatus{Name: name, Type: t.Type, Certificates: certs})
	}
	slices.SortFunc(out, func(x, y TargetStatus) int { return strings.Compare(x.Name, y.Name) })
	return out
}

func (a *Admin) listTargets(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"targets": a.targets(a.sources())})
}

// deployTimeout bounds one deploy through the API.
const deployTimeout = 2 * time.Minute

func (a *Admin) deployTarget(w http.ResponseWriter, r *http.Request) {
	src := a.sources()
	name := r.PathValue("name")
	if !slices.ContainsFunc(a.targets(src), func(t TargetStatus) bool { return t.Name == name }) {
		writeProblem(w, r, Problem{Type: ProblemNotFound, Status: http.StatusNotFound,
			Detail: fmt.Sprintf("no target %q; GET /api/v1/targets lists them", name)})
		return
	}
	if src.Targets == nil {
		writeProblem(w, r, Problem{Type: ProblemUnavailable, Status: http.StatusServiceUnavailable,
			Detail: "deploys are not running in this process"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), deployTimeout)
	defer cancel()
	start := a.opts.Now()
	if err := src.Targets.Deploy(ctx, name); err != nil {
		writeProblem(w, r, Problem{Type: ProblemUpstream, Status: http.StatusBadGateway,
			Detail: fmt.Sprintf("deploy to %s failed: %v", name, err)})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": name, "result": "ok",
		"durationSeconds": a.opts.Now().Sub(start).Seconds()})
}

func (a *Admin) getConfig(w http.ResponseWriter, r *http.Request) {
	rt := a.sources().Routes
	var cfg *config.Config
	if rt != nil {
		cfg = rt.Config()
	}
	if cfg == nil {
		writeProblem(w, r, Problem{Type: ProblemUnavailable, Status: http.StatusServiceUnavailable,
			Detail: "no configuration is running yet"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"file": cfg.Source, "config": cfg.Redacted()})
}

// maxConfigBytes bounds POST /api/v1/config/validate bodies: the limit of
// a configuration file, so any file `zoku run` accepts can be validated.
const maxConfigBytes = config.MaxFileBytes

func (a *Admin) validateConfig(w http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxConfigBytes+1))
	if err != nil {
		writeProblem(w, r, Problem{Type: ProblemBadRequest, Status: http.StatusBadRequest, Detail: "read body: " + err.Error()})
		return
	}
	if len(data) > maxConfigBytes {
		writeProblem(w, r, Problem{Type: ProblemBadRequest, Status: http.StatusRequestEntityTooLarge,
			Detail: fmt.Sprintf("the config is larger than %d MiB, the limit of a configuration file", maxConfigBytes>>20)})
		return
	}
	name := "request.yaml"
	ct := strings.ToLower(r.Header.Get("Content-Type"))
	if f := r.URL.Query().Get("format"); f == "toml" || (f == "" && strings.Contains(ct, "toml")) {
		name = "request.toml"
	} else if f != "" && f != "yaml" {
		writeProblem(w, r, Problem{Type: ProblemBadRequest, Status: http.StatusBadRequest,
			Detail: fmt.Sprintf("format %q is unknown; use yaml or toml", f)})
		return
	}
	cfg, err := config.Parse(name, data, a.opts.Getenv)
	if err != nil {
		p := Problem{Type: ProblemInvalidConfig, Status: http.StatusUnprocessableEntity, Detail: err.Error()}
		var ce *config.Error
		if errors.As(err, &ce) {
			p.Line, p.Column, p.Path = ce.Line, ce.Column, ce.Path
		}
		writeProblem(w, r, p)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"valid": true, "entryPoints": len(cfg.EntryPoints),
		"routes": len(cfg.Routes), "services": len(cfg.Services), "targets": len(cfg.Targets)})
}
