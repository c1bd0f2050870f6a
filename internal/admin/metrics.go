package admin

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/zoku/zoku/internal/acmeclient"
	"github.com/zoku/zoku/internal/certmgr"
	"github.com/zoku/zoku/internal/router"
)

// Metric names, in one place: docs/admin.md lists them, docs/alerts.yaml
// uses them, and a test checks this list against what /metrics serves.
const (
	mCertNotBefore     = "zoku_certificate_not_before_seconds"
	mCertNotAfter      = "zoku_certificate_not_after_seconds"
	mCertWindowStart   = "zoku_certificate_renewal_window_start_seconds"
	mCertWindowEnd     = "zoku_certificate_renewal_window_end_seconds"
	mCertNextRenewal   = "zoku_certificate_next_renewal_seconds"
	mCertFailures      = "zoku_certificate_renewal_failures"
	mCertInfo          = "zoku_certificate_info"
	mCertEvents        = "zoku_certificate_events_total"
	mACMEErrors        = "zoku_acme_errors_total"
	mACMEOps           = "zoku_acme_operations_total"
	mACMEOpDuration    = "zoku_acme_operation_duration_seconds"
	mHTTPRequests      = "zoku_http_requests_total"
	mHTTPDuration      = "zoku_http_request_duration_seconds"
	mUpstreamUp        = "zoku_upstream_up"
	mConfigReloads     = "zoku_config_reloads_total"
	mTLSHandshakeErrs  = "zoku_tls_handshake_errors_total"
	mHandedOver        = "zoku_http_connections_handed_over_total"
	mDeployAttempts    = "zoku_deploy_attempts_total"
	mDeployDuration    = "zoku_deploy_duration_seconds"
	mDeployLastAttempt = "zoku_deploy_last_attempt_timestamp_seconds"
	mDeployLastSuccess = "zoku_deploy_last_success_timestamp_seconds"
	mDeployFailures    = "zoku_deploy_failures"
	mDeployNextRun     = "zoku_deploy_next_run_timestamp_seconds"
	mFleetNodes        = "zoku_fleet_nodes"
	mFleetHeartbeat    = "zoku_fleet_node_heartbeat_timestamp_seconds"
	mFleetDiffer       = "zoku_fleet_certificates_serials_differ"
)

// MetricNames returns the name of every zoku_ metric family /metrics can
// serve (histograms by their base name).
func MetricNames() []string {
	return []string{
		mCertNotBefore, mCertNotAfter, mCertWindowStart, mCertWindowEnd, mCertNextRenewal, mCertFailures,
		mCertInfo, mCertEvents, mACMEErrors, mACMEOps, mACMEOpDuration, mHTTPRequests, mHTTPDuration,
		mUpstreamUp, mConfigReloads, mTLSHandshakeErrs, mHandedOver, mDeployAttempts, mDeployDuration,
		mDeployLastAttempt, mDeployLastSuccess, mDeployFailures, mDeployNextRun,
		mFleetNodes, mFleetHeartbeat, mFleetDiffer,
	}
}

// metrics is the admin's own registry (never the global one) and the
// counters the hooks feed.
type metrics struct {
	reg        *prometheus.Registry
	handler    http.Handler
	certEvents *prometheus.CounterVec
	acmeErrors *prometheus.CounterVec
	acmeOps    *prometheus.CounterVec
	acmeOpDur  *prometheus.HistogramVec
	requests   *prometheus.CounterVec
	reqDur     *prometheus.HistogramVec
	reloads    *prometheus.CounterVec
	tlsErrors  prometheus.Counter
	handedOver *prometheus.CounterVec
	deploys    *prometheus.CounterVec
	deployDur  *prometheus.HistogramVec

	// perRoute caches the request metrics' children of each (route,
	// service), so a request costs no label hashing or formatting; the
	// vectors never drop children, so neither does the cache.
	perRoute sync.Map // routeKey → *routeMetrics
}

type routeKey struct{ route, service string }

// routeMetrics are one route's request metrics.
type routeMetrics struct {
	dur    prometheus.Observer
	byCode sync.Map // status code (int) → prometheus.Counter
}

// routeOf returns the request metrics of (route, service).
func (m *metrics) routeOf(route, service string) *routeMetrics {
	k := routeKey{route, service}
	if v, ok := m.perRoute.Load(k); ok {
		return v.(*routeMetrics)
	}
	v, _ := m.perRoute.LoadOrStore(k, &routeMetrics{dur: m.reqDur.WithLabelValues(route, service)})
	return v.(*routeMetrics)
}

// count counts one request of status on rm's route.
func (m *metrics) count(rm *routeMetrics, route, service string, status int) {
	if c, ok := rm.byCode.Load(status); ok {
		c.(prometheus.Counter).Inc()
		return
	}
	c, _ := rm.byCode.LoadOrStore(status, m.requests.WithLabelValues(route, service, strconv.Itoa(status)))
	c.(prometheus.Counter).Inc()
}

// slowBuckets fit ACME orders and deploys: a second to ten minutes.
var slowBuckets = []float64{0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600}

func newMetrics(a *Admin) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.certEvents = prometheus.NewCounterVec(prometheus.CounterOpts{Name: mCertEvents,
		Help: "Certificate events by certificate name and kind (obtained, renewed, failed, loaded, revoked)."}, []string{"name", "kind"})
	m.acmeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: mACMEErrors,
		Help: "Failed certificate orders by ACME problem type (e.g. rateLimited), or unreachable / other."}, []string{"type"})
	m.acmeOps = prometheus.NewCounterVec(prometheus.CounterOpts{Name: mACMEOps,
		Help: "ACME operations (obtain, renew, ari, revoke) by issuer and result (ok, error)."}, []string{"issuer", "operation", "result"})
	m.acmeOpDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: mACMEOpDuration,
		Help: "Duration of ACME operations by issuer and operation.", Buckets: slowBuckets}, []string{"issuer", "operation"})
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: mHTTPRequests,
		Help: "Routed HTTP requests by route, service and status code."}, []string{"route", "service", "status"})
	m.reqDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: mHTTPDuration,
		Help: "Routed HTTP request latency by route and service.", Buckets: prometheus.DefBuckets}, []string{"route", "service"})
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{Name: mConfigReloads,
		Help: "Configuration reloads by result (success, failure)."}, []string{"result"})
	m.tlsErrors = prometheus.NewCounter(prometheus.CounterOpts{Name: mTLSHandshakeErrs,
		Help: "Failed TLS handshakes on the entry points."})
	m.handedOver = prometheus.NewCounterVec(prometheus.CounterOpts{Name: mHandedOver,
		Help: "Connections zoku's HTTP/1.1 loop handed to Go's net/http server, by entry point and why (http2, version, expect, upgrade, method, large-head, malformed)."},
		[]string{"entry_point", "reason"})
	m.deploys = prometheus.NewCounterVec(prometheus.CounterOpts{Name: mDeployAttempts,
		Help: "Deploys to targets by target and result (ok, error)."}, []string{"target", "result"})
	m.deployDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: mDeployDuration,
		Help: "Duration of deploys by target.", Buckets: slowBuckets}, []string{"target"})
	for _, r := range []string{"success", "failure"} {
		m.reloads.WithLabelValues(r)
	}
	m.reg.MustRegister(m.certEvents, m.acmeErrors, m.acmeOps, m.acmeOpDur, m.requests, m.reqDur, m.reloads,
		m.tlsErrors, m.handedOver, m.deploys, m.deployDur, &liveCollector{a: a},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
	return m
}

func (m *metrics) serve(w http.ResponseWriter, r *http.Request) { m.handler.ServeHTTP(w, r) }

// liveCollector computes the certificate, upstream and target gauges at
// scrape time from the sources, so they are never stale.
type liveCollector struct{ a *Admin }

var (
	dCertNotBefore     = prometheus.NewDesc(mCertNotBefore, "Certificate start of validity, Unix seconds.", []string{"name"}, nil)
	dCertNotAfter      = prometheus.NewDesc(mCertNotAfter, "Certificate expiry, Unix seconds.", []string{"name"}, nil)
	dCertWindowStart   = prometheus.NewDesc(mCertWindowStart, "Start of the CA's suggested renewal window (ARI, RFC 9773), Unix seconds.", []string{"name"}, nil)
	dCertWindowEnd     = prometheus.NewDesc(mCertWindowEnd, "End of the CA's suggested renewal window (ARI, RFC 9773), Unix seconds.", []string{"name"}, nil)
	dCertNextRenewal   = prometheus.NewDesc(mCertNextRenewal, "When zoku plans to renew the certificate, Unix seconds.", []string{"name"}, nil)
	dCertFailures      = prometheus.NewDesc(mCertFailures, "Failed orders for the certificate since its last success.", []string{"name"}, nil)
	dCertInfo          = prometheus.NewDesc(mCertInfo, "The served certificate's issuer, serial (hex) and key type; always 1.", []string{"name", "issuer", "serial", "key_type"}, nil)
	dUpstreamUp        = prometheus.NewDesc(mUpstreamUp, "1 when the server may take requests, 0 when health checks or passive checks took it out.", []string{"service", "server"}, nil)
	dDeployLastAttempt = prometheus.NewDesc(mDeployLastAttempt, "When the last deploy attempt to the target ended, Unix seconds.", []string{"target"}, nil)
	dDeployLastSuccess = prometheus.NewDesc(mDeployLastSuccess, "When a deploy to the target last succeeded, Unix seconds.", []string{"target"}, nil)
	dDeployFailures    = prometheus.NewDesc(mDeployFailures, "Failed deploys to the target since its last success.", []string{"target"}, nil)
	dDeployNextRun     = prometheus.NewDesc(mDeployNextRun, "When the next deploy or check of the target is scheduled, Unix seconds.", []string{"target"}, nil)
	dFleetNodes        = prometheus.NewDesc(mFleetNodes, "Nodes on the shared storage by state (live, stale: no heartbeat for three intervals, stopped).", []string{"state"}, nil)
	dFleetHeartbeat    = prometheus.NewDesc(mFleetHeartbeat, "When the node last published its status, Unix seconds (its clock).", []string{"node"}, nil)
	dFleetDiffer       = prometheus.NewDesc(mFleetDiffer, "Certificates that the live nodes do not all serve with the same serial.", nil, nil)
)

// fleetScrapeTimeout bounds the storage reads of one scrape.
const fleetScrapeTimeout = 10 * time.Second

func (c *liveCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{dCertNotBefore, dCertNotAfter, dCertWindowStart, dCertWindowEnd, dCertNextRenewal,
		dCertFailures, dCertInfo, dUpstreamUp, dDeployLastAttempt, dDeployLastSuccess, dDeployFailures, dDeployNextRun,
		dFleetNodes, dFleetHeartbeat, dFleetDiffer} {
		ch <- d
	}
}

func (c *liveCollector) Collect(ch chan<- prometheus.Metric) {
	src := c.a.sources()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	stamp := func(d *prometheus.Desc, t time.Time, label string) {
		if !t.IsZero() {
			gauge(d, float64(t.UnixMilli())/1000, label)
		}
	}
	if src.Certs != nil {
		for _, s := range src.Certs.Statuses() {
			gauge(dCertFailures, float64(s.Failures), s.Name)
			if s.NotAfter.IsZero() {
				continue
			}
			stamp(dCertNotBefore, s.NotBefore, s.Name)
			stamp(dCertNotAfter, s.NotAfter, s.Name)
			stamp(dCertNextRenewal, s.NextRenewal, s.Name)
			if !s.ARIStart.IsZero() && s.ARIEnd.After(s.ARIStart) {
				stamp(dCertWindowStart, s.ARIStart, s.Name)
				stamp(dCertWindowEnd, s.ARIEnd, s.Name)
			}
			gauge(dCertInfo, 1, s.Name, s.Issuer, s.Serial, s.KeyType)
		}
	}
	if src.Routes != nil {
		_, services := src.Routes.Snapshot()
		for _, svc := range services {
			for _, srv := range svc.Servers {
				up := 0.0
				if srv.Up {
					up = 1
				}
				gauge(dUpstreamUp, up, svc.Name, srv.URL)
			}
		}
	}
	if src.Targets != nil {
		for _, t := range src.Targets.Targets() {
			stamp(dDeployLastAttempt, t.LastDeploy, t.Name)
			stamp(dDeployLastSuccess, t.LastSuccess, t.Name)
			stamp(dDeployNextRun, t.NextRun, t.Name)
			gauge(dDeployFailures, float64(t.Failures), t.Name)
		}
	}
	if src.Fleet != nil {
		ctx, cancel := context.WithTimeout(context.Background(), fleetScrapeTimeout)
		defer cancel()
		nodes, _ := src.Fleet.Nodes(ctx) // on error: this node alone
		now := c.a.opts.Now()
		count := map[string]int{certmgr.NodeLive: 0, certmgr.NodeStale: 0, certmgr.NodeStopped: 0}
		byName := map[string][]cellSource{}
		for _, n := range nodes {
			st := n.State(now)
			count[st]++
			stamp(dFleetHeartbeat, n.Heartbeat, n.ID)
			for _, cert := range n.Certificates {
				byName[cert.Name] = append(byName[cert.Name], cellSource{node: n.ID, live: st == certmgr.NodeLive, c: cert})
			}
		}
		for st, n := range count {
			gauge(dFleetNodes, float64(n), st)
		}
		differ := 0
		for _, cells := range byName {
			if serialsDiffer(cells) {
				differ++
			}
		}
		gauge(dFleetDiffer, float64(differ))
	}
}

// OnCertEvent counts a certificate event. Pass it to
// certmgr.Options.OnEvent.
func (a *Admin) OnCertEvent(e certmgr.Event) {
	if a == nil {
		return
	}
	a.metrics.certEvents.WithLabelValues(e.Name, string(e.Kind)).Inc()
	if e.Kind == certmgr.EventFailed && e.Err != nil {
		a.metrics.acmeErrors.WithLabelValues(acmeErrorType(e.Err)).Inc()
	}
	// The manager writes the event's one log line (same keys as
	// CertAttrs); logging it here too would show every event twice.
}

// CertAttrs are the log keys of every certificate event, always all
// present (empty when unknown) so a log query can rely on them: domain,
// issuer, target, serial, error, plus not_after when the leaf is known.
func CertAttrs(domain, target string, leaf *x509.Certificate, err error) []slog.Attr {
	var issuer, serial, errText string
	if leaf != nil {
		issuer, serial = leaf.Issuer.CommonName, leaf.SerialNumber.Text(16)
	}
	if err != nil {
		errText = err.Error()
	}
	attrs := []slog.Attr{slog.String("domain", domain), slog.String("issuer", issuer),
		slog.String("target", target), slog.String("serial", serial), slog.String("error", errText)}
	if leaf != nil {
		attrs = append(attrs, slog.String("not_after", leaf.NotAfter.UTC().Format(time.RFC3339)))
	}
	return attrs
}

// acmeErrorType names an order failure for zoku_acme_errors_total: the
// ACME problem type without its urn prefix, "unreachable" for a network
// failure, "other" otherwise.
func acmeErrorType(err error) string {
	var p *acmeclient.Problem
	if errors.As(err, &p) && p.Type != "" {
		return strings.TrimPrefix(p.Type, "urn:ietf:params:acme:error:")
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return "unreachable"
	}
	return "other"
}

// OnRequest counts a routed request; pass it to router.Deps.OnRequest.
func (a *Admin) OnRequest(rec router.RequestRecord) {
	if a == nil {
		return
	}
	rm := a.metrics.routeOf(rec.Route, rec.Service)
	a.metrics.count(rm, rec.Route, rec.Service, rec.Status)
	rm.dur.Observe(rec.Duration.Seconds())
}

// OnHandOver counts a connection an entry point's HTTP/1.1 loop handed to
// net/http's server; pass it to router.Deps.OnHandOver.
func (a *Admin) OnHandOver(entryPoint, reason string) {
	if a == nil {
		return
	}
	a.metrics.handedOver.WithLabelValues(entryPoint, reason).Inc()
}

// OnReload counts a configuration reload (ok false: refused, the running
// config stays).
func (a *Admin) OnReload(ok bool) {
	if a == nil {
		return
	}
	r := "success"
	if !ok {
		r = "failure"
	}
	a.metrics.reloads.WithLabelValues(r).Inc()
}

// DeployEvent is one finished deploy of a certificate to a target.
type DeployEvent struct {
	Target   string
	Domain   string            // certificate name
	Leaf     *x509.Certificate // what was deployed; may be nil
	Duration time.Duration
	Err      error
}

// OnDeploy counts a deploy and logs it with the certificate keys (so the
// deploy code need not log it again).
func (a *Admin) OnDeploy(e DeployEvent) {
	if a == nil {
		return
	}
	result, level, msg := "ok", slog.LevelInfo, "certificate deployed"
	if e.Err != nil {
		result, level, msg = "error", slog.LevelError, "certificate deploy failed"
	}
	a.metrics.deploys.WithLabelValues(e.Target, result).Inc()
	a.metrics.deployDur.WithLabelValues(e.Target).Observe(e.Duration.Seconds())
	attrs := append(CertAttrs(e.Domain, e.Target, e.Leaf, e.Err), slog.Float64("duration_s", e.Duration.Seconds()))
	a.certLog.LogAttrs(context.Background(), level, msg, attrs...)
}

// ServerErrorLog returns a logger for http.Server.ErrorLog: TLS handshake
// errors are counted in zoku_tls_handshake_errors_total and logged at
// debug (scanners make many), other lines go to l at warn.
func (a *Admin) ServerErrorLog(l *slog.Logger) *log.Logger {
	return log.New(&errorLogWriter{a: a, l: l}, "", 0)
}

type errorLogWriter struct {
	a *Admin
	l *slog.Logger
}

func (w *errorLogWriter) Write(p []byte) (int, error) {
	msg := string(bytes.TrimSpace(p))
	if strings.Contains(msg, "TLS handshake error") {
		if w.a != nil {
			w.a.metrics.tlsErrors.Inc()
		}
		w.l.Debug(msg)
		return len(p), nil
	}
	w.l.Warn(msg)
	return len(p), nil
}

// InstrumentIssuer wraps one of the manager's issuers so every ACME
// operation is timed and counted, labelled with the host of the CA's
// directory URL. On a nil Admin it returns next unchanged.
func (a *Admin) InstrumentIssuer(next certmgr.Issuer) certmgr.Issuer {
	if a == nil {
		return next
	}
	return &instrumented{m: a.metrics, next: next}
}

type instrumented struct {
	m    *metrics
	next certmgr.Issuer
}

var _ certmgr.Issuer = (*instrumented)(nil)

func (i *instrumented) observe(op string, start time.Time, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	ca := caHost(i.next.Server())
	i.m.acmeOps.WithLabelValues(ca, op, result).Inc()
	i.m.acmeOpDur.WithLabelValues(ca, op).Observe(time.Since(start).Seconds())
}

// caHost names a CA by its directory URL's host (and port).
func caHost(directory string) string {
	if u, err := url.Parse(directory); err == nil && u.Host != "" {
		return u.Host
	}
	return directory
}

// Server is the wrapped issuer's directory URL.
func (i *instrumented) Server() string { return i.next.Server() }

func (i *instrumented) Obtain(ctx context.Context, req acmeclient.ObtainRequest) (*acmeclient.Certificate, error) {
	start := time.Now()
	b, err := i.next.Obtain(ctx, req)
	i.observe("obtain", start, err)
	return b, err
}

func (i *instrumented) Renew(ctx context.Context, req acmeclient.RenewRequest) (*acmeclient.Certificate, error) {
	start := time.Now()
	b, err := i.next.Renew(ctx, req)
	i.observe("renew", start, err)
	return b, err
}

func (i *instrumented) RenewalInfo(ctx context.Context, leaf *x509.Certificate) (*acmeclient.RenewalInfo, error) {
	start := time.Now()
	ri, err := i.next.RenewalInfo(ctx, leaf)
	if !errors.Is(err, acmeclient.ErrNoARI) {
		i.observe("ari", start, err)
	}
	return ri, err
}

func (i *instrumented) Revoke(ctx context.Context, name string, certPEM []byte, reason *uint) error {
	start := time.Now()
	err := i.next.Revoke(ctx, name, certPEM, reason)
	i.observe("revoke", start, err)
	return err
}
