package proxy

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"

	"github.com/zoku/zoku/internal/config"
)

// sticky keeps a client on the server (or child service) that answered
// it first, through a cookie. The cookie names the server by a hash of
// its URL (or the child's name), never by its address; the hash is the
// same in every process and across reloads, so no table of sessions needs
// keeping: a client whose server is gone or down is given another and a
// new cookie.
type sticky struct {
	cookie http.Cookie // name and attributes; Value set per answer
}

func newSticky(c config.StickyCookie) *sticky {
	st := &sticky{cookie: http.Cookie{Name: c.Name, Path: c.Path, Secure: c.Secure, HttpOnly: c.HTTPOnly, MaxAge: int(c.MaxAge.D().Seconds())}}
	if st.cookie.Path == "" {
		st.cookie.Path = "/"
	}
	switch c.SameSite {
	case "lax":
		st.cookie.SameSite = http.SameSiteLaxMode
	case "strict":
		st.cookie.SameSite = http.SameSiteStrictMode
	case "none":
		st.cookie.SameSite = http.SameSiteNoneMode
	}
	return st
}

// stickyValue is the cookie value naming a server or child: 16 hex digits
// of the SHA-256 of its URL or name.
func stickyValue(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:8])
}

// find returns the index in values of the value of r's cookie, when it
// names one whose ok(i) is true; otherwise -1.
func (st *sticky) find(r *http.Request, values []string, ok func(int) bool) (int, string) {
	c, err := r.Cookie(st.cookie.Name)
	if err != nil {
		return -1, ""
	}
	i := slices.Index(values, c.Value)
	if i < 0 || !ok(i) {
		return -1, c.Value
	}
	return i, c.Value
}

// mark sets the cookie naming value on h unless the client already sent
// it (had). It replaces the one an earlier try of the same request set
// (*set), so that a retry on another server leaves one cookie.
func (st *sticky) mark(h http.Header, had, value string, set *string) {
	if *set != "" {
		vv := h["Set-Cookie"]
		if i := slices.Index(vv, *set); i >= 0 {
			h["Set-Cookie"] = slices.Delete(slices.Clip(vv), i, i+1)
			if len(h["Set-Cookie"]) == 0 {
				delete(h, "Set-Cookie")
			}
		}
		*set = ""
	}
	if had == value {
		return
	}
	c := st.cookie
	c.Value = value
	*set = c.String()
	h["Set-Cookie"] = append(h["Set-Cookie"], *set)
}
