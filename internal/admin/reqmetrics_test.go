package admin

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/zoku/zoku/internal/router"
)

// TestRequestMetricsPerRoute: the cached children count every request of
// every (route, service, status), also when the first requests of a route
// arrive at once.
func TestRequestMetricsPerRoute(t *testing.T) {
	a := &Admin{}
	a.metrics = newMetrics(a)
	type want struct {
		route, service string
		status, n      int
	}
	wants := []want{{"web", "app", 200, 300}, {"web", "app", 404, 7}, {"api", "app", 200, 50}, {"api", "v2", 502, 3}}
	var wg sync.WaitGroup
	for _, w := range wants {
		for range 4 { // four goroutines race to create each child
			wg.Go(func() {
				for range w.n / 4 {
					a.OnRequest(router.RequestRecord{Route: w.route, Service: w.service, Status: w.status, Duration: time.Millisecond})
				}
			})
		}
	}
	wg.Wait()
	perRoute := map[[2]string]int{}
	for _, w := range wants {
		n := w.n / 4 * 4
		perRoute[[2]string{w.route, w.service}] += n
		if got := testutil.ToFloat64(a.metrics.requests.WithLabelValues(w.route, w.service, strconv.Itoa(w.status))); got != float64(n) {
			t.Errorf("%s/%s %d: counted %v, want %d", w.route, w.service, w.status, got, n)
		}
	}
	for k, n := range perRoute {
		var m dto.Metric
		if err := a.metrics.reqDur.WithLabelValues(k[0], k[1]).(prometheus.Histogram).Write(&m); err != nil {
			t.Fatal(err)
		}
		if got := m.GetHistogram().GetSampleCount(); got != uint64(n) {
			t.Errorf("%s/%s: %d durations observed, want %d", k[0], k[1], got, n)
		}
	}
	if got := testutil.CollectAndCount(a.metrics.requests); got != len(wants) {
		t.Errorf("%d request series, want %d", got, len(wants))
	}
}

// BenchmarkOnRequest is the metrics' cost of one routed request.
func BenchmarkOnRequest(b *testing.B) {
	a := &Admin{}
	a.metrics = newMetrics(a)
	rec := router.RequestRecord{Route: "bench", Service: "backend", Status: 200, Duration: 3 * time.Millisecond}
	for b.Loop() {
		a.OnRequest(rec)
	}
}
