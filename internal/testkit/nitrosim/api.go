package nitrosim

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

const apiPrefix = "/nitro/v1/config/"

// reply is one API answer: code 0 is success.
type reply struct {
	status  int
	code    int
	message string
	key     string // resource key of a GET body
	value   any    // []map[string]any or map[string]any
}

func ok(status int) reply { return reply{status: status} }

// fail builds an error reply with the HTTP status the appliance uses for
// the code: 401 for authentication, 404 for "no such ...", 409 for
// "already exists", 400 for a malformed request, and 599 ("NetScaler
// specific error") for everything else.
func fail(code int, format string, args ...any) reply {
	st := 599
	switch code {
	case 354, 444, 1027:
		st = http.StatusUnauthorized
	case 258, 461, 1155, 2054:
		st = http.StatusNotFound
	case 273, 1642:
		st = http.StatusConflict
	case 278:
		st = http.StatusBadRequest
	}
	return reply{status: st, code: code, message: fmt.Sprintf(format, args...)}
}

func (s *Sim) write(w http.ResponseWriter, r reply) {
	body := map[string]any{"errorcode": r.code, "message": "Done", "severity": "NONE"}
	if r.code != 0 {
		body["message"], body["severity"] = r.message, "ERROR"
	}
	if r.key != "" && r.value != nil {
		body[r.key] = r.value
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(r.status)
	_ = json.NewEncoder(w).Encode(body)
}

func (s *Sim) serveAPI(w http.ResponseWriter, r *http.Request) {
	rest, found := strings.CutPrefix(r.URL.EscapedPath(), apiPrefix)
	if !found || rest == "" {
		s.write(w, fail(258, "No such resource [%s]", r.URL.Path))
		return
	}
	resource, escName, _ := strings.Cut(rest, "/")
	name, err := url.PathUnescape(escName)
	if err != nil {
		s.write(w, fail(278, "Invalid argument [name]"))
		return
	}
	q := r.URL.Query()
	op := r.Method + " " + resource
	if name != "" {
		op += "/" + name
	}
	if a := q.Get("action"); a != "" {
		op += "?action=" + a
	}
	s.mu.Lock()
	s.requests = append(s.requests, op)
	hook := s.hook
	s.mu.Unlock()

	obj, rep := decodeBody(r, resource)
	if rep.code != 0 {
		s.write(w, rep)
		return
	}
	switch resource {
	case "login":
		s.write(w, s.login(w, r.Method, obj))
		return
	case "logout":
		tok := sessionCookie(r)
		s.mu.Lock()
		known := s.sessions[tok]
		delete(s.sessions, tok)
		s.mu.Unlock()
		if !known {
			s.write(w, fail(444, "Session expired or killed. Please login again"))
			return
		}
		s.write(w, ok(http.StatusOK))
		return
	}
	if rep := s.authenticate(r); rep.code != 0 {
		s.write(w, rep)
		return
	}
	if hook != nil {
		hook(r.Method, resource, obj)
	}
	s.write(w, s.apply(r.Method, resource, name, r.URL.RawQuery, obj))
}

// decodeBody reads {"<resource>": {...}}; anything else is refused.
func decodeBody(r *http.Request, resource string) (map[string]any, reply) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		return nil, fail(278, "Invalid argument [body]")
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, reply{}
	}
	ct := r.Header.Get("Content-Type")
	if ct != "application/json" && ct != "application/vnd.com.citrix.netscaler."+resource+"+json" {
		return nil, fail(278, "Invalid argument [Content-Type %q]", ct)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil || len(top) != 1 || top[resource] == nil {
		return nil, fail(278, "Invalid argument [the body must be {\"%s\": {...}}]", resource)
	}
	dec := json.NewDecoder(bytes.NewReader(top[resource]))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, fail(278, "Invalid argument [%s is not an object]", resource)
	}
	return obj, reply{}
}

func sessionCookie(r *http.Request) string {
	if c, err := r.Cookie("NITRO_AUTH_TOKEN"); err == nil {
		return c.Value
	}
	return ""
}

func (s *Sim) login(w http.ResponseWriter, method string, obj map[string]any) reply {
	if method != http.MethodPost {
		return fail(278, "Invalid argument [login is POST]")
	}
	a := attrs(obj)
	if rep := a.only("username", "password", "timeout"); rep.code != 0 {
		return rep
	}
	if a.str("username") != s.opts.Username || a.str("password") != s.opts.Password {
		return fail(354, "Invalid username or password")
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	tok := hex.EncodeToString(b)
	s.mu.Lock()
	s.sessions[tok] = true
	s.logins++
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: "NITRO_AUTH_TOKEN", Value: tok, Path: "/nitro/v1"})
	return reply{status: http.StatusCreated, key: "sessionid", value: tok}
}

// authenticate accepts either the session cookie or the X-NITRO headers,
// never both (the reference forbids sending both).
func (s *Sim) authenticate(r *http.Request) reply {
	user, pass := r.Header.Get("X-NITRO-USER"), r.Header.Get("X-NITRO-PASS")
	tok := sessionCookie(r)
	switch {
	case (user != "" || pass != "") && tok != "":
		return fail(278, "Invalid argument [send the NITRO_AUTH_TOKEN cookie or X-NITRO-USER/X-NITRO-PASS, not both]")
	case user != "" || pass != "":
		if user != s.opts.Username || pass != s.opts.Password {
			return fail(354, "Invalid username or password")
		}
		return reply{}
	case tok != "":
		s.mu.Lock()
		known := s.sessions[tok]
		s.mu.Unlock()
		if !known {
			return fail(444, "Session expired or killed. Please login again")
		}
		return reply{}
	}
	return fail(1027, "Not logged in or connection timed out")
}

// apply runs one authenticated request.
func (s *Sim) apply(method, resource, name, rawQuery string, obj map[string]any) reply {
	q, _ := url.ParseQuery(rawQuery)
	action := q.Get("action")
	args := parseArgs(q.Get("args"))
	a := attrs(obj)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch resource {
	case "nsversion":
		if method == http.MethodGet {
			return reply{status: http.StatusOK, key: resource, value: map[string]any{"version": "NetScaler NS14.1: Build 0.0.nc (nitrosim)", "mode": "1"}}
		}
	case "nsfeature":
		return s.nsfeature(method, action, a)
	case "nsconfig":
		if method == http.MethodPost && action == "save" {
			if s.failSave > 0 {
				s.failSave--
				return fail(1461, "Maximum number of concurrent save configs in progress")
			}
			s.saves++
			s.saved = s.snapshotLocked()
			return ok(http.StatusOK)
		}
	case "systemfile":
		return s.systemfile(method, name, args, a)
	case "sslcertkey":
		return s.sslcertkey(method, name, action, a)
	case "sslvserver_sslcertkey_binding":
		return s.certBinding(method, name, args, a)
	case "lbvserver", "csvserver", "sslvserver":
		if method == http.MethodGet {
			return s.getVserver(resource, name)
		}
	case "responderaction":
		return s.responderAction(method, name, a)
	case "responderpolicy":
		return s.responderPolicy(method, name, a)
	case "lbvserver_responderpolicy_binding", "csvserver_responderpolicy_binding":
		return s.policyBinding(strings.TrimSuffix(resource, "vserver_responderpolicy_binding"), method, name, args, a)
	default:
		return fail(258, "No such resource [%s] (not simulated)", resource)
	}
	return fail(278, "Invalid argument [%s does not support %s%s]", resource, method, actionSuffix(action))
}

func actionSuffix(a string) string {
	if a == "" {
		return ""
	}
	return " ?action=" + a
}

// parseArgs reads args=k1:v1,k2:v2 (values already percent-decoded).
func parseArgs(s string) map[string]string {
	out := map[string]string{}
	for p := range strings.SplitSeq(s, ",") {
		if k, v, found := strings.Cut(p, ":"); found {
			out[k] = v
		}
	}
	return out
}

func (s *Sim) nsfeature(method, action string, a attrs) reply {
	switch {
	case method == http.MethodGet:
		v := map[string]any{}
		for f, on := range s.features {
			v[f] = on
		}
		return reply{status: http.StatusOK, key: "nsfeature", value: v}
	case method == http.MethodPost && (action == "enable" || action == "disable"):
		list, _ := a["feature"].([]any)
		for _, f := range list {
			if name, isStr := f.(string); isStr {
				s.features[strings.ToLower(name)] = action == "enable"
			}
		}
		return ok(http.StatusOK)
	}
	return fail(278, "Invalid argument [nsfeature]")
}

func (s *Sim) getVserver(resource, name string) reply {
	vs := s.vservers[name]
	if vs == nil || (resource == "sslvserver" && vs.serviceType != "SSL") || (resource != "sslvserver" && resource != vs.kind+"vserver") {
		return fail(258, "No such resource [%s]", name)
	}
	host, port, _ := strings.Cut(vs.addr, ":")
	p, _ := strconv.Atoi(port)
	v := map[string]any{"name": vs.name, "servicetype": vs.serviceType, "ipv46": host, "port": p, "curstate": "UP"}
	if resource == "sslvserver" {
		v = map[string]any{"vservername": vs.name}
	}
	return reply{status: http.StatusOK, key: resource, value: []any{v}}
}

// attrs is a request object.
type attrs map[string]any

// only refuses attributes outside keys, as the appliance does.
func (a attrs) only(keys ...string) reply {
	for k := range a {
		found := false
		for _, want := range keys {
			if k == want {
				found = true
				break
			}
		}
		if !found {
			return fail(278, "Invalid argument [%s]", k)
		}
	}
	return reply{}
}

func (a attrs) str(k string) string {
	switch v := a[k].(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case int, int64, float64:
		return fmt.Sprint(v) // from Configure
	}
	return ""
}

func (a attrs) boolean(k string) bool {
	switch v := a[k].(type) {
	case bool:
		return v
	case string:
		return strings.EqualFold(v, "true") || strings.EqualFold(v, "yes")
	}
	return false
}

func (a attrs) integer(k string) (int, bool) {
	n, err := strconv.Atoi(a.str(k))
	return n, err == nil
}
