package middleware

import (
	"strings"

	"github.com/zoku/zoku/internal/config"
)

// newSecurityHeaders compiles the preset into response header operations.
func newSecurityHeaders(c *config.SecurityHeaders) *headers {
	set := map[string]string{}
	if c.ContentTypeNosniff == nil || *c.ContentTypeNosniff {
		set["X-Content-Type-Options"] = "nosniff"
	}
	str := func(p *string, def string) string {
		if p == nil {
			return def
		}
		return *p
	}
	for k, v := range map[string]string{
		"X-Frame-Options":            strings.ToUpper(str(c.FrameOptions, config.DefaultFrameOptions)),
		"Referrer-Policy":            str(c.ReferrerPolicy, config.DefaultReferrerPolicy),
		"X-Xss-Protection":           str(c.XSSProtection, config.DefaultXSSProtection),
		"Content-Security-Policy":    c.ContentSecurityPolicy,
		"Permissions-Policy":         c.PermissionsPolicy,
		"Cross-Origin-Opener-Policy": c.CrossOriginOpenerPolicy,
	} {
		if v != "" {
			set[k] = v
		}
	}
	ops := &config.HeaderOps{Set: set}
	if c.HideServer == nil || *c.HideServer {
		ops.Remove = []string{"Server", "X-Powered-By"}
	}
	h, _ := newHeaders(&config.HeadersMiddleware{Response: ops})
	return h
}
