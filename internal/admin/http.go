package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
)

// Problem types (RFC 9457 §3.1.1). They are URNs: stable names a client
// can branch on, listed in docs/admin.md.
const (
	ProblemUnauthorized  = "urn:zoku:problem:unauthorized"
	ProblemNotFound      = "urn:zoku:problem:not-found"
	ProblemBadMethod     = "urn:zoku:problem:method-not-allowed"
	ProblemBadRequest    = "urn:zoku:problem:bad-request"
	ProblemInvalidConfig = "urn:zoku:problem:invalid-config"
	ProblemConflict      = "urn:zoku:problem:conflict"
	ProblemUnavailable   = "urn:zoku:problem:unavailable"
	ProblemUpstream      = "urn:zoku:problem:upstream-failed"
)

// Problem is an RFC 9457 problem document, served as
// application/problem+json. Line, Column and Path are set for an invalid
// config.
type Problem struct {
	Type     string `json:"type"`               // one of the Problem* URNs
	Title    string `json:"title"`              // the HTTP status text
	Status   int    `json:"status"`             // the HTTP status
	Detail   string `json:"detail"`             // one line: what is wrong and the fix
	Instance string `json:"instance,omitempty"` // the request path
	Line     int    `json:"line,omitempty"`     // invalid config: 1-based line
	Column   int    `json:"column,omitempty"`   // invalid config: 1-based column
	Path     string `json:"path,omitempty"`     // invalid config: key path
}

// writeProblem answers with a problem document.
func writeProblem(w http.ResponseWriter, r *http.Request, p Problem) {
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	p.Instance = r.URL.Path
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// endpoint is one route of the admin listener; the OpenAPI test walks
// this table.
type endpoint struct {
	method, path string
	auth         bool
	h            http.HandlerFunc
}

// endpoints is every API route (the dashboard's static files are added
// separately and need no token).
func (a *Admin) endpoints() []endpoint {
	return []endpoint{
		{"GET", "/api/v1/certificates", true, a.listCertificates},
		{"GET", "/api/v1/certificates/{name}", true, a.getCertificate},
		{"POST", "/api/v1/certificates/{name}/renew", true, a.renewCertificate},
		{"POST", "/api/v1/certificates/{name}/revoke", true, a.revokeCertificate},
		{"GET", "/api/v1/routes", true, a.listRoutes},
		{"GET", "/api/v1/services", true, a.listServices},
		{"GET", "/api/v1/tcp", true, a.listTCP},
		{"GET", "/api/v1/targets", true, a.listTargets},
		{"GET", "/api/v1/fleet", true, a.getFleet},
		{"POST", "/api/v1/targets/{name}/deploy", true, a.deployTarget},
		{"GET", "/api/v1/config", true, a.getConfig},
		{"POST", "/api/v1/config/validate", true, a.validateConfig},
		{"GET", "/api/v1/openapi.json", false, serveOpenAPI},
		{"GET", "/metrics", true, a.metrics.serve},
		{"GET", "/debug/pprof/profile", true, cpuProfile},
		{"GET", "/debug/pprof/trace", true, execTrace},
		{"GET", "/debug/pprof/{name}", true, namedProfile},
	}
}

// handler routes every request of the admin listener.
func (a *Admin) handler() http.Handler {
	mux := http.NewServeMux()
	eps := a.endpoints()
	for _, e := range eps {
		h := e.h
		if e.auth {
			h = a.requireToken(h)
		}
		mux.HandleFunc(e.method+" "+e.path, h)
	}
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, e := range eps {
			if pathMatches(e.path, r.URL.Path) && !slices.Contains(allow, e.method) {
				allow = append(allow, e.method)
			}
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeProblem(w, r, Problem{Type: ProblemBadMethod, Status: http.StatusMethodNotAllowed,
				Detail: r.Method + " is not allowed on " + r.URL.Path + "; use " + strings.Join(allow, " or ")})
			return
		}
		writeProblem(w, r, Problem{Type: ProblemNotFound, Status: http.StatusNotFound,
			Detail: "no API endpoint " + r.URL.Path + "; /api/v1/openapi.json lists them"})
	})
	mux.Handle("/", uiHandler())
	return mux
}

// pathMatches reports whether path fits pattern, whose {x} segments match
// any one non-empty segment.
func pathMatches(pattern, path string) bool {
	ps, xs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(xs) {
		return false
	}
	for i := range ps {
		if strings.HasPrefix(ps[i], "{") {
			if xs[i] == "" {
				return false
			}
			continue
		}
		if ps[i] != xs[i] {
			return false
		}
	}
	return true
}

// requireToken lets a request through only with the right bearer token.
func (a *Admin) requireToken(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		want := a.token
		a.mu.Unlock()
		got, ok := bearer(r)
		switch {
		case !ok:
			w.Header().Set("WWW-Authenticate", `Bearer realm="zoku"`)
			writeProblem(w, r, Problem{Type: ProblemUnauthorized, Status: http.StatusUnauthorized,
				Detail: "no bearer token; send Authorization: Bearer <token> (admin.token, or the admin.token file in the storage folder)"})
		case want == nil || subtle.ConstantTimeCompare(hashToken(got), want) != 1:
			w.Header().Set("WWW-Authenticate", `Bearer realm="zoku", error="invalid_token"`)
			writeProblem(w, r, Problem{Type: ProblemUnauthorized, Status: http.StatusUnauthorized,
				Detail: "the bearer token is wrong; use admin.token, or the admin.token file in the storage folder"})
		default:
			next(w, r)
		}
	}
}

// bearer returns the token of an "Authorization: Bearer <token>" header.
func bearer(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// hashToken makes tokens of any length comparable in constant time.
func hashToken(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}
