// Package nitro is a small client for the NetScaler (Citrix ADC) NITRO
// REST API, v1 configuration resources: the few that a certificate deploy
// needs, with the API's own conventions (a body keyed by the resource name,
// ?action= verbs, args=k:v selectors, error codes in every reply).
//
// Authentication is either a session (POST login, then the
// NITRO_AUTH_TOKEN cookie; a reply with errorcode 444 or 1027 logs in again
// once) or X-NITRO-USER/X-NITRO-PASS headers on every request. Never both:
// the API refuses a request that carries both. The password is sent only in
// those headers or in the login body; it never appears in an error.
package nitro

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Error codes the deploy branches on (NITRO reference, error messages).
const (
	CodeNoSuchResource     = 258
	CodeAlreadyExists      = 273
	CodeInvalidArgument    = 278
	CodeResourceInUse      = 315
	CodeBadCredentials     = 354
	CodeBadCredentials2    = 355
	CodeSessionExpired     = 444
	CodeNoSuchVserver      = 461
	CodeNotLoggedIn        = 1027
	CodeFeatureDisabled    = 1067
	CodeNoSuchFile         = 1155
	CodeSaveBusy           = 1461
	CodeKeyMismatch        = 1538
	CodeCertReferenced     = 1541
	CodeNoCALink           = 1545
	CodeLinksBroken        = 1587
	CodeFileExists         = 1642
	CodePriorityInUse      = 3041
	CodeNoSuchPolicy       = 2054
	CodePolicyNotBound     = 3093
	CodeDomainCheckFailed  = 3585
	CodeLinksBrokenExpired = 1590
	CodeLinksBrokenNotYet  = 1591
)

// Error is a NITRO failure reply.
type Error struct {
	// Op is the request, e.g. "POST sslcertkey?action=update".
	Op string
	// Status is the HTTP status; Code, Message and Severity the body's.
	Status   int
	Code     int
	Message  string
	Severity string
}

func (e *Error) Error() string {
	msg := strings.TrimSpace(e.Message)
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("%s: errorcode %d: %s (HTTP %d)", e.Op, e.Code, msg, e.Status)
}

// HasCode reports whether err is a NITRO error with one of codes.
func HasCode(err error, codes ...int) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	for _, c := range codes {
		if e.Code == c {
			return true
		}
	}
	return false
}

// NotFound reports whether err says the object does not exist (or is
// not bound), which cleanup treats as done.
func NotFound(err error) bool {
	var e *Error
	if errors.As(err, &e) && e.Status == http.StatusNotFound {
		return true
	}
	return HasCode(err, CodeNoSuchResource, CodeNoSuchFile, CodeNoSuchPolicy, CodePolicyNotBound, CodeNoSuchVserver)
}

// Options configure a Client.
type Options struct {
	// URL is the NSIP's base URL, https://192.0.2.10.
	URL string
	// Username and Password of the NITRO user.
	Username, Password string
	// HeaderAuth sends the credentials on every request instead of logging
	// in.
	HeaderAuth bool
	// TLS verifies the NSIP (CA pool, pinned fingerprint or, by opt-in,
	// nothing).
	TLS *tls.Config
	// Timeout of each request; zero means 60 s.
	Timeout time.Duration
	// Logger gets one debug line per request (never a body); nil discards.
	Logger *slog.Logger
}

// Client talks to one appliance. It is safe for concurrent use.
type Client struct {
	opts Options
	base string
	hc   *http.Client
	log  *slog.Logger

	mu      sync.Mutex
	session string // guarded by mu; NITRO_AUTH_TOKEN
}

// New returns a Client; it does no I/O.
func New(opts Options) *Client {
	if opts.Timeout <= 0 {
		opts.Timeout = 60 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	tr := &http.Transport{TLSClientConfig: opts.TLS, Proxy: nil, MaxIdleConnsPerHost: 2, IdleConnTimeout: 30 * time.Second}
	return &Client{
		opts: opts, base: strings.TrimSuffix(opts.URL, "/") + "/nitro/v1/config/",
		hc: &http.Client{Transport: tr, Timeout: opts.Timeout}, log: opts.Logger,
	}
}

// Args encodes an args= selector: pairs of key and value, each value
// percent-encoded (a '/' becomes %2F, as the vendor's clients send it).
func Args(kv ...string) string {
	parts := make([]string, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		parts = append(parts, kv[i]+":"+url.QueryEscape(kv[i+1]))
	}
	return "args=" + strings.Join(parts, ",")
}

// Get reads resource (one object by name, or all with name ""); query is
// an encoded query such as Args(...). out receives the reply's resource
// value (a slice for most resources).
func (c *Client) Get(ctx context.Context, resource, name, query string, out any) error {
	return c.do(ctx, http.MethodGet, resource, name, query, nil, out)
}

// Add creates an object: POST with {resource: obj}.
func (c *Client) Add(ctx context.Context, resource string, obj any) error {
	return c.do(ctx, http.MethodPost, resource, "", "", obj, nil)
}

// Action runs POST <resource>?action=<action> with {resource: obj}.
func (c *Client) Action(ctx context.Context, resource, action string, obj any) error {
	return c.do(ctx, http.MethodPost, resource, "", "action="+url.QueryEscape(action), obj, nil)
}

// Bind adds a binding: PUT with {resource: obj}.
func (c *Client) Bind(ctx context.Context, resource string, obj any) error {
	return c.do(ctx, http.MethodPut, resource, "", "", obj, nil)
}

// Delete removes an object or a binding (query holds its args).
func (c *Client) Delete(ctx context.Context, resource, name, query string) error {
	return c.do(ctx, http.MethodDelete, resource, name, query, nil, nil)
}

// Login opens a session now (Requests do it on first use).
func (c *Client) Login(ctx context.Context) error {
	if c.opts.HeaderAuth {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.loginLocked(ctx)
}

func (c *Client) loginLocked(ctx context.Context) error {
	body := map[string]any{"login": map[string]any{"username": c.opts.Username, "password": c.opts.Password}}
	var reply struct {
		SessionID string `json:"sessionid"`
	}
	resp, raw, err := c.sendWith(ctx, http.MethodPost, "login", "", "", body, "")
	if err != nil {
		return err
	}
	if e := replyError("POST login", resp.StatusCode, raw); e != nil {
		if e.Code == CodeBadCredentials || e.Code == CodeBadCredentials2 {
			return fmt.Errorf("log in as %s: %w; check netscaler.username and netscaler.password", c.opts.Username, e)
		}
		return fmt.Errorf("log in as %s: %w", c.opts.Username, e)
	}
	_ = json.Unmarshal(raw, &reply)
	tok := reply.SessionID
	if tok == "" {
		for _, ck := range resp.Cookies() {
			if ck.Name == "NITRO_AUTH_TOKEN" {
				tok, _ = url.QueryUnescape(ck.Value)
			}
		}
	}
	if tok == "" {
		return errors.New("log in: the reply carried no session id")
	}
	c.session = tok
	return nil
}

// Logout ends the session, if there is one.
func (c *Client) Logout(ctx context.Context) error {
	c.mu.Lock()
	tok := c.session
	c.session = ""
	c.mu.Unlock()
	if tok == "" {
		return nil
	}
	resp, raw, err := c.sendWith(ctx, http.MethodPost, "logout", "", "", map[string]any{"logout": map[string]any{}}, tok)
	if err != nil {
		return err
	}
	if e := replyError("POST logout", resp.StatusCode, raw); e != nil {
		return e
	}
	return nil
}

func (c *Client) do(ctx context.Context, method, resource, name, query string, obj, out any) error {
	op := method + " " + resource
	if name != "" {
		op += "/" + name
	}
	if strings.HasPrefix(query, "action=") {
		op += "?" + query
	}
	var body any
	if obj != nil {
		body = map[string]any{resource: obj}
	}
	for attempt := 0; ; attempt++ {
		tok, err := c.token(ctx)
		if err != nil {
			return err
		}
		resp, raw, err := c.sendWith(ctx, method, resource, name, query, body, tok)
		if err != nil {
			return err
		}
		e := replyError(op, resp.StatusCode, raw)
		if e != nil && !c.opts.HeaderAuth && attempt == 0 && resp.StatusCode == http.StatusUnauthorized && (e.Code == CodeSessionExpired || e.Code == CodeNotLoggedIn) {
			c.log.Info("netscaler session expired; logging in again", "errorcode", e.Code)
			c.mu.Lock()
			if c.session == tok {
				c.session = ""
			}
			c.mu.Unlock()
			continue
		}
		if e != nil {
			return e
		}
		if out != nil {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(raw, &m); err != nil {
				return fmt.Errorf("%s: reply is not JSON: %w", op, err)
			}
			if v, ok := m[resource]; ok {
				if err := json.Unmarshal(v, out); err != nil {
					return fmt.Errorf("%s: unexpected reply: %w", op, err)
				}
			}
		}
		return nil
	}
}

// token returns the session token, logging in first if needed; "" in
// header mode.
func (c *Client) token(ctx context.Context) (string, error) {
	if c.opts.HeaderAuth {
		return "", nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.session == "" {
		if err := c.loginLocked(ctx); err != nil {
			return "", err
		}
	}
	return c.session, nil
}

func (c *Client) sendWith(ctx context.Context, method, resource, name, query string, body any, tok string) (*http.Response, []byte, error) {
	u := c.base + resource
	if name != "" {
		u += "/" + url.PathEscape(name)
	}
	if query != "" {
		u += "?" + query
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, nil, fmt.Errorf("%s %s: encode: %w", method, resource, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	switch {
	case resource == "login":
	case c.opts.HeaderAuth:
		req.Header.Set("X-NITRO-USER", c.opts.Username)
		req.Header.Set("X-NITRO-PASS", c.opts.Password)
	case tok != "":
		req.Header.Set("Cookie", "NITRO_AUTH_TOKEN="+tok)
	}
	start := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, nil, fmt.Errorf("cannot reach %s: %w; check netscaler.url and that the NSIP is up", c.opts.URL, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: read reply: %w", method, resource, err)
	}
	c.log.Debug("nitro request", "method", method, "resource", resource, "status", resp.StatusCode, "duration", time.Since(start).Round(time.Millisecond))
	return resp, raw, nil
}

// replyError parses a reply's errorcode; nil means success. A WARNING
// severity is success.
func replyError(op string, status int, raw []byte) *Error {
	var r struct {
		Code     json.Number `json:"errorcode"`
		Message  string      `json:"message"`
		Severity string      `json:"severity"`
	}
	_ = json.Unmarshal(raw, &r)
	code, _ := strconv.Atoi(string(r.Code))
	if status < 300 && (code == 0 || !strings.EqualFold(r.Severity, "ERROR")) {
		return nil
	}
	return &Error{Op: op, Status: status, Code: code, Message: r.Message, Severity: r.Severity}
}

// Int is a number that NITRO sends either as a JSON number or as a string.
type Int int

// UnmarshalJSON accepts 90 and "90".
func (n *Int) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*n = 0
		return nil
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("nitro: %q is not a whole number", s)
	}
	*n = Int(v)
	return nil
}
