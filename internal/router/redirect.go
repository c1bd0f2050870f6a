package router

import (
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/proxy"
)

// redirectServe answers every request with a redirect to the same path
// and query, with the scheme, host and port rd sets (a route of a source
// such as a Gateway API RequestRedirect filter; the route's middlewares
// still run first).
func redirectServe(rd *config.RouteRedirect) serveFunc {
	code := rd.StatusCode
	if code == 0 {
		code = http.StatusFound
	}
	return func(w http.ResponseWriter, req *http.Request, _ *proxy.Stats) {
		http.Redirect(w, req, redirectURL(rd, req), code)
	}
}

// redirectURL is where rd sends req: each field rd leaves empty keeps the
// request's own (scheme, host, port); a changed scheme drops the port
// unless rd sets one, and a scheme's default port is left out.
func redirectURL(rd *config.RouteRedirect, req *http.Request) string {
	scheme := "http"
	if req.TLS != nil {
		scheme = "https"
	}
	host, port, err := net.SplitHostPort(req.Host)
	if err != nil {
		host, port = req.Host, ""
	}
	host = strings.Trim(host, "[]")
	if rd.Scheme != "" && rd.Scheme != scheme {
		scheme, port = rd.Scheme, ""
	}
	if rd.Host != "" {
		host = rd.Host
	}
	if rd.Port != 0 {
		port = strconv.Itoa(rd.Port)
	}
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host + req.URL.RequestURI()
}
