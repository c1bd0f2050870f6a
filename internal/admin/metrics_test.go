package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/zoku/zoku/internal/certmgr"
)

// scrape returns /metrics as sample line → value.
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, body := call(t, base, "GET", "/metrics", testToken, "")
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d %s", resp.StatusCode, body)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// families returns the zoku_ metric family names in samples.
func families(samples map[string]float64) []string {
	var out []string
	for s := range samples {
		name, _, _ := strings.Cut(s, "{")
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suf); ok && strings.HasSuffix(base, "_seconds") {
				name = base
			}
		}
		if strings.HasPrefix(name, "zoku_") && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// signal is a slog handler that reports records whose message contains
// want, so a test waits for a log line instead of sleeping.
type signal struct {
	want string
	ch   chan string
}

func (s *signal) Enabled(context.Context, slog.Level) bool { return true }
func (s *signal) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, s.want) {
		select {
		case s.ch <- r.Message:
		default:
		}
	}
	return nil
}
func (s *signal) WithAttrs([]slog.Attr) slog.Handler { return s }
func (s *signal) WithGroup(string) slog.Handler      { return s }

// TestMetricsAfterIssuance scrapes /metrics after a real issuance from
// Pebble, a routed request, a deploy, reloads, a failed TLS handshake and
// a failed renewal (CA down), and checks every metric family.
func TestMetricsAfterIssuance(t *testing.T) {
	const name = "metrics.example.test"
	r := newRig(t, rigOptions{}, name)
	leaf := r.leaf(t, name)

	m := scrape(t, r.url)
	key := fmt.Sprintf("%s{name=%q}", mCertNotAfter, name)
	got, ok := m[key]
	if !ok {
		t.Fatalf("%s missing from /metrics", key)
	}
	if want := float64(leaf.NotAfter.Unix()); math.Abs(got-want) > 1 {
		t.Errorf("%s = %f, want %f (the leaf's NotAfter)", key, got, want)
	}

	// A request through the router.
	req, _ := http.NewRequest("GET", "http://"+r.rt.Addr("web").String()+"/", nil)
	req.Host = name
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	// And one in HTTP/1.0, which the entry point's loop hands to net/http.
	c10, err := net.DialTimeout("tcp", r.rt.Addr("web").String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c10.SetDeadline(time.Now().Add(30 * time.Second)) // a hang guard
	fmt.Fprintf(c10, "GET / HTTP/1.0\r\nHost: %s\r\n\r\n", name)
	_, _ = io.Copy(io.Discard, c10) // HTTP/1.0: the server closes
	c10.Close()

	// A deploy, two reloads, a failed TLS handshake on a real server.
	if resp, body := call(t, r.url, "POST", "/api/v1/targets/lb1/deploy", testToken, ""); resp.StatusCode != 200 {
		t.Fatalf("deploy: %d %s", resp.StatusCode, body)
	}
	r.adm.OnReload(true)
	r.adm.OnReload(false)
	sig := &signal{want: "TLS handshake error", ch: make(chan string, 1)}
	tsrv := httptest.NewUnstartedServer(http.NotFoundHandler())
	tsrv.Config.ErrorLog = r.adm.ServerErrorLog(slog.New(sig))
	tsrv.StartTLS()
	t.Cleanup(tsrv.Close)
	conn, err := net.DialTimeout("tcp", tsrv.Listener.Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = conn.Write([]byte{0x16, 0x03, 0x01, 0x00, 0x02, 0xff, 0xff}) // a broken ClientHello
	conn.Close()
	select {
	case <-sig.ch:
	case <-time.After(30 * time.Second):
		t.Fatal("no TLS handshake error logged within 30 s")
	}

	// A renewal while the CA is down.
	r.ca.SetDown(true)
	if err := r.mgr.RenewNow(name); err != nil {
		t.Fatal(err)
	}
	for {
		e := r.next(t)
		if e.Kind == certmgr.EventFailed {
			break
		}
	}

	m = scrape(t, r.url)
	srv := r.rt.Config().Services["app"].Servers[0].URL
	wants := []struct {
		sample string
		want   float64
	}{
		{fmt.Sprintf("%s{name=%q}", mCertNotBefore, name), float64(leaf.NotBefore.Unix())},
		{fmt.Sprintf("%s{name=%q}", mCertFailures, name), 1},
		{fmt.Sprintf("%s{kind=\"obtained\",name=%q}", mCertEvents, name), 1},
		{fmt.Sprintf("%s{kind=\"failed\",name=%q}", mCertEvents, name), 1},
		{mACMEErrors + `{type="serverInternal"}`, 1},
		{fmt.Sprintf("%s{route=\"r0\",service=\"app\",status=\"200\"}", mHTTPRequests), 2},
		{fmt.Sprintf("%s_count{route=\"r0\",service=\"app\"}", mHTTPDuration), 2},
		{fmt.Sprintf("%s{server=%q,service=\"app\"}", mUpstreamUp, srv), 1},
		{mConfigReloads + `{result="success"}`, 1},
		{mConfigReloads + `{result="failure"}`, 1},
		{mTLSHandshakeErrs, 1},
		{mHandedOver + `{entry_point="web",reason="version"}`, 1},
		{mDeployAttempts + `{result="ok",target="lb1"}`, 1},
		{mDeployDuration + `_count{target="lb1"}`, 1},
		{mDeployFailures + `{target="lb1"}`, 0},
	}
	for _, w := range wants {
		if got, ok := m[w.sample]; !ok || math.Abs(got-w.want) > 1 {
			t.Errorf("%s = %v (present %v), want %v", w.sample, got, ok, w.want)
		}
	}
	for _, op := range []string{"obtain", "renew"} {
		found := false
		for s := range m {
			if strings.HasPrefix(s, mACMEOps+"{") && strings.Contains(s, `operation="`+op+`"`) {
				found = true
			}
		}
		if !found {
			t.Errorf("no %s sample for operation %q", mACMEOps, op)
		}
	}
	if got, want := families(m), slices.Sorted(slices.Values(MetricNames())); !slices.Equal(got, want) {
		t.Errorf("metric families served:\n  %v\nMetricNames():\n  %v", got, want)
	}

	// The API says the same: valid, but renewal failing.
	var c Certificate
	_, body := call(t, r.url, "GET", "/api/v1/certificates/"+name, testToken, "")
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatal(err)
	}
	if c.State != StateFailing || c.LastError == "" || c.RetryAt == nil {
		t.Errorf("after a failed renewal: state %q, lastError %q, retryAt %v; want failing with the error and a retry time", c.State, c.LastError, c.RetryAt)
	}
}

// TestCertificateLogKeys checks that every certificate event line (the
// manager's, and the deploy lines) has the same keys: domain, issuer,
// target, serial, error; and that an issuance is logged once.
func TestCertificateLogKeys(t *testing.T) {
	r := newRig(t, rigOptions{}, "logs.example.test")
	if resp, body := call(t, r.url, "POST", "/api/v1/targets/lb1/deploy", testToken, ""); resp.StatusCode != 200 {
		t.Fatalf("deploy: %d %s", resp.StatusCode, body)
	}
	lines := 0
	for _, line := range strings.Split(r.logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil || (rec["component"] != "certificates" && rec["event"] == nil) {
			continue
		}
		lines++
		for _, k := range []string{"domain", "issuer", "target", "serial", "error"} {
			if _, ok := rec[k]; !ok {
				t.Errorf("line %q has no %q key", line, k)
			}
		}
		if rec["domain"] != "logs.example.test" || rec["serial"] == "" {
			t.Errorf("line %q: want domain logs.example.test and a serial", line)
		}
	}
	if lines < 2 {
		t.Errorf("%d certificate lines, want the obtain and the deploy:\n%s", lines, r.logs.String())
	}
	if n := strings.Count(r.logs.String(), `"msg":"certificate obtained"`); n != 1 {
		t.Errorf("the issuance is logged %d times, want once:\n%s", n, r.logs.String())
	}
}

// TestAlertRules parses docs/alerts.yaml as Prometheus rules and checks
// that each expression names only metrics /metrics serves.
func TestAlertRules(t *testing.T) {
	data, err := os.ReadFile("../../docs/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.UnmarshalWithOptions(data, &file, yaml.Strict()); err != nil {
		t.Fatalf("docs/alerts.yaml: %v", err)
	}
	known := MetricNames()
	metric := regexp.MustCompile(`\bzoku_[a-z0-9_]+`)
	var alerts []string
	for _, g := range file.Groups {
		for _, rule := range g.Rules {
			alerts = append(alerts, rule.Alert)
			t.Run(rule.Alert, func(t *testing.T) {
				if rule.Alert == "" || strings.TrimSpace(rule.Expr) == "" || rule.Annotations["summary"] == "" {
					t.Fatalf("rule %+v needs alert, expr and a summary annotation", rule)
				}
				if rule.For != "" {
					if _, err := time.ParseDuration(rule.For); err != nil {
						t.Errorf("for %q: %v", rule.For, err)
					}
				}
				names := metric.FindAllString(rule.Expr, -1)
				if len(names) == 0 {
					t.Errorf("expr %q names no zoku metric", rule.Expr)
				}
				for _, n := range names {
					base := n
					for _, suf := range []string{"_bucket", "_sum", "_count"} {
						if b, ok := strings.CutSuffix(n, suf); ok && slices.Contains(known, b) {
							base = b
						}
					}
					if !slices.Contains(known, base) {
						t.Errorf("expr names %s, which /metrics does not serve", n)
					}
				}
			})
		}
	}
	for _, want := range []string{"ZokuCertificateExpiresSoon", "ZokuCertificateRenewalFailing", "ZokuTargetDeployFailing"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("alert %s missing from docs/alerts.yaml", want)
		}
	}
}

// TestServerErrorLogCountsOnlyHandshakes checks the classification of
// http.Server error lines.
func TestServerErrorLogCountsOnlyHandshakes(t *testing.T) {
	a := New(Options{})
	l := a.ServerErrorLog(slog.New(slog.DiscardHandler))
	for _, tc := range []struct {
		line string
		want float64
	}{
		{"http: TLS handshake error from 127.0.0.1:5555: EOF", 1},
		{"http: Accept error: too many open files; retrying in 5ms", 1},
		{"http: TLS handshake error from [::1]:5555: tls: unsupported versions", 2},
	} {
		t.Run(tc.line, func(t *testing.T) {
			l.Print(tc.line)
			if got := counterValue(t, a, mTLSHandshakeErrs); got != tc.want {
				t.Fatalf("count = %v, want %v", got, tc.want)
			}
		})
	}
	var nilAdmin *Admin // admin disabled: the logger still works
	nilAdmin.ServerErrorLog(slog.New(slog.DiscardHandler)).Print("http: TLS handshake error from x: EOF")
}

// TestHandOverCounted checks the hand-over counter's labels and counts,
// and that a disabled admin takes the hook.
func TestHandOverCounted(t *testing.T) {
	a := New(Options{})
	a.OnHandOver("websecure", "http2")
	a.OnHandOver("websecure", "http2")
	if got := counterValue(t, a, mHandedOver); got != 2 {
		t.Fatalf("count = %v, want 2", got)
	}
	mfs, err := a.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != mHandedOver {
			continue
		}
		labels := map[string]string{}
		for _, l := range mf.GetMetric()[0].GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["entry_point"] != "websecure" || labels["reason"] != "http2" {
			t.Errorf("labels %v", labels)
		}
	}
	var nilAdmin *Admin
	nilAdmin.OnHandOver("web", "version")
}

func counterValue(t *testing.T, a *Admin, name string) float64 {
	t.Helper()
	mfs, err := a.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("%s not gathered", name)
	return 0
}
