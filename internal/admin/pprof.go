package admin

import (
	"net/http"
	"net/http/pprof"
	rpprof "runtime/pprof"
	"strconv"
	"sync/atomic"
)

// The Go runtime's profiles, for an operator chasing CPU or memory: the
// handlers are net/http/pprof's, behind the admin token like the API.
// What zoku adds is a bound on how long a profile may run (a CPU profile
// holds the one profiler the runtime has) and a problem document for a
// request it refuses.

// maxProfileSeconds bounds a CPU profile, an execution trace and a delta
// profile.
const maxProfileSeconds = 300

// profileSeconds checks the optional seconds parameter and answers the
// request itself when it is out of range; it reports whether to go on.
func profileSeconds(w http.ResponseWriter, r *http.Request) bool {
	v := r.URL.Query().Get("seconds")
	if v == "" {
		return true
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 1 && n <= maxProfileSeconds {
		return true
	}
	writeProblem(w, r, Problem{Type: ProblemBadRequest, Status: http.StatusBadRequest,
		Detail: "seconds " + quoteShort(v) + " is not a whole number from 1 to " + strconv.Itoa(maxProfileSeconds) + "; pass e.g. seconds=30"})
	return false
}

// The runtime records one CPU profile and one execution trace at a time:
// a second request gets a 409 problem document instead of net/http/pprof's
// plain-text 500.
var cpuProfiling, tracing atomic.Bool

// cpuProfile records the CPU for seconds (default 30) and answers the
// profile in pprof's format (go tool pprof reads it).
func cpuProfile(w http.ResponseWriter, r *http.Request) {
	alone(w, r, &cpuProfiling, "CPU profile", pprof.Profile)
}

// execTrace records an execution trace for seconds (default 1; go tool
// trace reads it).
func execTrace(w http.ResponseWriter, r *http.Request) {
	alone(w, r, &tracing, "trace", pprof.Trace)
}

// alone runs h when seconds is valid and no other request holds busy.
func alone(w http.ResponseWriter, r *http.Request, busy *atomic.Bool, what string, h http.HandlerFunc) {
	if !profileSeconds(w, r) {
		return
	}
	if !busy.CompareAndSwap(false, true) {
		writeProblem(w, r, Problem{Type: ProblemConflict, Status: http.StatusConflict,
			Detail: "a " + what + " is already being recorded; wait for it to end, or cancel that request"})
		return
	}
	defer busy.Store(false)
	h(w, r)
}

// namedProfile answers one of the runtime's named profiles (heap, allocs,
// goroutine, threadcreate, block, mutex): in pprof's format, as text with
// debug=1, and as a delta over the last seconds with seconds=N.
func namedProfile(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if rpprof.Lookup(name) == nil {
		writeProblem(w, r, Problem{Type: ProblemNotFound, Status: http.StatusNotFound,
			Detail: "no profile " + quoteShort(name) + "; use profile (CPU), trace, heap, allocs, goroutine, threadcreate, block or mutex"})
		return
	}
	if profileSeconds(w, r) {
		pprof.Handler(name).ServeHTTP(w, r)
	}
}

// quoteShort quotes a value taken from a request for an error's detail,
// cut to 64 bytes.
func quoteShort(v string) string {
	if len(v) > 64 {
		return strconv.Quote(v[:64]) + "..."
	}
	return strconv.Quote(v)
}
